internal import COpenSSL

/// An `OSSL_PARAM` list whose strings and buffers live as long as the list does.
///
/// `OSSL_PARAM` stores raw pointers to its key and value, so the memory must outlive every call that
/// reads the list; Swift's temporary string-to-pointer bridging does not. Each value is copied into
/// memory owned here, and secret values (input key material) are cleansed when the list is freed.
final class KDFParameters {
    private var allocations: [UnsafeMutableRawBufferPointer] = []
    private var parameters: [OSSL_PARAM] = []

    deinit {
        for allocation in allocations {
            if let base = allocation.baseAddress { OPENSSL_cleanse(base, allocation.count) }
            allocation.deallocate()
        }
    }

    /// Adds a UTF-8 string parameter such as a digest name.
    func appendUTF8String(_ key: String, _ value: String) {
        let keyCopy = copyCString(key)
        let valueCopy = copyCString(value)
        parameters.append(OSSL_PARAM_construct_utf8_string(keyCopy, valueCopy, value.utf8.count))
    }

    /// Adds an octet-string parameter such as a key, salt or info; an empty value is present but empty.
    func appendOctetString(_ key: String, _ value: [UInt8]) {
        let keyCopy = copyCString(key)
        let valueCopy = allocate(Swift.max(value.count, 1))
        value.withUnsafeBytes { valueCopy.copyMemory(from: $0) }
        parameters.append(OSSL_PARAM_construct_octet_string(keyCopy, valueCopy.baseAddress, value.count))
    }

    /// Calls `body` with the list, terminated as libcrypto expects.
    func withParameters<Result>(_ body: (UnsafePointer<OSSL_PARAM>) -> Result) -> Result {
        let terminated = parameters + [OSSL_PARAM_construct_end()]
        return terminated.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    private func copyCString(_ string: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(string.utf8) + [0]
        let buffer = allocate(utf8.count)
        utf8.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return buffer.baseAddress!.bindMemory(to: CChar.self, capacity: utf8.count)
    }

    private func allocate(_ count: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        allocations.append(buffer)
        return buffer
    }
}
