internal import COpenSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Cryptographically secure random bytes for keys, nonces and IVs.
///
/// Draws from libcrypto's DRBG (`RAND_bytes`). Should that ever fail, it falls back to the kernel
/// (`getrandom(2)` via `getentropy` on Linux, `arc4random_buf` on Darwin); if that fails too the process traps. It never
/// returns fewer bytes, predictable bytes or zeros: a key made of zeros is worse than a crash.
public enum SecureRandom {
    /// libcrypto lengths are `int`; larger requests are filled in chunks of this size.
    private static let maximumChunk = 1 << 30

    /// Returns `count` random bytes.
    ///
    /// - Parameter count: How many bytes; must not be negative.
    /// - Returns: Exactly `count` bytes.
    public static func bytes(count: Int) -> [UInt8] {
        precondition(count >= 0, "SecureRandom.bytes(count:) needs a non-negative count, got \(count)")
        var output = [UInt8](repeating: 0, count: count)
        output.withUnsafeMutableBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let chunk = Swift.min(buffer.count - offset, maximumChunk)
                let start = buffer.baseAddress! + offset
                if RAND_bytes(start, Int32(chunk)) != 1 {
                    let reason = LibcryptoErrorQueue.drain().joined(separator: "; ")
                    fillFromKernel(UnsafeMutableBufferPointer(start: start, count: chunk), libcryptoReason: reason)
                }
                offset += chunk
            }
        }
        return output
    }

    /// The fallback when libcrypto's generator fails: ask the kernel directly or trap.
    private static func fillFromKernel(_ buffer: UnsafeMutableBufferPointer<UInt8>, libcryptoReason: String) {
        #if os(Linux)
        // getentropy(3) is glibc's wrapper over getrandom(2), limited to 256 bytes a call.
        var offset = 0
        while offset < buffer.count {
            let chunk = Swift.min(buffer.count - offset, 256)
            guard getentropy(buffer.baseAddress! + offset, chunk) == 0 else {
                fatalError("SecureRandom: RAND_bytes failed (\(libcryptoReason)) and getrandom(2) failed (errno \(errno)); refusing to continue without secure randomness")
            }
            offset += chunk
        }
        #elseif canImport(Darwin)
        arc4random_buf(buffer.baseAddress!, buffer.count)
        #else
        fatalError("SecureRandom: RAND_bytes failed (\(libcryptoReason)) and this platform has no fallback; refusing to continue without secure randomness")
        #endif
    }
}
