/// Why bytes were not accepted as JSON, or a value has no canonical form.
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Not JSON: unexpected character, unterminated string, trailing data.
        public static let syntax = Code(rawValue: "syntax")
        /// Nested deeper than ``JSONValue/maximumDepth``.
        public static let depthExceeded = Code(rawValue: "depth_exceeded")
        /// A string is not valid UTF-8, or an escape names a lone surrogate.
        public static let invalidUTF8 = Code(rawValue: "invalid_utf8")
        /// An object names the same key twice: parsers disagree on which value wins, so a signature
        /// over it, or a decision taken on it, would be ambiguous.
        public static let duplicateKey = Code(rawValue: "duplicate_key")
        /// The value has no canonical JSON form (a float, or an integer outside ±(2^53 − 1)).
        public static let notCanonical = Code(rawValue: "not_canonical")
    }

    public var code: Code
    public var message: String
    /// Byte offset in the input where parsing stopped, when parsing.
    public var offset: Int?

    public init(code: Code, message: String, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String {
        if let offset { return "\(code): \(message) at byte \(offset)" }
        return "\(code): \(message)"
    }
}
