internal import COpenSSL

/// PBKDF2 with HMAC-SHA-512 (RFC 8018).
///
/// Matrix uses it for passphrase-protected SSSS keys and room-key exports (with SHA-512 and
/// server-chosen iteration counts). libcrypto's SP 800-132 lower bounds are not applied, because the
/// parameters come from existing Matrix data that we must be able to read.
public enum PBKDF2SHA512 {
    /// Stretches `password` into `outputByteCount` bytes of key material.
    ///
    /// - Parameters:
    ///   - password: The password bytes (usually UTF-8); may be empty.
    ///   - salt: The salt; may be empty, though it should not be.
    ///   - iterations: 1 through `Int32.max`; cost grows linearly.
    ///   - outputByteCount: 1 through `Int32.max`.
    /// - Returns: The derived bytes.
    /// - Throws: `.invalidInput` for out-of-range counts; `.libcrypto` if libcrypto fails.
    public static func deriveKey(
        from password: [UInt8], salt: [UInt8], iterations: Int, outputByteCount: Int
    ) throws(PrimitivesError) -> [UInt8] {
        let limit = Int(Int32.max)
        guard (1...limit).contains(iterations) else {
            throw PrimitivesError(.invalidInput, "PBKDF2 iterations must be 1...\(limit), got \(iterations)")
        }
        guard (1...limit).contains(outputByteCount) else {
            throw PrimitivesError(.invalidInput, "PBKDF2 output must be 1...\(limit) bytes, asked for \(outputByteCount)")
        }
        guard password.count <= limit, salt.count <= limit else {
            throw PrimitivesError(.invalidInput, "PBKDF2 password or salt longer than \(limit) bytes")
        }
        var output = [UInt8](repeating: 0, count: outputByteCount)
        let status = password.withNonNullBytes { passwordBytes, passwordCount in
            salt.withNonNullBytes { saltBytes, saltCount in
                output.withUnsafeMutableBufferPointer { buffer in
                    passwordBytes.withMemoryRebound(to: CChar.self, capacity: Swift.max(passwordCount, 1)) { passwordChars in
                        PKCS5_PBKDF2_HMAC(
                            passwordChars, Int32(passwordCount), saltBytes, Int32(saltCount),
                            Int32(iterations), EVP_sha512(), Int32(buffer.count), buffer.baseAddress)
                    }
                }
            }
        }
        guard status == 1 else { throw .libcrypto("PKCS5_PBKDF2_HMAC(SHA-512)") }
        return output
    }
}
