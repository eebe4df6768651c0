import Primitives

/// Megolm decryption with libcrypto for the symmetric part and libolm for the signature.
///
/// libolm's `olm_group_decrypt` spends about a third of its time in its portable AES, SHA-256, HMAC
/// and HKDF (165 µs a ~900-byte message here, 110 µs of it the Ed25519 check); libcrypto does that
/// third with AES-NI and SHA-NI in a few microseconds. The signature is still checked by libolm's own
/// `olm_ed25519_verify`, so what is accepted as signed is exactly what libolm accepts.
///
/// It only ever *succeeds* where libolm would, with the same plaintext and index: the message must be
/// in the canonical shape (``MegolmMessage``), its signature verify with libolm, its MAC verify with the
/// keys of the ratchet libolm would pick, and its padding be well-formed PKCS #7. Of its failures it
/// reports only the two that libolm, given the same canonical message, would report the same way: a
/// bad signature and an index before the first known one. Anything else (another shape, a MAC that
/// does not match, odd padding) returns nil and the caller asks libolm, whose answer stands.
///
/// Holds key material (the ratchets): wiped on `deinit`. Owned by one ``InboundGroupSession``, so it
/// is never shared between threads either.
final class MegolmReceiver {
    /// The state libolm pickles for an inbound group session (`PICKLE_VERSION` 2; 1 lacks the flag).
    private static let bodyByteCounts = [1: 300, 2: 301]
    private static let keyInfo = Array("MEGOLM_KEYS".utf8)

    /// The earliest ratchet the session can decrypt from; never moved.
    private var initial: MegolmRatchet
    /// A copy moved forward to the latest index decrypted, so messages in order cost one step each.
    private var latest: MegolmRatchet
    /// The session's Ed25519 key, unpadded base64, as libolm's verify takes it.
    private let signingKey: String

    /// Reads the body of an inbound group session's libolm pickle; nil if it is not one this knows.
    init?(pickleBody body: [UInt8]) {
        guard body.count >= 4 else { return nil }
        let version = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
        guard Self.bodyByteCounts[version] == body.count else { return nil }
        initial = Self.ratchet(body, at: 4)
        latest = Self.ratchet(body, at: 4 + MegolmRatchet.byteCount + 4)
        let keyStart = 4 + 2 * (MegolmRatchet.byteCount + 4)
        signingKey = Base64.encodeUnpadded(Array(body[keyStart..<(keyStart + 32)]))
    }

    deinit {
        initial.wipe()
        latest.wipe()
    }

    /// What became of one message.
    enum Outcome {
        case decrypted(InboundGroupSession.Decrypted)
        /// What libolm would also have said, given the same message.
        case failed(OlmError.Code)
        /// Not decided here: libolm must decrypt it.
        case undecided
    }

    /// Decrypts a base64 Megolm message (see the type's notes for what each outcome promises).
    func decrypt(_ encoded: String) -> Outcome {
        // libolm's base64 takes no padding and no other characters; anything else is left to it (the
        // decoder here refuses "=" anywhere but at the end, so the last character says it all).
        guard encoded.utf8.last != UInt8(ascii: "="), let bytes = try? Base64.decode(encoded),
            let message = MegolmMessage(canonical: bytes)
        else { return .undecided }
        do {
            try Utility.verifyEd25519(
                key: signingKey, message: bytes[message.signed],
                signature: Base64.encodeUnpadded(Array(bytes[message.signature])))
        } catch {
            return error.code == .badSignature ? .failed(.badSignature) : .undecided
        }
        // The ratchet libolm's `_decrypt` picks: the latest one when the index is at or after it (in
        // 32-bit wrapping order), otherwise a copy of the initial one, unless the index precedes that.
        let index = message.messageIndex
        var ratchet: MegolmRatchet
        let movesLatest = index &- latest.counter < 1 << 31
        if movesLatest {
            ratchet = latest
        } else if index &- initial.counter >= 1 << 31 {
            return .failed(.unknownMessageIndex)
        } else {
            ratchet = initial
        }
        ratchet.advance(to: index)
        guard let plaintext = Self.open(message, with: ratchet.data) else {
            ratchet.wipe()
            return .undecided
        }
        if movesLatest {
            latest.wipe()
            latest = ratchet
        } else {
            ratchet.wipe()
        }
        return .decrypted(InboundGroupSession.Decrypted(plaintext: plaintext, messageIndex: index))
    }

    /// Checks the MAC with the keys derived from `ratchetData` and decrypts; nil when either fails.
    private static func open(_ message: MegolmMessage, with ratchetData: [UInt8]) -> [UInt8]? {
        // HKDF-SHA-256, no salt, info "MEGOLM_KEYS": AES key ‖ HMAC key ‖ IV (libolm's cipher.cpp).
        guard var keys = try? HKDFSHA256.deriveKey(from: ratchetData, salt: [], info: keyInfo, outputByteCount: 80) else {
            return nil
        }
        defer { secureWipe(&keys) }
        var aesKey = Array(keys[0..<32]), macKey = Array(keys[32..<64])
        let iv = Array(keys[64..<80])
        defer { secureWipe(&aesKey); secureWipe(&macKey) }
        let code = HMACSHA256.authenticationCode(for: Array(message.bytes[message.authenticated]), key: macKey)
        guard constantTimeEquals(Array(code.prefix(MegolmMessage.macByteCount)), Array(message.bytes[message.mac])) else {
            return nil
        }
        return try? AES256CBC.decrypt(Array(message.bytes[message.ciphertext]), key: aesKey, iv: iv)
    }

    private static func ratchet(_ body: [UInt8], at offset: Int) -> MegolmRatchet {
        let counterAt = offset + MegolmRatchet.byteCount
        let counter = UInt32(body[counterAt]) << 24 | UInt32(body[counterAt + 1]) << 16
            | UInt32(body[counterAt + 2]) << 8 | UInt32(body[counterAt + 3])
        return MegolmRatchet(data: Array(body[offset..<counterAt]), counter: counter)
    }
}
