import Primitives

/// Megolm's ratchet: four 32-byte parts R(0)…R(3) and the message index they are at.
///
/// Advanced exactly as libolm's `megolm.c` does (the Megolm specification's algorithm): part `j` moves
/// every 2^(8·(3−j)) messages, and a part that moves re-seeds every part after it. Each step is one
/// HMAC-SHA-256 keyed by a part over a single seed byte (0…3, the part being written). Checked against
/// libolm by decrypting libolm's messages at every kind of index jump (`MegolmReceiverTests`).
struct MegolmRatchet {
    static let partCount = 4
    static let partByteCount = 32
    static let byteCount = partCount * partByteCount

    /// R(0) ‖ R(1) ‖ R(2) ‖ R(3): the input of every message key at ``counter``.
    var data: [UInt8]
    var counter: UInt32

    /// Moves the ratchet forward to `target` (libolm's `megolm_advance_to`).
    ///
    /// A `target` below ``counter`` wraps around the 32-bit index space, as in libolm; callers only
    /// ever ask for indexes at or after the ratchet (``MegolmReceiver`` picks the ratchet to start from).
    mutating func advance(to target: UInt32) {
        for part in 0..<Self.partCount {
            let shift = UInt32((Self.partCount - part - 1) * 8)
            let mask = UInt32.max << shift
            var steps = ((target >> shift) &- (counter >> shift)) & 0xff
            if steps == 0 {
                // Only R(0) can be reached here with target < counter: the index wrapped around.
                guard target < counter else { continue }
                steps = 0x100
            }
            // All but the last step move R(part) alone; the last also re-seeds every part after it.
            while steps > 1 {
                rehash(from: part, to: part)
                steps -= 1
            }
            for later in stride(from: Self.partCount - 1, through: part, by: -1) {
                rehash(from: part, to: later)
            }
            counter = target & mask
        }
    }

    /// Overwrites its bytes: a ratchet is key material.
    mutating func wipe() {
        secureWipe(&data)
        counter = 0
    }

    /// R(to) = HMAC-SHA-256(key: R(from), message: [to]).
    private mutating func rehash(from: Int, to: Int) {
        var key = Array(data[(from * Self.partByteCount)..<((from + 1) * Self.partByteCount)])
        defer { secureWipe(&key) }
        var next = HMACSHA256.authenticationCode(for: [UInt8(to)], key: key)
        defer { secureWipe(&next) }
        data.replaceSubrange((to * Self.partByteCount)..<((to + 1) * Self.partByteCount), with: next)
    }
}
