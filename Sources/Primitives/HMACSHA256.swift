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
        // RFC 2104 over SHA-256 fetched once (``FetchedDigest``): libcrypto's one-shot HMAC looks the
        // MAC and the digest up by name on every call, which cost more than hashing a short message,
        // and this runs twice for every record sealed or opened (``StoreKey``'s HKDF).
        var block = [UInt8](repeating: 0, count: blockByteCount)
        if key.count > blockByteCount {
            var hashed = SHA256.hash(key)
            defer { secureWipe(&hashed) }
            block.replaceSubrange(0..<SHA256.byteCount, with: hashed)
        } else {
            block.replaceSubrange(0..<key.count, with: key)
        }
        defer { secureWipe(&block) }
        for index in block.indices { block[index] ^= 0x36 }
        var inner = FetchedDigest.sha256(block, message)
        defer { secureWipe(&inner) }
        for index in block.indices { block[index] ^= 0x36 ^ 0x5C }
        return FetchedDigest.sha256(block, inner)
    }

    /// SHA-256's block size, the length HMAC pads its key to.
    static let blockByteCount = 64

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
