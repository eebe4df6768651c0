import Olm
import Primitives

extension StoreCipher {
    /// A version-2 pickle split into its parts; nil for anything else (version 1: plain libolm base64).
    struct ParsedPickle {
        var keyID: Substring
        var salt: Substring
        var body: Substring
    }

    static func parse(pickle text: String) -> ParsedPickle? {
        // On the UTF-8 view: this runs for every pickle read, and libolm's base64 never holds a colon.
        let utf8 = text.utf8
        guard utf8.starts(with: pickleHeader) else { return nil }
        let keyStart = utf8.index(utf8.startIndex, offsetBy: pickleHeader.count)
        guard let keyEnd = utf8[keyStart...].firstIndex(of: colon) else { return nil }
        let saltStart = utf8.index(after: keyEnd)
        guard let saltEnd = utf8[saltStart...].firstIndex(of: colon) else { return nil }
        return ParsedPickle(keyID: text[keyStart..<keyEnd], salt: text[saltStart..<saltEnd], body: text[utf8.index(after: saltEnd)...])
    }

    static let pickleHeader = Array("\(pickleTag):".utf8)
    static let colon = UInt8(ascii: ":")

    /// Pickles a libolm object under a fresh per-record key of the current secret.
    ///
    /// - Parameter body: Pickles with the key it is given, e.g. `{ try session.pickle(key: $0) }`.
    /// - Returns: `sb2:<key id>:<salt>:<libolm pickle>`.
    /// - Throws: What `body` throws; ``CryptoError`` if the key derivation fails.
    public func pickle(_ body: (PickleKey) throws -> String) throws -> String {
        let salt = SecureRandom.bytes(count: Self.saltByteCount)
        let pickled = try body(try current.pickleKey(salt: salt))
        return "\(Self.pickleTag):\(current.idText):\(Base64.encodeUnpadded(salt)):\(pickled)"
    }

    /// Unpickles what ``pickle(_:)`` (or version 1, one key for all) produced.
    ///
    /// - Parameter body: Unpickles the libolm pickle it is given with the key it is given, e.g.
    ///   `{ try Session.unpickle($0, key: $1) }`; for a version-1 pickle it is called once per
    ///   configured secret until one works.
    /// - Throws: `unknownStoreKey` when the pickle names a key id not configured; `storeCorrupted`
    ///   for a malformed prefix; otherwise what `body` throws (the last attempt's error).
    public func unpickle<T>(_ text: String, _ body: (_ pickle: String, _ key: PickleKey) throws -> T) throws -> T {
        if let parsed = Self.parse(pickle: text) {
            guard let key = key(idText: parsed.keyID) else { throw Self.unknownKey(String(parsed.keyID)) }
            guard let salt = try? Base64.decode(String(parsed.salt)), salt.count == Self.saltByteCount else {
                throw CryptoError(code: .storeCorrupted, message: "malformed pickle header")
            }
            return try body(String(parsed.body), try key.pickleKey(salt: salt))
        }
        var failure: (any Error)?
        for key in keys {
            do {
                return try body(text, key.legacyPickleKey)
            } catch {
                failure = error
            }
        }
        throw failure ?? CryptoError(code: .storeCorrupted, message: "no key")
    }
}
