internal import COpenSSL

/// An error from a primitive: bad arguments, failed authentication, or libcrypto itself.
///
/// Messages never contain key material; libcrypto failures carry libcrypto's own text.
public struct PrimitivesError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidKeyLength = Code(rawValue: "invalid_key_length")
        public static let invalidNonceLength = Code(rawValue: "invalid_nonce_length")
        /// The ciphertext, tag or associated data does not authenticate under this key.
        public static let authenticationFailed = Code(rawValue: "authentication_failed")
        public static let invalidBase64 = Code(rawValue: "invalid_base64")
        public static let invalidInput = Code(rawValue: "invalid_input")
        public static let libcrypto = Code(rawValue: "libcrypto")
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// An error describing, and clearing, libcrypto's error queue after `operation` failed.
    static func libcrypto(_ operation: String) -> PrimitivesError {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        let detail = reasons.isEmpty ? "" : ": " + reasons.joined(separator: "; ")
        return PrimitivesError(code: .libcrypto, message: "\(operation) failed\(detail)")
    }
}
