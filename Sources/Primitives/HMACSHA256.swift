internal import COpenSSL

/// HMAC with SHA-256 (RFC 2104).
///
/// Matrix uses it to authenticate SSSS secrets and key-backup payloads (whose encryption is
/// unauthenticated AES-CTR) and inside HKDF.
public enum HMACSHA256 {
    /// The length of an authentication code: 32 bytes.
    public static let byteCount = 32

    /// Computes the authentication code of `message` under `key`.
    ///
    /// Does not throw: with a fixed digest the only way libcrypto can fail is running out of memory,
    /// which traps with libcrypto's error message rather than returning a code that could be mistaken
    /// for a real one.
    ///
    /// - Parameters:
    ///   - message: The bytes to authenticate; may be empty.
    ///   - key: The key; any length (keys longer than 64 bytes are hashed first, per RFC 2104).
    /// - Returns: 32 bytes.
    public static func authenticationCode(for message: [UInt8], key: [UInt8]) -> [UInt8] {
        precondition(key.count <= Int(Int32.max), "HMAC-SHA-256 key longer than libcrypto accepts")
        var code = [UInt8](repeating: 0, count: byteCount)
        var written: UInt32 = 0
        let result = key.withNonNullBytes { keyBytes, keyCount in
            message.withNonNullBytes { messageBytes, messageCount in
                code.withUnsafeMutableBufferPointer { output in
                    HMAC(EVP_sha256(), keyBytes, Int32(keyCount), messageBytes, messageCount, output.baseAddress, &written)
                }
            }
        }
        guard result != nil, written == byteCount else {
            fatalError(PrimitivesError.libcrypto("HMAC(SHA-256)").description)
        }
        return code
    }

    /// Checks an authentication code in constant time.
    ///
    /// - Parameters:
    ///   - code: The code received; a code of the wrong length is simply invalid.
    ///   - message: The message it claims to authenticate.
    ///   - key: The key.
    /// - Returns: `true` only if `code` is exactly the HMAC of `message` under `key`.
    public static func isValid(_ code: [UInt8], for message: [UInt8], key: [UInt8]) -> Bool {
        var expected = authenticationCode(for: message, key: key)
        defer { secureWipe(&expected) }
        return constantTimeEquals(expected, code)
    }
}
