internal import COpenSSL

/// X25519 (RFC 7748): the public key that belongs to a private key.
///
/// Olm's one-time keys are Curve25519 key pairs. libolm computes each public key with a generic
/// Montgomery ladder (about 150 µs here); libcrypto's fixed-base multiplication takes about 40 µs, and a
/// puppet uploads 50 of them, so ``Olm`` makes one-time keys with this (issue 12 point 4). The result is
/// the same function of the same private key: RFC 7748 clamps the scalar on use, as libolm does.
public enum X25519 {
    /// Key length in bytes, private and public alike.
    public static let keyByteCount = 32

    /// Computes `X25519(privateKey, 9)`.
    ///
    /// - Parameter privateKey: 32 bytes, used as given (clamped inside the multiplication, not in place).
    /// - Returns: The 32-byte public key.
    /// - Throws: `.invalidKeyLength` for a key that is not 32 bytes; `.libcrypto` if libcrypto fails.
    public static func publicKey(forPrivateKey privateKey: [UInt8]) throws(PrimitivesError) -> [UInt8] {
        var publicKey = [UInt8](repeating: 0, count: keyByteCount)
        let outcome: Result<Void, PrimitivesError> = privateKey.withUnsafeBytes { secret in
            publicKey.withUnsafeMutableBytes { output in
                Result { () throws(PrimitivesError) in try computePublicKey(forPrivateKey: secret, into: output) }
            }
        }
        try outcome.get()
        return publicKey
    }

    /// Computes `X25519(privateKey, 9)` into `output`, for callers that keep the private key in a buffer
    /// of their own (so it is never copied into a Swift array that could outlive a wipe).
    ///
    /// - Throws: `.invalidKeyLength` unless both buffers hold 32 bytes; `.libcrypto` if libcrypto fails.
    public static func computePublicKey(
        forPrivateKey privateKey: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) throws(PrimitivesError) {
        guard privateKey.count == keyByteCount, output.count == keyByteCount else {
            throw PrimitivesError(.invalidKeyLength, "X25519 needs \(keyByteCount)-byte keys, got \(privateKey.count) and \(output.count) bytes")
        }
        // EVP_PKEY_free cleanses the copy of the private key libcrypto made.
        guard let key = EVP_PKEY_new_raw_private_key(
            EVP_PKEY_X25519, nil, privateKey.baseAddress!.assumingMemoryBound(to: UInt8.self), keyByteCount)
        else { throw .libcrypto("EVP_PKEY_new_raw_private_key(X25519)") }
        defer { EVP_PKEY_free(key) }
        var length = keyByteCount
        let status = EVP_PKEY_get_raw_public_key(key, output.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
        guard status == 1, length == keyByteCount else { throw .libcrypto("EVP_PKEY_get_raw_public_key(X25519)") }
    }
}
