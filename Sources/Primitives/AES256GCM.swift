internal import COpenSSL

/// AES-256 in Galois/Counter Mode: authenticated encryption with associated data.
///
/// This is what Sealbridge uses to encrypt pickles and secrets at rest. Decryption either returns the
/// exact plaintext that was sealed, with the same associated data, or throws `.authenticationFailed`;
/// it never returns partial or unverified plaintext.
///
/// Nonces are 12 bytes, the length GCM is designed for. A key/nonce pair must never seal two messages;
/// with random nonces (``seal(_:key:authenticating:)``) keep to well under 2³² messages per key.
public enum AES256GCM {
    /// The key length: 32 bytes.
    public static let keyByteCount = 32
    /// The nonce length: 12 bytes.
    public static let nonceByteCount = 12
    /// The authentication tag length: 16 bytes (the full tag; truncated tags are not supported).
    public static let tagByteCount = 16

    /// Encrypts and authenticates `plaintext` under a caller-chosen nonce.
    ///
    /// - Parameters:
    ///   - plaintext: The bytes to encrypt; may be empty.
    ///   - key: A 32-byte key.
    ///   - nonce: A 12-byte nonce, unique for this key.
    ///   - aad: Associated data that is authenticated but not encrypted (for example a record's id, so a
    ///     ciphertext cannot be moved to another record). The same bytes must be given to `open`.
    /// - Returns: The nonce, ciphertext and tag.
    /// - Throws: `.invalidKeyLength`, `.invalidNonceLength`, or `.libcrypto`.
    public static func seal(
        _ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], authenticating aad: [UInt8] = []
    ) throws(PrimitivesError) -> SealedBox {
        try checkKey(key)
        try checkNonce(nonce)
        let context = try CipherContext(cipher: EVP_aes_256_gcm(), encrypting: true, key: key, iv: nonce)
        try context.authenticate(aad)
        let ciphertext = try context.transform(plaintext)
        guard context.finish() else { throw .libcrypto("EVP_CipherFinal_ex (AES-256-GCM seal)") }
        let tag = try context.gcmTag(byteCount: tagByteCount)
        return SealedBox(validatedNonce: nonce, ciphertext: ciphertext, tag: tag)
    }

    /// Encrypts and authenticates `plaintext` under a fresh random nonce.
    ///
    /// - Parameters:
    ///   - plaintext: The bytes to encrypt; may be empty.
    ///   - key: A 32-byte key.
    ///   - aad: Associated data that is authenticated but not encrypted.
    /// - Returns: The box; its ``SealedBox/combined`` form carries the nonce for `open`.
    /// - Throws: `.invalidKeyLength` or `.libcrypto`.
    public static func seal(
        _ plaintext: [UInt8], key: [UInt8], authenticating aad: [UInt8] = []
    ) throws(PrimitivesError) -> SealedBox {
        try seal(plaintext, key: key, nonce: SecureRandom.bytes(count: nonceByteCount), authenticating: aad)
    }

    /// Verifies and decrypts a sealed box.
    ///
    /// The plaintext is only returned once the tag has verified; on failure the decrypted bytes are wiped.
    ///
    /// - Parameters:
    ///   - box: The nonce, ciphertext and tag from `seal`.
    ///   - key: The 32-byte key it was sealed with.
    ///   - aad: The associated data it was sealed with.
    /// - Returns: The original plaintext.
    /// - Throws: `.authenticationFailed` for a wrong key, wrong associated data or any modified byte;
    ///   `.invalidKeyLength`; `.libcrypto`.
    public static func open(
        _ box: SealedBox, key: [UInt8], authenticating aad: [UInt8] = []
    ) throws(PrimitivesError) -> [UInt8] {
        try checkKey(key)
        let context = try CipherContext(cipher: EVP_aes_256_gcm(), encrypting: false, key: key, iv: box.nonce)
        try context.authenticate(aad)
        var plaintext = try context.transform(box.ciphertext)
        try context.setGCMTag(box.tag)
        guard context.finish() else {
            secureWipe(&plaintext)
            LibcryptoErrorQueue.clear()
            throw PrimitivesError(.authenticationFailed, "AES-256-GCM tag did not verify (wrong key, associated data, or modified ciphertext)")
        }
        return plaintext
    }

    private static func checkKey(_ key: [UInt8]) throws(PrimitivesError) {
        guard key.count == keyByteCount else {
            throw PrimitivesError(.invalidKeyLength, "AES-256-GCM needs a \(keyByteCount)-byte key, got \(key.count) bytes")
        }
    }

    static func checkNonce(_ nonce: [UInt8]) throws(PrimitivesError) {
        guard nonce.count == nonceByteCount else {
            throw PrimitivesError(.invalidNonceLength, "AES-256-GCM needs a \(nonceByteCount)-byte nonce, got \(nonce.count) bytes")
        }
    }
}
