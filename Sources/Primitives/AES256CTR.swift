internal import COpenSSL

/// AES-256 in counter mode: unauthenticated, length-preserving encryption.
///
/// Matrix uses it for encrypted attachments (authenticated separately by a SHA-256 hash of the
/// ciphertext) and for SSSS / key-backup payloads (authenticated by HMAC-SHA-256). Never use it alone
/// where tampering matters; prefer ``AES256GCM``.
///
/// The whole 16-byte IV is the initial counter block and is incremented as one 128-bit big-endian
/// integer, as in NIST SP 800-38A. Matrix attachment IVs zero their low 64 bits so the counter cannot
/// carry into the random half.
public enum AES256CTR {
    /// The key length: 32 bytes.
    public static let keyByteCount = 32
    /// The IV (initial counter block) length: 16 bytes.
    public static let ivByteCount = 16

    /// Encrypts or decrypts `data`; in CTR mode the two are the same operation.
    ///
    /// A key/IV pair must never encrypt two different messages: the keystream would repeat.
    ///
    /// - Parameters:
    ///   - data: Plaintext to encrypt or ciphertext to decrypt; may be empty.
    ///   - key: A 32-byte key.
    ///   - iv: A 16-byte initial counter block.
    /// - Returns: Output exactly as long as `data`.
    /// - Throws: `.invalidKeyLength`, `.invalidNonceLength`, or `.libcrypto` if libcrypto fails.
    public static func transform(_ data: [UInt8], key: [UInt8], iv: [UInt8]) throws(PrimitivesError) -> [UInt8] {
        guard key.count == keyByteCount else {
            throw PrimitivesError(.invalidKeyLength, "AES-256-CTR needs a \(keyByteCount)-byte key, got \(key.count) bytes")
        }
        guard iv.count == ivByteCount else {
            throw PrimitivesError(.invalidNonceLength, "AES-256-CTR needs a \(ivByteCount)-byte IV, got \(iv.count) bytes")
        }
        let context = try CipherContext(cipher: EVP_aes_256_ctr(), encrypting: true, key: key, iv: iv)
        let output = try context.transform(data)
        guard context.finish() else { throw .libcrypto("EVP_CipherFinal_ex (AES-256-CTR)") }
        return output
    }
}
