internal import COpenSSL

/// HKDF-SHA256 (RFC 5869): derives the keys that encrypt pickles and secrets at rest, and SSSS keys.
public enum HKDFSHA256 {
    /// Extracts and expands `outputByteCount` bytes (at most 255 × 32).
    public static func deriveKey(
        from inputKeyMaterial: [UInt8], salt: [UInt8], info: [UInt8], outputByteCount: Int
    ) throws(PrimitivesError) -> [UInt8] {
        guard (1...255 * 32).contains(outputByteCount) else {
            throw PrimitivesError(code: .invalidInput, message: "HKDF output length \(outputByteCount) out of range")
        }
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else { throw .libcrypto("EVP_PKEY_CTX_new_id(HKDF)") }
        defer { EVP_PKEY_CTX_free(context) }
        var output = [UInt8](repeating: 0, count: outputByteCount)
        var length = outputByteCount
        let ok = inputKeyMaterial.withUnsafeBytes { ikm in
            salt.withUnsafeBytes { saltBuffer in
                info.withUnsafeBytes { infoBuffer in
                    output.withUnsafeMutableBytes { out -> Bool in
                        // libcrypto rejects a NULL pointer even for zero-length salt/info; pass a valid one.
                        let empty: [UInt8] = [0]
                        return empty.withUnsafeBytes { placeholder in
                            EVP_PKEY_derive_init(context) == 1
                                && EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) == 1
                                && EVP_PKEY_CTX_set1_hkdf_salt(
                                    context, (saltBuffer.baseAddress ?? placeholder.baseAddress)!.assumingMemoryBound(to: UInt8.self),
                                    Int32(salt.count)) == 1
                                && EVP_PKEY_CTX_set1_hkdf_key(
                                    context, (ikm.baseAddress ?? placeholder.baseAddress)!.assumingMemoryBound(to: UInt8.self),
                                    Int32(inputKeyMaterial.count)) == 1
                                && EVP_PKEY_CTX_add1_hkdf_info(
                                    context, (infoBuffer.baseAddress ?? placeholder.baseAddress)!.assumingMemoryBound(to: UInt8.self),
                                    Int32(info.count)) == 1
                                && EVP_PKEY_derive(context, out.baseAddress?.assumingMemoryBound(to: UInt8.self), &length) == 1
                        }
                    }
                }
            }
        }
        guard ok, length == outputByteCount else { throw .libcrypto("HKDF-SHA256") }
        return output
    }
}

/// PBKDF2-HMAC-SHA512: turns a passphrase into a key (SSSS passphrases, key export files).
public enum PBKDF2SHA512 {
    public static func deriveKey(
        from password: [UInt8], salt: [UInt8], iterations: Int, outputByteCount: Int
    ) throws(PrimitivesError) -> [UInt8] {
        guard iterations >= 1, iterations <= Int(Int32.max), outputByteCount >= 1 else {
            throw PrimitivesError(code: .invalidInput, message: "PBKDF2 needs at least one iteration and one output byte")
        }
        var output = [UInt8](repeating: 0, count: outputByteCount)
        let ok = password.withUnsafeBytes { passwordBuffer in
            salt.withUnsafeBytes { saltBuffer in
                output.withUnsafeMutableBytes { out in
                    PKCS5_PBKDF2_HMAC(
                        passwordBuffer.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(password.count),
                        saltBuffer.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(salt.count), Int32(iterations),
                        EVP_sha512(), Int32(outputByteCount), out.baseAddress?.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard ok == 1 else { throw .libcrypto("PBKDF2-HMAC-SHA512") }
        return output
    }
}
