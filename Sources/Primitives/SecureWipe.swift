internal import COpenSSL

/// Overwrites key material with zeros in a way the optimiser may not remove.
///
/// Call it when a key's owner is done with it, so the bytes do not linger in freed memory. The array
/// keeps its length and ends up all zeros. It can only wipe the storage this array owns: if the array
/// shares its buffer with a copy, Swift first gives it a private buffer and the copy is untouched, and
/// buffers left behind by earlier growth are not reachable. Keep secrets in one array and do not copy
/// them around.
///
/// - Parameter bytes: The secret to wipe in place.
public func secureWipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
    }
}
