internal import COlm

/// Small buffer helpers shared by the wrappers, so each libolm call site stays one line.
enum OlmBytes {
    /// Runs `body` over a private, mutable copy of `input` and wipes the copy afterwards.
    ///
    /// Several libolm functions decode base64 in place and so overwrite their input; they get a copy.
    static func withMutableCopy<R>(
        of input: some Collection<UInt8>, _ body: (UnsafeMutableRawPointer?, Int) -> R
    ) -> R {
        var copy = Array(input)
        let count = copy.count
        defer { wipe(&copy) }
        return copy.withUnsafeMutableBytes { body($0.baseAddress, count) }
    }

    /// Produces up to `capacity` bytes written by `body`, which returns how many it wrote (or `olm_error()`).
    ///
    /// - Returns: The bytes and libolm's raw result, so the caller can `check` it.
    static func output(
        capacity: Int, _ body: (UnsafeMutableRawPointer?, Int) -> Int
    ) -> (bytes: [UInt8], result: Int) {
        var result = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: max(capacity, 1)) { buffer, initialized in
            result = body(UnsafeMutableRawPointer(buffer.baseAddress), capacity)
            if result == olm_error() || result < 0 || result > capacity {
                sealbridge_olm_wipe(buffer.baseAddress, buffer.count)
                initialized = 0
            } else {
                initialized = result
            }
        }
        return (bytes, result)
    }

    /// Overwrites `bytes` with zeros in a way the optimiser keeps.
    static func wipe(_ bytes: inout [UInt8]) {
        let count = bytes.count
        bytes.withUnsafeMutableBytes { sealbridge_olm_wipe($0.baseAddress, count) }
    }

    /// Decodes libolm's ASCII output (base64, JSON) as a String.
    static func string(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

/// Owns the raw memory of one libolm object: allocated to libolm's size, cleared and freed on release.
///
/// Every Olm class holds one of these; `clear` runs libolm's own wipe, then the bytes are zeroed again
/// before the memory is returned, so no key outlives its object.
struct OlmMemory {
    let raw: UnsafeMutableRawPointer
    let size: Int

    init(size: Int) {
        self.size = size
        self.raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
    }

    func release(clear: () -> Void) {
        clear()
        sealbridge_olm_wipe(raw, size)
        raw.deallocate()
    }
}
