internal import COpenSSL

/// HMAC-SHA256: attachment and SSSS MACs, webhook signatures.
public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key`.
    public static func authenticationCode(for message: [UInt8], key: [UInt8]) -> [UInt8] {
        var code = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        let result = key.withUnsafeBytes { keyBuffer in
            message.withUnsafeBytes { messageBuffer in
                code.withUnsafeMutableBytes { output in
                    HMAC(
                        EVP_sha256(), keyBuffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(key.count),
                        messageBuffer.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count,
                        output.baseAddress?.assumingMemoryBound(to: UInt8.self), &length)
                }
            }
        }
        precondition(result != nil && length == 32, "HMAC-SHA256 failed")
        return code
    }

    /// Whether `code` is the MAC of `message` under `key`, compared in constant time.
    public static func isValid(_ code: [UInt8], for message: [UInt8], key: [UInt8]) -> Bool {
        constantTimeEquals(authenticationCode(for: message, key: key), code)
    }
}
