import Primitives

/// A secret storage key as people handle it: 32 random bytes written in base58 in groups of four.
///
/// The Matrix spec's "Key representation": the bytes `0x8B 0x01`, the key, then a parity byte (the
/// XOR of all bytes before it), in base58 (Bitcoin's alphabet), split by spaces every four characters.
/// The prefix makes every key start with `Es`; the parity byte catches most typos before the key is
/// tried against the account data, so a mistyped key says "typo" rather than "wrong key".
///
/// The bytes are private and the description is redacted: a recovery key must never reach a log.
public struct RecoveryKey: Sendable, CustomStringConvertible {
    static let prefix: [UInt8] = [0x8B, 0x01]
    /// The key length: 32 bytes.
    public static let byteCount = 32
    /// Longest text accepted before decoding (a key is 59 characters with its spaces); bounds the
    /// quadratic base58 decoder against pasted junk.
    static let maximumTextLength = 256

    /// The raw key: what secret storage derives its encryption and MAC keys from.
    let bytes: [UInt8]

    init(bytes: [UInt8]) {
        precondition(bytes.count == Self.byteCount, "a recovery key has \(Self.byteCount) bytes")
        self.bytes = bytes
    }

    /// A new random key.
    public static func generate() -> RecoveryKey {
        RecoveryKey(bytes: SecureRandom.bytes(count: byteCount))
    }

    /// Reads a recovery key as printed, ignoring all whitespace (spaces, line breaks from a file).
    ///
    /// - Throws: ``SecretStorageError`` `invalidRecoveryKey`, saying which check failed (character,
    ///   length, prefix, parity) without repeating the text.
    public init(_ text: String) throws(SecretStorageError) {
        guard text.utf8.count <= Self.maximumTextLength else {
            throw SecretStorageError(.invalidRecoveryKey, "the recovery key is too long (\(text.utf8.count) bytes; a recovery key is 48 characters in groups of 4)")
        }
        let compact = String(text.unicodeScalars.filter { !$0.properties.isWhitespace })
        guard !compact.isEmpty else {
            throw SecretStorageError(.invalidRecoveryKey, "the recovery key is empty")
        }
        var decoded: [UInt8]
        do {
            decoded = try Base58.decode(compact)
        } catch {
            throw SecretStorageError(.invalidRecoveryKey, "the recovery key has a typo: \(error.message)")
        }
        defer { secureWipe(&decoded) }
        let expectedCount = Self.prefix.count + Self.byteCount + 1
        guard decoded.count == expectedCount else {
            throw SecretStorageError(.invalidRecoveryKey, "the recovery key has the wrong length (\(decoded.count) bytes decoded, \(expectedCount) expected): a character is missing or extra")
        }
        guard Array(decoded.prefix(2)) == Self.prefix else {
            throw SecretStorageError(.invalidRecoveryKey, "this is not a Matrix recovery key (wrong prefix; recovery keys start with \"Es\")")
        }
        guard decoded.dropLast().reduce(0, ^) == decoded[decoded.count - 1] else {
            throw SecretStorageError(.invalidRecoveryKey, "the recovery key has a typo (parity check failed)")
        }
        self.init(bytes: Array(decoded[Self.prefix.count..<(Self.prefix.count + Self.byteCount)]))
    }

    /// The key as shown to people: base58 in groups of four separated by spaces.
    public var displayString: String {
        var full = Self.prefix + bytes
        full.append(full.reduce(0, ^))
        defer { secureWipe(&full) }
        let encoded = Array(Base58.encode(full))
        return stride(from: 0, to: encoded.count, by: 4)
            .map { String(encoded[$0..<min($0 + 4, encoded.count)]) }
            .joined(separator: " ")
    }

    public var description: String { "RecoveryKey(redacted)" }
}
