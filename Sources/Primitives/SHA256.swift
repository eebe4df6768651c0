/// SHA-256 (FIPS 180-4).
///
/// Matrix uses it for encrypted-attachment integrity hashes and key-verification commitments.
public enum SHA256 {
    /// The digest length: 32 bytes.
    public static let byteCount = 32

    /// Hashes `data`.
    ///
    /// Does not throw: with a fixed digest libcrypto can only fail by running out of memory, which
    /// traps with libcrypto's message rather than returning a bogus digest.
    ///
    /// - Parameter data: The bytes to hash; may be empty.
    /// - Returns: 32 bytes.
    public static func hash(_ data: [UInt8]) -> [UInt8] {
        FetchedDigest.sha256(data, [])
    }
}
