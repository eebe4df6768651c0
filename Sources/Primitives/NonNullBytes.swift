/// A pointer that is never nil, even for an empty array.
///
/// Swift hands out a nil base address for empty arrays, and several libcrypto entry points treat a
/// null pointer as "parameter absent" or as an error even when the length is zero. Passing a pointer to
/// a dummy byte with a length of zero says "present and empty", which is what an empty salt, key or
/// message means.
extension Array where Element == UInt8 {
    func withNonNullBytes<Result, Failure: Error>(
        _ body: (UnsafePointer<UInt8>, Int) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let outcome: Swift.Result<Result, Failure> = withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress {
                return Swift.Result { () throws(Failure) in try body(base, buffer.count) }
            }
            var empty: UInt8 = 0
            return withUnsafePointer(to: &empty) { pointer in
                Swift.Result { () throws(Failure) in try body(pointer, 0) }
            }
        }
        return try outcome.get()
    }
}
