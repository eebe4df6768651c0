internal import COpenSSL

/// SHA-512 (FIPS 180-4).
///
/// Ed25519 expands a 32-byte seed into its secret scalar and nonce prefix with it (RFC 8032 §5.1.5);
/// ``Olm`` needs that expanded key to write a new account the way libolm stores it.
public enum SHA512 {
    /// The digest length: 64 bytes.
    public static let byteCount = 64

    /// Hashes `data` into `output`: the digest is a secret where it is used (an expanded Ed25519 key), so
    /// it goes straight into the caller's buffer and nowhere else.
    ///
    /// Does not throw, as ``SHA256/hash(_:)``: with a fixed digest libcrypto can only fail by running out
    /// of memory, which traps.
    ///
    /// - Precondition: `output` holds ``byteCount`` bytes.
    public static func hash(_ data: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count == byteCount, "SHA-512 writes \(byteCount) bytes")
        var written: UInt32 = 0
        let status = EVP_Digest(
            data.baseAddress ?? UnsafeRawPointer(output.baseAddress!), data.count,
            output.baseAddress!.assumingMemoryBound(to: UInt8.self), &written, EVP_sha512(), nil)
        guard status == 1, written == byteCount else {
            fatalError(PrimitivesError.libcrypto("EVP_Digest(SHA-512)").description)
        }
    }

}
