/// Why a string is not a valid Matrix identifier. Identifiers are not secrets, so messages quote them.
public struct IdentifierError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let empty = Code(rawValue: "empty")
        public static let wrongSigil = Code(rawValue: "wrong_sigil")
        public static let missingServerName = Code(rawValue: "missing_server_name")
        public static let invalidCharacter = Code(rawValue: "invalid_character")
        public static let tooLong = Code(rawValue: "too_long")
        public static let invalidServerName = Code(rawValue: "invalid_server_name")
    }

    public var code: Code
    public var message: String
    public var description: String { "\(code): \(message)" }

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// The shared shape of every identifier: a validated string that encodes as itself.
public protocol MatrixIdentifier: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    var rawValue: String { get }
    init(_ string: String) throws(IdentifierError)
}

extension MatrixIdentifier {
    public var description: String { rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Equal when the raw strings are: every other stored part is parsed from it. (The synthesized
    /// versions also compared and hashed those parts, which made every lookup keyed by an id hash
    /// its server name twice; ids are dictionary keys on the hot path.)
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.rawValue == rhs.rawValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do {
            try self.init(string)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Checks common to all sigil identifiers: non-empty, the sigil, at most 255 bytes.
enum IdentifierRules {
    static let maximumLength = 255

    static func checkSigil(_ string: String, _ sigil: Character, _ kind: String) throws(IdentifierError) {
        guard !string.isEmpty else { throw IdentifierError(.empty, "empty \(kind)") }
        // Byte-wise for ASCII (where a Character is a byte, or CR LF, which is never a sigil).
        let first = isASCII(string) ? string.utf8.first.map { Character(Unicode.Scalar($0)) } : string.first
        guard first == sigil else { throw IdentifierError(.wrongSigil, "\(kind) must start with '\(sigil)': \"\(string)\"") }
        guard string.utf8.count <= maximumLength else {
            throw IdentifierError(.tooLong, "\(kind) is longer than \(maximumLength) bytes")
        }
    }

    /// Splits `!opaque:server` at the first colon; the server part is optional where `serverRequired` is false.
    static func split(
        _ string: String, kind: String, serverRequired: Bool
    ) throws(IdentifierError) -> (local: Substring, server: ServerName?) {
        let body = string.dropFirst()
        // In ASCII a colon byte is a colon Character (a colon with a combining mark is not).
        let colon = isASCII(string) ? body.utf8.firstIndex(of: UInt8(ascii: ":")) : body.firstIndex(of: ":")
        guard let colon else {
            if serverRequired { throw IdentifierError(.missingServerName, "\(kind) needs a ':server' part: \"\(string)\"") }
            guard !body.isEmpty else { throw IdentifierError(.empty, "\(kind) has an empty local part: \"\(string)\"") }
            return (body, nil)
        }
        let local = body[..<colon]
        guard !local.isEmpty else { throw IdentifierError(.empty, "\(kind) has an empty local part: \"\(string)\"") }
        let server = try ServerName(String(body[body.index(after: colon)...]))
        return (local, server)
    }

    /// Whether every byte is ASCII: then byte-wise checks say what the Character-wise ones would.
    static func isASCII(_ string: String) -> Bool {
        string.utf8.allSatisfy { $0 < 0x80 }
    }

    /// Opaque ids (room, event) may hold any printable character except whitespace.
    static func checkOpaque(_ local: Substring, _ string: String, _ kind: String) throws(IdentifierError) {
        for scalar in local.unicodeScalars where scalar.value <= 0x20 || scalar.value == 0x7F {
            throw IdentifierError(.invalidCharacter, "\(kind) contains whitespace or a control character: \"\(string)\"")
        }
    }
}
