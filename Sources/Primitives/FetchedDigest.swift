internal import COpenSSL

/// SHA-256 as an explicitly fetched libcrypto digest.
///
/// `EVP_sha256()` makes libcrypto 3 look the implementation up in its provider store (locks, name
/// comparisons) on every use; an `EVP_MD` fetched once is used directly. The fetched object is
/// immutable and may be shared by every thread; it lives as long as the process.
enum FetchedDigest {
    nonisolated(unsafe) static let sha256Algorithm: OpaquePointer = {
        guard let digest = EVP_MD_fetch(nil, "SHA256", nil) else {
            fatalError(PrimitivesError.libcrypto("EVP_MD_fetch(SHA256)").description)
        }
        return digest
    }()

    /// SHA-256 of `first` followed by `second`.
    ///
    /// Does not throw: with a fetched digest libcrypto can only fail by running out of memory, which
    /// traps rather than returning a bogus digest.
    static func sha256(_ first: [UInt8], _ second: [UInt8]) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { fatalError(PrimitivesError.libcrypto("EVP_MD_CTX_new").description) }
        defer { EVP_MD_CTX_free(context) }
        var digest = [UInt8](repeating: 0, count: SHA256.byteCount)
        var written: UInt32 = 0
        let status = first.withNonNullBytes { firstBytes, firstCount in
            second.withNonNullBytes { secondBytes, secondCount in
                digest.withUnsafeMutableBufferPointer { output in
                    EVP_DigestInit_ex2(context, sha256Algorithm, nil) == 1
                        && EVP_DigestUpdate(context, firstBytes, firstCount) == 1
                        && EVP_DigestUpdate(context, secondBytes, secondCount) == 1
                        && EVP_DigestFinal_ex(context, output.baseAddress, &written) == 1
                }
            }
        }
        guard status, written == SHA256.byteCount else {
            fatalError(PrimitivesError.libcrypto("SHA-256 digest").description)
        }
        return digest
    }
}
