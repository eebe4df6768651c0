/// An Olm ciphertext as carried in `m.olm.v1.curve25519-aes-sha2` content: a type and a base64 body.
public struct OlmMessage: Sendable, Hashable {
    /// The two message types of the Olm protocol.
    public enum Kind: Int, Sendable, Hashable {
        /// Type 0: carries the sender's keys so the receiver can create a session from it.
        case preKey = 0
        /// Type 1: a message within an established session.
        case normal = 1
    }

    public var kind: Kind
    /// Base64 ciphertext, exactly as it goes into the `body` field.
    public var ciphertext: String

    public init(kind: Kind, ciphertext: String) {
        self.kind = kind
        self.ciphertext = ciphertext
    }

    /// Builds a message from the wire's integer `type`.
    ///
    /// - Throws: `badMessageFormat` for a type other than 0 or 1.
    public init(type: Int, ciphertext: String) throws(OlmError) {
        guard let kind = Kind(rawValue: type) else {
            throw OlmError(code: .badMessageFormat, operation: "OlmMessage(type: \(type))")
        }
        self.init(kind: kind, ciphertext: ciphertext)
    }
}
