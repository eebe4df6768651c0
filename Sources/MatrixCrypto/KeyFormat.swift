/// The shapes of the public keys and ids the crypto engine takes from other users' messages.
///
/// Curve25519 and Ed25519 public keys and Megolm session ids (an Ed25519 public key) are 32 bytes in
/// unpadded standard base64: 43 characters. Checking the shape before anything is looked up or stored
/// keeps hostile strings (NUL, megabytes of text) out of queries and columns, and answers "malformed"
/// instead of "unknown session" for a value no real sender could use.
public enum KeyFormat {
    /// Whether `text` is 43 characters of the standard base64 alphabet (32 bytes, unpadded).
    public static func isKey(_ text: String) -> Bool {
        let bytes = text.utf8
        guard bytes.count == 43 else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "+"), UInt8(ascii: "/"):
                true
            default:
                false
            }
        }
    }

    /// Whether `text` can be a Megolm session id (an Ed25519 public key).
    public static func isSessionID(_ text: String) -> Bool { isKey(text) }
}
