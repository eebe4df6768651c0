internal import COpenSSL

/// AES-256 in CBC mode with PKCS #7 padding: unauthenticated.
///
/// Only for reading and writing formats that others fixed: libolm's pickle envelope (AES-256-CBC, then
/// a truncated HMAC-SHA-256 over the ciphertext, which its caller checks first). Never use it for data
/// of our own; prefer ``AES256GCM``.
public enum AES256CBC {
    /// The key length: 32 bytes.
    public static let keyByteCount = 32
    /// The IV length: 16 bytes.
    public static let ivByteCount = 16

    /// Encrypts `plaintext`, padded to a whole number of 16-byte blocks (always at least one byte of padding).
    ///
    /// - Throws: `.invalidKeyLength`, `.invalidNonceLength`, or `.libcrypto` if libcrypto fails.
    public static func encrypt(_ plaintext: [UInt8], key: [UInt8], iv: [UInt8]) throws(PrimitivesError) -> [UInt8] {
        try check(key: key, iv: iv)
        return try CipherContext(cipher: EVP_aes_256_cbc(), encrypting: true, key: key, iv: iv).padded(plaintext)
    }

    /// Decrypts `ciphertext` and removes its padding.
    ///
    /// - Throws: `.invalidInput` when the ciphertext is not whole blocks or its padding is wrong (so the
    ///   caller must authenticate the ciphertext before calling: a padding error must not be an oracle);
    ///   `.invalidKeyLength`, `.invalidNonceLength`, `.libcrypto`.
    public static func decrypt(_ ciphertext: [UInt8], key: [UInt8], iv: [UInt8]) throws(PrimitivesError) -> [UInt8] {
        try check(key: key, iv: iv)
        guard !ciphertext.isEmpty, ciphertext.count % 16 == 0 else {
            throw PrimitivesError(.invalidInput, "AES-256-CBC ciphertext of \(ciphertext.count) bytes is not whole blocks")
        }
        return try CipherContext(cipher: EVP_aes_256_cbc(), encrypting: false, key: key, iv: iv).padded(ciphertext)
    }

    private static func check(key: [UInt8], iv: [UInt8]) throws(PrimitivesError) {
        guard key.count == keyByteCount else {
            throw PrimitivesError(.invalidKeyLength, "AES-256-CBC needs a \(keyByteCount)-byte key, got \(key.count) bytes")
        }
        guard iv.count == ivByteCount else {
            throw PrimitivesError(.invalidNonceLength, "AES-256-CBC needs a \(ivByteCount)-byte IV, got \(iv.count) bytes")
        }
    }
}
