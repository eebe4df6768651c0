/// The 32-byte secret that encrypts an Olm object's pickle.
///
/// libolm accepts keys of any length; Sealbridge insists on exactly 32 random bytes (derived with HKDF
/// from the operator's secret by the store) so a short or empty key can never slip through.
public struct PickleKey: Sendable {
    /// Key length in bytes.
    public static let byteCount = 32

    let bytes: [UInt8]

    /// - Throws: ``OlmError`` with code `invalidArgument` unless `bytes` holds exactly 32 bytes.
    public init(_ bytes: [UInt8]) throws(OlmError) {
        guard bytes.count == Self.byteCount else {
            throw OlmError(code: .invalidArgument, operation: "PickleKey(\(bytes.count) bytes, need 32)")
        }
        self.bytes = bytes
    }
}
