/// Why secret storage could not be read or written: a mistyped recovery key, a key that is not the
/// one the account's secret storage uses, or account data that is missing, malformed or tampered with.
///
/// Messages name the secret or key id concerned and never contain key or secret bytes.
public struct SecretStorageError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The recovery key text is not a recovery key: bad characters, prefix, parity or length.
        public static let invalidRecoveryKey = Code(rawValue: "invalid_recovery_key")
        /// The recovery key is well formed but is not the key the description was made with.
        public static let wrongRecoveryKey = Code(rawValue: "wrong_recovery_key")
        /// A secret's MAC does not verify: altered ciphertext or MAC, or encrypted under another key
        /// or secret name.
        public static let authenticationFailed = Code(rawValue: "authentication_failed")
        /// Account data that should describe a key or hold a secret is missing fields or malformed.
        public static let malformed = Code(rawValue: "malformed")
        /// The key uses an algorithm other than `m.secret_storage.v1.aes-hmac-sha2`.
        public static let unsupportedAlgorithm = Code(rawValue: "unsupported_algorithm")
        /// The account has no secret storage, or a secret is not encrypted under the key in use.
        public static let missing = Code(rawValue: "missing")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
