internal import COpenSSL

/// HKDF with SHA-256 (RFC 5869), extract-then-expand.
///
/// Matrix derives SSSS and key-backup encryption and MAC keys this way, and Sealbridge derives
/// per-purpose keys from its pickle key. Runs through libcrypto's `EVP_KDF` "HKDF" implementation.
public enum HKDFSHA256 {
    /// The longest output RFC 5869 allows with SHA-256: 255 × 32 bytes.
    public static let maximumOutputByteCount = 255 * 32

    /// Derives `outputByteCount` bytes of key material.
    ///
    /// - Parameters:
    ///   - inputKeyMaterial: The secret to derive from.
    ///   - salt: A non-secret salt; empty means RFC 5869's default of 32 zero bytes (which is equivalent).
    ///   - info: Context that binds the output to one purpose, so different uses get unrelated keys.
    ///   - outputByteCount: 1 through ``maximumOutputByteCount``.
    /// - Returns: The derived bytes.
    /// - Throws: `.invalidInput` for an out-of-range length; `.libcrypto` if libcrypto fails.
    public static func deriveKey(
        from inputKeyMaterial: [UInt8], salt: [UInt8], info: [UInt8], outputByteCount: Int
    ) throws(PrimitivesError) -> [UInt8] {
        guard (1...maximumOutputByteCount).contains(outputByteCount) else {
            throw PrimitivesError(.invalidInput, "HKDF-SHA-256 output must be 1...\(maximumOutputByteCount) bytes, asked for \(outputByteCount)")
        }
        guard let kdf = EVP_KDF_fetch(nil, "HKDF", nil) else { throw .libcrypto("EVP_KDF_fetch(HKDF)") }
        defer { EVP_KDF_free(kdf) }
        guard let context = EVP_KDF_CTX_new(kdf) else { throw .libcrypto("EVP_KDF_CTX_new") }
        defer { EVP_KDF_CTX_free(context) }

        let parameters = KDFParameters()
        parameters.appendUTF8String(OSSL_KDF_PARAM_DIGEST, "SHA256")
        parameters.appendOctetString(OSSL_KDF_PARAM_KEY, inputKeyMaterial)
        parameters.appendOctetString(OSSL_KDF_PARAM_SALT, salt)
        parameters.appendOctetString(OSSL_KDF_PARAM_INFO, info)

        var output = [UInt8](repeating: 0, count: outputByteCount)
        let status = parameters.withParameters { list in
            output.withUnsafeMutableBufferPointer { EVP_KDF_derive(context, $0.baseAddress, $0.count, list) }
        }
        guard status == 1 else { throw .libcrypto("EVP_KDF_derive(HKDF)") }
        return output
    }
}
