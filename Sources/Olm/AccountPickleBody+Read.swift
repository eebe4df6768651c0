import Primitives

extension AccountPickleBody {
    /// A key entry of the body: one-time or fallback.
    struct KeyEntry {
        var id: UInt32
        var published: Bool
        /// The public half, unpadded base64 (as libolm lists it).
        var publicKey: String

        /// The key as ``Account`` lists it: the id is libolm's, its four big-endian bytes in unpadded base64.
        var oneTimeKey: OneTimeKey {
            OneTimeKey(keyID: Base64.encodeUnpadded([UInt8(id >> 24), UInt8(id >> 16 & 0xff), UInt8(id >> 8 & 0xff), UInt8(id & 0xff)]), publicKey: publicKey)
        }
    }

    /// Where the identity keys' public halves sit: Ed25519 after the version, Curve25519 after the
    /// Ed25519 private key (64 bytes: libolm keeps the expanded key).
    static let ed25519PublicKey = 4..<36
    static let curve25519PublicKey = 100..<132

    /// The one-time keys of `bytes`, in the body's order (newest first).
    func oneTimeKeys(in bytes: [UInt8]) -> [KeyEntry] {
        (0..<oneTimeKeyCount).map { Self.entry(in: bytes, at: Self.oneTimeKeyOffset($0)) }
    }

    /// The fallback keys of `bytes`: the current one first, then the previous one.
    func fallbackKeys(in bytes: [UInt8]) -> [KeyEntry] {
        let count = Int(bytes[fallbackKeys.lowerBound])
        return (0..<count).map { Self.entry(in: bytes, at: fallbackKeyOffset($0)) }
    }

    /// Marks every one-time key and the current fallback key as published, in place: what libolm's
    /// `olm_account_mark_keys_as_published` does (checked against it by `AccountSnapshotTests`).
    func markKeysAsPublished(in bytes: inout [UInt8]) {
        for index in 0..<oneTimeKeyCount {
            bytes[Self.oneTimeKeyOffset(index) + Self.publishedFlag] = 1
        }
        if bytes[fallbackKeys.lowerBound] >= 1 { bytes[fallbackKeyOffset(0) + Self.publishedFlag] = 1 }
    }

    /// Where the `index`-th one-time key entry starts, and the fallback key's (0: current, 1: previous).
    static func oneTimeKeyOffset(_ index: Int) -> Int { headerByteCount + 4 + index * keyEntryByteCount }
    func fallbackKeyOffset(_ index: Int) -> Int { fallbackKeys.lowerBound + 1 + index * Self.keyEntryByteCount }
    /// An entry's published flag, after its `u32` id.
    static let publishedFlag = 4

    private static func entry(in bytes: [UInt8], at offset: Int) -> KeyEntry {
        KeyEntry(
            id: readUInt32(bytes, at: offset), published: bytes[offset + publishedFlag] != 0,
            publicKey: Base64.encodeUnpadded(Array(bytes[(offset + 5)..<(offset + 37)])))
    }
}
