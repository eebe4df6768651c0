import Primitives

/// The layout of a libolm account pickle's plaintext (version 4), found without copying it.
///
/// libolm 3.2 writes, big-endian: `u32 version` (4), the identity keys (Ed25519 public 32 + private 64,
/// Curve25519 public 32 + private 32), `u32 count` and that many one-time keys (`u32 id`, `u8 published`,
/// public 32, private 32; newest first), `u8` fallback-key count (0–2) and that many keys in the same
/// shape, then `u32 next_one_time_key_id`, which one-time and fallback keys share. Splicing rewrites only
/// the one-time keys and the id counter, keeping every other byte as it was; ``AccountSnapshot`` reads the
/// keys and flips their published flags.
struct AccountPickleBody {
    static let supportedVersion: UInt32 = 4
    static let headerByteCount = 4 + 32 + 64 + 32 + 32
    static let keyEntryByteCount = 4 + 1 + 32 + 32

    let oneTimeKeyCount: Int
    /// Where the fallback-key section starts and ends.
    let fallbackKeys: Range<Int>
    let nextKeyID: UInt32

    /// Reads the layout of `bytes`; `nil` for another version (the caller then lets libolm do the work).
    /// - Throws: `corruptedPickle` when the lengths do not add up.
    init?(_ bytes: [UInt8]) throws(OlmError) {
        let corrupt = OlmError(code: .corruptedPickle, operation: "read libolm account pickle")
        guard bytes.count >= Self.headerByteCount + 4 else { throw corrupt }
        guard Self.readUInt32(bytes, at: 0) == Self.supportedVersion else { return nil }
        let count = Int(Self.readUInt32(bytes, at: Self.headerByteCount))
        let fallbackStart = Self.headerByteCount + 4 + count * Self.keyEntryByteCount
        guard count <= 1_000, bytes.count >= fallbackStart + 1 + 4 else { throw corrupt }
        let fallbackCount = Int(bytes[fallbackStart])
        let fallbackEnd = fallbackStart + 1 + fallbackCount * Self.keyEntryByteCount
        guard fallbackCount <= 2, bytes.count == fallbackEnd + 4 else { throw corrupt }
        oneTimeKeyCount = count
        fallbackKeys = fallbackStart..<fallbackEnd
        nextKeyID = Self.readUInt32(bytes, at: fallbackEnd)
    }

    /// The plaintext of `bytes` with `newKeys` new unpublished one-time keys in front, as libolm's
    /// `generate_one_time_keys` would leave it: ids continue from the shared counter, the newest key
    /// comes first, and beyond `limit` keys the oldest go (libolm's list is bounded the same way).
    ///
    /// - Parameter writeKeyPair: Writes a new key's public half into its first 32-byte buffer and the
    ///   private half into the second, in place, so the secret exists only in the result.
    func inserting(
        _ newKeys: Int, into bytes: [UInt8], limit: Int,
        writeKeyPair: (_ publicKey: UnsafeMutableRawBufferPointer, _ privateKey: UnsafeMutableRawBufferPointer) throws(OlmError) -> Void
    ) throws(OlmError) -> [UInt8] {
        let fresh = min(newKeys, limit)
        let kept = min(oneTimeKeyCount, limit - fresh)
        let total = Self.headerByteCount + 4 + (fresh + kept) * Self.keyEntryByteCount + fallbackKeys.count + 4
        // One allocation of the final size: the private keys are never in a buffer that growth leaves behind.
        var output = [UInt8](repeating: 0, count: total)
        let outcome: Result<Void, OlmError> = output.withUnsafeMutableBytes { out in Result { () throws(OlmError) in
            bytes.withUnsafeBytes { out.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: Self.headerByteCount) }
            var position = Self.headerByteCount
            Self.write(UInt32(fresh + kept), to: out, at: position)
            position += 4
            // The newest (highest id) first; ids skipped by the limit are used up, as in libolm.
            for index in 0..<fresh {
                Self.write(nextKeyID &+ UInt32(newKeys - index), to: out, at: position)
                out[position + 4] = 0
                try writeKeyPair(
                    UnsafeMutableRawBufferPointer(rebasing: out[(position + 5)..<(position + 37)]),
                    UnsafeMutableRawBufferPointer(rebasing: out[(position + 37)..<(position + 69)]))
                position += Self.keyEntryByteCount
            }
            let oldKeys = Self.headerByteCount + 4
            let tail = fallbackKeys.count
            bytes.withUnsafeBytes { source in
                (out.baseAddress! + position).copyMemory(from: source.baseAddress! + oldKeys, byteCount: kept * Self.keyEntryByteCount)
                position += kept * Self.keyEntryByteCount
                (out.baseAddress! + position).copyMemory(from: source.baseAddress! + fallbackKeys.lowerBound, byteCount: tail)
                position += tail
            }
            Self.write(nextKeyID &+ UInt32(newKeys), to: out, at: position)
        } }
        try outcome.get()
        return output
    }

    /// A fresh Curve25519 pair in place: the private half from the kernel CSPRNG, the public half by
    /// libcrypto's X25519 (as libolm stores them: the private key unclamped, clamped on use).
    static func writeRandomKeyPair(publicKey: UnsafeMutableRawBufferPointer, privateKey: UnsafeMutableRawBufferPointer) throws(OlmError) {
        OlmRandom.fill(privateKey)
        do {
            try X25519.computePublicKey(forPrivateKey: UnsafeRawBufferPointer(privateKey), into: publicKey)
        } catch {
            throw OlmError(code: .unknown, operation: "X25519 public key for a Curve25519 key")
        }
    }

    static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func write(_ value: UInt32, to buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer[offset] = UInt8(value >> 24)
        buffer[offset + 1] = UInt8(value >> 16 & 0xff)
        buffer[offset + 2] = UInt8(value >> 8 & 0xff)
        buffer[offset + 3] = UInt8(value & 0xff)
    }
}
