/// A SQL statement with its parameters bound separately, never spliced into the text.
///
/// Write values with string interpolation and they become `$1`, `$2`, …:
/// ```swift
/// let query: PostgresQuery = "SELECT pickle FROM olm_sessions WHERE sender_key = \(key) AND user_id = \(user)"
/// ```
/// To put an identifier (a table name) into SQL, use `\(unescaped: "...")` with a constant: it is text,
/// not a parameter, and must never come from input.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    public var sql: String
    public var binds: [PostgresBind]

    /// A statement with explicit `$n` placeholders and their values.
    public init(unsafeSQL sql: String, binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds `value` as the next parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresBind)
            sql += "$\(binds.count)"
        }

        /// Binds an optional value; `nil` is SQL NULL of the wrapped type.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            binds.append(value?.postgresBind ?? PostgresBind(type: Value.postgresType, value: nil))
            sql += "$\(binds.count)"
        }

        /// Inserts SQL text as is: for constant identifiers only, never for values.
        public mutating func appendInterpolation(unescaped text: String) {
            sql += text
        }
    }
}

extension PostgresQuery {
    /// Refuses a text parameter with a NUL byte: libpq sends text parameters as C strings, so the value
    /// would be cut at the NUL without a word, and PostgreSQL stores no NUL in `text` anyway.
    func checkStorable() throws(PostgresError) {
        for (index, bind) in binds.enumerated() where !bind.isBinary {
            if let value = bind.value, value.contains(0) {
                throw PostgresError(code: .unstorableText, message: "parameter $\(index + 1) holds a NUL byte, which PostgreSQL cannot store as text")
            }
        }
    }
}

/// One parameter: its PostgreSQL type and its bytes (text, or binary for bytea), or NULL.
public struct PostgresBind: Sendable, Hashable {
    public var type: PostgresType
    public var value: [UInt8]?
    /// Whether `value` is in PostgreSQL's binary format (only bytea) rather than text.
    public var isBinary: Bool

    public init(type: PostgresType, value: [UInt8]?, isBinary: Bool = false) {
        self.type = type
        self.value = value
        self.isBinary = isBinary
    }
}

/// The PostgreSQL types Sealbridge binds, by OID.
public struct PostgresType: RawRepresentable, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let bool = PostgresType(rawValue: 16)
    public static let bytea = PostgresType(rawValue: 17)
    public static let int8 = PostgresType(rawValue: 20)
    public static let int4 = PostgresType(rawValue: 23)
    public static let text = PostgresType(rawValue: 25)
    public static let timestamptz = PostgresType(rawValue: 1184)
    public static let jsonb = PostgresType(rawValue: 3802)
    public static let textArray = PostgresType(rawValue: 1009)
    public static let byteaArray = PostgresType(rawValue: 1001)
}
