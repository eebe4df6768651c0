/// An error from one of the cryptographic primitives.
///
/// Callers branch on ``code``; ``message`` is for logs and humans. Messages describe what was wrong
/// (a length, an operation, libcrypto's own error strings) and never contain key, nonce or plaintext
/// bytes, so they are safe to log.
public struct PrimitivesError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    ///
    /// A struct rather than an enum so that new codes can be added without breaking callers that
    /// switch over the existing ones.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidKeyLength
            case invalidNonceLength
            case authenticationFailed
            case invalidBase64
            case invalidInput
            case libcrypto
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// A key was not the length the algorithm requires.
        public static let invalidKeyLength = Code(.invalidKeyLength)
        /// A nonce or IV was not the length the algorithm requires.
        public static let invalidNonceLength = Code(.invalidNonceLength)
        /// An authenticated ciphertext did not verify: wrong key, tampered data or tag, or wrong
        /// associated data. Nothing of the plaintext is released.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// A string was not valid base64 in the expected alphabet.
        public static let invalidBase64 = Code(.invalidBase64)
        /// An argument was out of range (an output length, an iteration count, a combined box that is
        /// too short).
        public static let invalidInput = Code(.invalidInput)
        /// libcrypto reported a failure; the message carries its error queue.
        public static let libcrypto = Code(.libcrypto)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable explanation, free of secret material.
    public var message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: What kind of failure this is.
    ///   - message: A human-readable explanation; never put secret bytes in it.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
