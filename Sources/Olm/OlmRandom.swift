internal import COlm
#if canImport(Glibc)
import Glibc
#endif

/// Random bytes for libolm, drawn from the kernel CSPRNG and wiped as soon as libolm has used them.
enum OlmRandom {
    /// Calls `body` with `count` fresh random bytes, then wipes them.
    ///
    /// `getrandom(2)` blocks only until the kernel pool is initialised once after boot; a failure other
    /// than an interrupted call is unrecoverable (we must never hand libolm predictable bytes), so it traps.
    static func withBytes<R>(_ count: Int, _ body: (UnsafeMutableRawPointer?, Int) -> R) -> R {
        guard count > 0 else { return body(nil, 0) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
        defer {
            sealbridge_olm_wipe(buffer, count)
            buffer.deallocate()
        }
        fill(UnsafeMutableRawBufferPointer(start: buffer, count: count))
        return body(buffer, count)
    }

    /// Fills `buffer` from the kernel CSPRNG, in place (for a secret that must live only in `buffer`).
    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        let count = buffer.count
        var filled = 0
        while filled < count {
            let n = getrandom(base + filled, count - filled, 0)
            if n > 0 {
                filled += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                fatalError("getrandom(2) failed (errno \(errno)); refusing to continue without randomness")
            }
        }
    }
}
