/// An error from the database layer, with a stable ``Code`` and the server's SQLSTATE when it sent one.
///
/// Messages carry libpq's or the server's text but never a password: connection strings are redacted
/// before they appear anywhere (see ``PostgresConfiguration/redactedDescription``).
public struct PostgresError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Could not open a connection (server down, wrong credentials, bad URI).
        public static let connectionFailed = Code(rawValue: "connection_failed")
        /// The connection broke during a call; the pool discards it.
        public static let connectionLost = Code(rawValue: "connection_lost")
        /// The server refused the statement; see ``PostgresError/sqlState``.
        public static let server = Code(rawValue: "server")
        /// A column could not be decoded into the requested Swift type.
        public static let decoding = Code(rawValue: "decoding")
        /// The pool was closed.
        public static let poolClosed = Code(rawValue: "pool_closed")
        /// The migrations in the database are newer than this build knows.
        public static let migration = Code(rawValue: "migration")
        /// A text parameter holds a NUL byte, which PostgreSQL cannot store in `text` (and libpq would
        /// silently cut the value there): refused before anything is sent.
        public static let unstorableText = Code(rawValue: "unstorable_text")
        /// Another instance took over (a newer fencing epoch): this write was refused before COMMIT.
        public static let fencedOut = Code(rawValue: "fenced_out")
    }

    public var code: Code
    public var message: String
    /// The five-character SQLSTATE (e.g. `23505` unique violation), for `server` errors.
    public var sqlState: String?

    public init(code: Code, message: String, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    /// The SQLSTATE the fencing check raises (`sealbridge_check_epoch`).
    public static let fencedOutSQLState = "SBFEN"

    /// Whether the write was refused because another instance took over the state.
    public var isFencedOut: Bool { code == .fencedOut || sqlState == Self.fencedOutSQLState }

    /// Whether the database could not be reached or the connection broke: retrying later may work,
    /// unlike a statement the server refused.
    /// Server refusals that say the same about the server, not the statement: shutting down or starting
    /// up (57P0x), out of connections or resources (53xxx), connection exceptions (08xxx), and the
    /// transaction conflicts that a retry resolves (40001 serialization failure, 40P01 deadlock).
    public var isUnavailable: Bool {
        if code == .connectionFailed || code == .connectionLost || code == .poolClosed { return true }
        guard code == .server, let state = sqlState else { return false }
        return state.hasPrefix("57P") || state.hasPrefix("53") || state.hasPrefix("08") || state == "40001" || state == "40P01"
    }

    public var description: String {
        if let sqlState { return "\(code) [\(sqlState)]: \(message)" }
        return "\(code): \(message)"
    }
}
