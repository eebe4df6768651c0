internal import COpenSSL

/// Compares two byte arrays without revealing, through timing, where they first differ.
///
/// Use it for every comparison of a MAC, tag, hash or secret against an expected value; `==` stops at
/// the first differing byte and lets an attacker forge a code one byte at a time. Lengths are treated
/// as public: arrays of different lengths return `false` immediately.
///
/// - Parameters:
///   - a: One value.
///   - b: The other.
/// - Returns: `true` if both have the same length and the same bytes.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return a.withNonNullBytes { left, count in
        b.withNonNullBytes { right, _ in CRYPTO_memcmp(left, right, count) == 0 }
    }
}
