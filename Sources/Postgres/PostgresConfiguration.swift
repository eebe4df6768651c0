/// How to reach PostgreSQL and how many connections to keep.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection URI (`postgresql://user:pass@host:port/db?sslmode=…`) or keyword string
    /// (`host=… dbname=…`), passed to libpq unchanged.
    public var connectionString: String
    /// The most connections the pool opens.
    public var poolSize: Int
    /// How long ``PostgresClient`` keeps retrying to connect, with backoff, before a call fails.
    public var connectTimeout: Duration
    /// `statement_timeout` set on every connection: no statement may hang a transaction (and the
    /// crypto lock with it) for longer; nil: the server's default.
    public var statementTimeout: Duration?

    public init(connectionString: String, poolSize: Int = 10, connectTimeout: Duration = .seconds(10), statementTimeout: Duration? = nil) {
        self.connectionString = connectionString
        self.poolSize = max(1, poolSize)
        self.connectTimeout = connectTimeout
        self.statementTimeout = statementTimeout
    }

    /// The connection string with any password replaced by `***`, for logs and errors.
    public var redactedDescription: String { Self.redact(connectionString) }

    static func redact(_ string: String) -> String {
        var result = string
        // URI form: scheme://user:password@host
        if let scheme = result.range(of: "://"), let at = result[scheme.upperBound...].firstIndex(of: "@"),
            let colon = result[scheme.upperBound..<at].firstIndex(of: ":")
        {
            result.replaceSubrange(result.index(after: colon)..<at, with: "***")
        }
        // Keyword and query forms: password=…
        while let range = result.range(of: "password=") {
            let valueStart = range.upperBound
            let valueEnd = result[valueStart...].firstIndex(where: { $0 == " " || $0 == "&" }) ?? result.endIndex
            if result[valueStart..<valueEnd] == "***" { break }
            result.replaceSubrange(valueStart..<valueEnd, with: "***")
        }
        return result
    }
}
