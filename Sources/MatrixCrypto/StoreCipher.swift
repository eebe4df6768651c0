import Olm
import Primitives

/// The keyring that protects Sealbridge's secrets at rest: the current store secret, which every
/// write uses, and previous ones, which are only read (while `sealbridge rotate-pickle-key` moves
/// their rows to the current one).
///
/// Two kinds of records: libolm pickles (accounts, Olm and Megolm sessions; ``pickle(_:)``,
/// ``unpickle(_:_:)``) and sealed bytes (cross-signing seeds, parked events, deliveries, the
/// journal; ``seal(_:context:)``, ``open(_:context:)``, AES-256-GCM bound to what they are by the
/// associated data). A database dump without the configured secrets therefore reveals no key.
///
/// Version 2 records say which secret wrote them (its key id, ``StoreKey``) and carry a random
/// 16-byte salt; each is encrypted under its own key, HKDF(master key, salt), so no AES-GCM key ever
/// seals more than one message and a rotation can tell which rows are still under an old secret:
/// - a pickle: `sb2:<key id, 16 hex>:<salt, unpadded base64>:<libolm pickle>`;
/// - a sealed record: `"SBS" 0x02 ‖ key id (8) ‖ salt (16) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`, the first
///   28 bytes authenticated with the context.
/// Version 1 records (no prefix, one key for every record) are still read, trying each secret in turn.
public struct StoreCipher: Sendable {
    static let pickleTag = "sb2"
    static let sealedMagic: [UInt8] = [0x53, 0x42, 0x53, 0x02]
    static let saltByteCount = 16
    static let sealedHeaderByteCount = sealedMagic.count + StoreKey.idByteCount + saltByteCount

    let current: StoreKey
    /// Read only; in the order configured.
    let previous: [StoreKey]

    /// - Parameters:
    ///   - secret: The configured `encryption.pickle_key` (at least 32 bytes of entropy): what writes use.
    ///   - previous: Earlier secrets (`encryption.previous_pickle_key_files`), still read.
    /// - Throws: ``CryptoError`` with `invalidSecret` if a secret is shorter than 32 bytes.
    public init(secret: String, previous: [String] = []) throws(CryptoError) {
        current = try StoreKey(secret: secret)
        var keys: [StoreKey] = []
        for secret in previous {
            let key = try StoreKey(secret: secret)
            if key.id != current.id && !keys.contains(where: { $0.id == key.id }) { keys.append(key) }
        }
        self.previous = keys
    }

    /// The current secret's key id (16 hex digits, not secret): what new records are written under.
    public var keyID: String { current.idText }

    /// Every key id this cipher reads, the current one first.
    public var keyIDs: [String] { [current.idText] + previous.map(\.idText) }

    var keys: [StoreKey] { [current] + previous }

    /// The key with this id; the current one is checked first (what almost every read finds).
    func key(id: some Collection<UInt8>) -> StoreKey? {
        if current.id.elementsEqual(id) { return current }
        return previous.first { $0.id.elementsEqual(id) }
    }

    func key(idText: Substring) -> StoreKey? {
        if current.idText == idText { return current }
        return previous.first { $0.idText == idText }
    }

    static func unknownKey(_ id: String) -> CryptoError {
        CryptoError(
            code: .unknownStoreKey,
            message: "stored under key id \(id), which is not configured: add that key's file to encryption.previous_pickle_key_files")
    }

    /// Encrypts `secret` for storage under the current key; `context` (e.g. `"cross-signing master @bot:hs"`) must match on open.
    public func seal(_ secret: [UInt8], context: String) throws(CryptoError) -> [UInt8] {
        let salt = SecureRandom.bytes(count: Self.saltByteCount)
        let header = Self.sealedMagic + current.id + salt
        do {
            let key = current.sealKey(salt: salt)
            return header + (try AES256GCM.seal(secret, key: key, authenticating: header + Array(context.utf8)).combined)
        } catch {
            throw CryptoError(code: .storeCorrupted, message: "sealing failed: \(error)")
        }
    }

    /// Decrypts what ``seal(_:context:)`` produced, under any key of the keyring (or version 1).
    ///
    /// - Throws: `unknownStoreKey` for a version-2 record of a key id not configured;
    ///   `storeCorrupted` when the data was altered, sealed for another context, or under a secret
    ///   that is not configured.
    public func open(_ sealed: [UInt8], context: String) throws(CryptoError) -> [UInt8] {
        let aad = Array(context.utf8)
        var unknown: String?
        if sealed.count >= Self.sealedHeaderByteCount + AES256GCM.nonceByteCount + AES256GCM.tagByteCount,
            sealed.starts(with: Self.sealedMagic)
        {
            let idRange = Self.sealedMagic.count..<(Self.sealedMagic.count + StoreKey.idByteCount)
            if let key = key(id: sealed[idRange]) {
                let header = Array(sealed[..<Self.sealedHeaderByteCount])
                let salt = Array(sealed[idRange.upperBound..<Self.sealedHeaderByteCount])
                if let box = try? AES256GCM.SealedBox(combined: Array(sealed[Self.sealedHeaderByteCount...])),
                    let plain = try? AES256GCM.open(box, key: key.sealKey(salt: salt), authenticating: header + aad)
                {
                    return plain
                }
            } else {
                unknown = Hex.encode(sealed[idRange])
            }
        }
        // Version 1 (its random nonce may begin like a version-2 header: 2⁻³² per row, so try it too).
        if let box = try? AES256GCM.SealedBox(combined: sealed) {
            for key in keys {
                if let plain = try? AES256GCM.open(box, key: key.legacySealKey, authenticating: aad) { return plain }
            }
        }
        if let unknown { throw Self.unknownKey(unknown) }
        throw CryptoError(code: .storeCorrupted, message: "cannot open sealed secret for \(context): wrong pickle_key or altered data")
    }
}
