internal import COlm

extension Session {
    /// Encrypts `plaintext`, advancing the sending ratchet.
    ///
    /// The caller must persist the pickled session before the ciphertext leaves the process.
    public func encrypt(_ plaintext: some Collection<UInt8>) throws(OlmError) -> OlmMessage {
        let type = olm_encrypt_message_type(pointer)
        let (bytes, result) = OlmBytes.withMutableCopy(of: plaintext) { input, count in
            OlmRandom.withBytes(olm_encrypt_random_length(pointer)) { random, randomCount in
                OlmBytes.output(capacity: olm_encrypt_message_length(pointer, count)) {
                    olm_encrypt(pointer, input, count, random, randomCount, $0, $1)
                }
            }
        }
        try OlmError.check(result, lastError, "olm_encrypt")
        return OlmMessage(kind: type == 0 ? .preKey : .normal, ciphertext: OlmBytes.string(bytes))
    }

    /// Encrypts the UTF-8 bytes of `plaintext`.
    public func encrypt(_ plaintext: String) throws(OlmError) -> OlmMessage { try encrypt(plaintext.utf8) }

    /// Decrypts `message`; on failure the session is unchanged.
    ///
    /// - Throws: `badMessageMAC` (wrong session or tampered), `invalidBase64`, `badMessageFormat`,
    ///   `badMessageVersion`, `badMessageKeyID`.
    public func decrypt(_ message: OlmMessage) throws(OlmError) -> [UInt8] {
        let type = message.kind.rawValue
        let maxLength = OlmBytes.withMutableCopy(of: message.ciphertext.utf8) {
            olm_decrypt_max_plaintext_length(pointer, type, $0, $1)
        }
        try OlmError.check(maxLength, lastError, "olm_decrypt_max_plaintext_length")
        let (bytes, result) = OlmBytes.withMutableCopy(of: message.ciphertext.utf8) { input, count in
            OlmBytes.output(capacity: maxLength) { olm_decrypt(pointer, type, input, count, $0, $1) }
        }
        try OlmError.check(result, lastError, "olm_decrypt")
        return bytes
    }
}
