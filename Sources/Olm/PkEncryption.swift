internal import COlm

/// Encrypts to a Curve25519 public key (server-side key backup: `m.megolm_backup.v1.curve25519-aes-sha2`).
public final class PkEncryption {
    let memory: OlmMemory
    var pointer: OpaquePointer

    /// - Parameter recipientKey: The backup's public key, unpadded base64.
    public init(recipientKey: String) throws(OlmError) {
        memory = OlmMemory(size: olm_pk_encryption_size())
        pointer = olm_pk_encryption(memory.raw)
        let pointer = self.pointer
        let result = Array(recipientKey.utf8).withUnsafeBytes {
            olm_pk_encryption_set_recipient_key(pointer, $0.baseAddress, $0.count)
        }
        try OlmError.check(result, olm_pk_encryption_last_error_code(pointer), "olm_pk_encryption_set_recipient_key")
    }

    deinit {
        memory.release { _ = olm_clear_pk_encryption(pointer) }
    }

    /// Encrypts `plaintext` with a fresh ephemeral key.
    public func encrypt(_ plaintext: some Collection<UInt8>) throws(OlmError) -> PkMessage {
        var mac = [UInt8](), ephemeral = [UInt8]()
        let (ciphertext, result) = OlmBytes.withMutableCopy(of: plaintext) { input, count in
            OlmRandom.withBytes(olm_pk_encrypt_random_length(pointer)) { random, randomCount in
                OlmBytes.output(capacity: olm_pk_ciphertext_length(pointer, count)) { out, outCount in
                    var r = 0
                    mac = OlmBytes.output(capacity: olm_pk_mac_length(pointer)) { macOut, macCount in
                        ephemeral = OlmBytes.output(capacity: olm_pk_key_length()) { keyOut, keyCount in
                            r = olm_pk_encrypt(
                                pointer, input, count, out, outCount, macOut, macCount, keyOut, keyCount,
                                random, randomCount)
                            return r == olm_error() ? r : keyCount
                        }.bytes
                        return r == olm_error() ? r : macCount
                    }.bytes
                    return r == olm_error() ? r : outCount
                }
            }
        }
        try OlmError.check(result, olm_pk_encryption_last_error_code(pointer), "olm_pk_encrypt")
        return PkMessage(
            ciphertext: OlmBytes.string(ciphertext), mac: OlmBytes.string(mac),
            ephemeral: OlmBytes.string(ephemeral))
    }
}
