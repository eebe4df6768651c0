/// HKDF with SHA-256 (RFC 5869), extract-then-expand.
///
/// Matrix derives SSSS and key-backup encryption and MAC keys this way, Megolm derives every message's
/// keys this way (``HMACSHA256`` over the ratchet), and Sealbridge derives per-purpose keys from its
/// pickle key. Built on ``HMACSHA256`` rather than libcrypto's `EVP_KDF` "HKDF": that one looks the KDF
/// and its digest up by name on every call, which cost more than the derivation when it runs once per
/// decrypted Megolm message. RFC 5869's test vectors check it (`HKDFSHA256Tests`).
public enum HKDFSHA256 {
    /// The longest output RFC 5869 allows with SHA-256: 255 × 32 bytes.
    public static let maximumOutputByteCount = 255 * 32

    /// Derives `outputByteCount` bytes of key material.
    ///
    /// - Parameters:
    ///   - inputKeyMaterial: The secret to derive from.
    ///   - salt: A non-secret salt; empty means RFC 5869's default of 32 zero bytes (which is equivalent:
    ///     HMAC pads its key with zeros either way).
    ///   - info: Context that binds the output to one purpose, so different uses get unrelated keys.
    ///   - outputByteCount: 1 through ``maximumOutputByteCount``.
    /// - Returns: The derived bytes.
    /// - Throws: `.invalidInput` for an out-of-range length.
    public static func deriveKey(
        from inputKeyMaterial: [UInt8], salt: [UInt8], info: [UInt8], outputByteCount: Int
    ) throws(PrimitivesError) -> [UInt8] {
        guard (1...maximumOutputByteCount).contains(outputByteCount) else {
            throw PrimitivesError(.invalidInput, "HKDF-SHA-256 output must be 1...\(maximumOutputByteCount) bytes, asked for \(outputByteCount)")
        }
        var pseudorandomKey = HMACSHA256.authenticationCode(for: inputKeyMaterial, key: salt)
        defer { secureWipe(&pseudorandomKey) }
        var output: [UInt8] = []
        output.reserveCapacity(outputByteCount + HMACSHA256.byteCount)
        var block: [UInt8] = []
        defer { secureWipe(&block) }
        var counter: UInt8 = 1
        while output.count < outputByteCount {
            // T(n) = HMAC(PRK, T(n-1) ‖ info ‖ n)
            var input = block + info + [counter]
            secureWipe(&block)
            block = HMACSHA256.authenticationCode(for: input, key: pseudorandomKey)
            secureWipe(&input)
            output += block
            counter &+= 1
        }
        output.withUnsafeMutableBytes { buffer in
            let tail = UnsafeMutableRawBufferPointer(rebasing: buffer[outputByteCount...])
            tail.initializeMemory(as: UInt8.self, repeating: 0)
        }
        output.removeLast(output.count - outputByteCount)
        return output
    }
}
