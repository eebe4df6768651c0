internal import COlm

/// Shared pickle/unpickle plumbing: every libolm object pickles the same way, only the functions differ.
enum Pickling {
    /// Pickles through `pickle(key, keyLength, out, outLength)` into a base64 string.
    static func pickle(
        key: PickleKey, length: Int, operation: String,
        lastError: () -> OlmErrorCode,
        _ pickle: (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int) -> Int
    ) throws(OlmError) -> String {
        let (bytes, result) = key.bytes.withUnsafeBytes { keyBuffer in
            OlmBytes.output(capacity: length) { out, capacity in
                pickle(keyBuffer.baseAddress, keyBuffer.count, out, capacity)
            }
        }
        try OlmError.check(result, lastError(), operation)
        return OlmBytes.string(bytes)
    }

    /// Unpickles through `unpickle(key, keyLength, pickleCopy, pickleLength)`.
    static func unpickle(
        _ pickle: String, key: PickleKey, operation: String,
        lastError: () -> OlmErrorCode,
        _ unpickle: (UnsafeRawPointer?, Int, UnsafeMutableRawPointer?, Int) -> Int
    ) throws(OlmError) {
        let result = key.bytes.withUnsafeBytes { keyBuffer in
            OlmBytes.withMutableCopy(of: pickle.utf8) { buffer, count in
                unpickle(keyBuffer.baseAddress, keyBuffer.count, buffer, count)
            }
        }
        try OlmError.check(result, lastError(), operation)
    }
}
