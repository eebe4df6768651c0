internal import COpenSSL

/// Cryptographically secure random bytes from libcrypto's CSPRNG (seeded by the kernel).
public enum SecureRandom {
    /// `count` random bytes.
    ///
    /// A CSPRNG failure is unrecoverable: returning predictable bytes would silently break every key
    /// made from them, so this traps instead.
    public static func bytes(count: Int) -> [UInt8] {
        precondition(count >= 0, "negative byte count")
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            guard RAND_bytes(buffer.baseAddress, Int32(count)) == 1 else {
                fatalError("RAND_bytes failed: \(PrimitivesError.libcrypto("RAND_bytes").message)")
            }
            initialized = count
        }
    }
}

/// Overwrites `bytes` with zeros in a way the optimiser keeps; use on key material once done.
public func secureWipe(_ bytes: inout [UInt8]) {
    let count = bytes.count
    bytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, count) }
}

/// Compares two byte strings in time independent of where they differ (tokens, MACs).
///
/// Lengths are not secret here (a token's length is public), so different lengths return early.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return a.withUnsafeBytes { left in
        b.withUnsafeBytes { right in CRYPTO_memcmp(left.baseAddress, right.baseAddress, a.count) == 0 }
    }
}
