import Primitives

/// A Megolm message (base64-decoded) in the one shape libolm and vodozemac write: version 3, field 1
/// (the message index, a varint), field 2 (the AES-256-CBC ciphertext, length-prefixed), the first 8
/// bytes of an HMAC-SHA-256, an Ed25519 signature.
///
/// libolm's own parser also takes other shapes (fields in another order or repeated, unknown fields,
/// over-long varints it truncates); ``init(canonical:)`` refuses every one of them, so that whatever it
/// does accept means exactly what it means to libolm, and everything else is left to libolm itself.
struct MegolmMessage {
    static let version: UInt8 = 3
    static let messageIndexTag: UInt8 = 0x08
    static let ciphertextTag: UInt8 = 0x12
    static let macByteCount = 8
    static let signatureByteCount = 64
    static let blockByteCount = 16

    let bytes: [UInt8]
    let messageIndex: UInt32
    /// The AES-256-CBC ciphertext: whole blocks, at least one.
    let ciphertext: Range<Int>

    /// What the MAC covers: everything before it.
    var authenticated: Range<Int> { 0..<(bytes.count - Self.signatureByteCount - Self.macByteCount) }
    var mac: Range<Int> { authenticated.upperBound..<(authenticated.upperBound + Self.macByteCount) }
    /// What the signature covers: everything before it, the MAC included.
    var signed: Range<Int> { 0..<(bytes.count - Self.signatureByteCount) }
    var signature: Range<Int> { signed.upperBound..<bytes.count }

    /// Reads `bytes` if it is in the canonical shape; nil otherwise.
    init?(canonical bytes: [UInt8]) {
        let trailer = Self.macByteCount + Self.signatureByteCount
        guard bytes.count > 1 + trailer, bytes[0] == Self.version, bytes[1] == Self.messageIndexTag else { return nil }
        let end = bytes.count - trailer
        guard let (index, afterIndex) = Self.messageIndex(in: bytes, end: end),
            afterIndex < end, bytes[afterIndex] == Self.ciphertextTag,
            let (length, start) = Self.varint(bytes, at: afterIndex + 1, end: end),
            length == UInt64(end - start), length > 0, length % UInt64(Self.blockByteCount) == 0
        else { return nil }
        self.bytes = bytes
        self.messageIndex = index
        self.ciphertext = start..<end
    }

    /// The message index of a message that starts with `bytes` (only the header need be there):
    /// the version byte, field 1's tag, a varint that fits 32 bits ending before `end`; and where
    /// the varint stops. nil if the header is not in that shape.
    static func messageIndex(in bytes: [UInt8], end: Int) -> (UInt32, Int)? {
        guard end >= 3, bytes.count >= end, bytes[0] == version, bytes[1] == messageIndexTag,
            let (index, after) = varint(bytes, at: 2, end: end), index <= UInt64(UInt32.max)
        else { return nil }
        return (UInt32(index), after)
    }

    /// A protobuf varint of at most 5 bytes (32 bits and a little) before `end`: its value and where it
    /// stops; nil if it runs on.
    private static func varint(_ bytes: [UInt8], at start: Int, end: Int) -> (UInt64, Int)? {
        var value: UInt64 = 0
        var position = start
        while position < end, position - start < 5 {
            let byte = bytes[position]
            value |= UInt64(byte & 0x7F) << (7 * UInt64(position - start))
            position += 1
            if byte & 0x80 == 0 { return (value, position) }
        }
        return nil
    }
}
