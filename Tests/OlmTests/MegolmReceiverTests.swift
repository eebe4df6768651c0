@testable import Olm
import Primitives
import Testing

/// ``MegolmReceiver`` (libcrypto's AES and HMAC, libolm's signature check) against libolm's own
/// `olm_group_decrypt`: it must decrypt libolm's messages at every kind of index jump to the same
/// plaintext and index, and whenever it decides a failure, libolm must fail the same way.
@Suite("Megolm decryption with libcrypto")
struct MegolmReceiverTests {
    /// An outbound session whose ratchet is `ratchet` at `counter`, with `template`'s signing key: made
    /// by rewriting the body of `template`'s libolm pickle (version, ratchet, counter, key pair).
    static func outbound(at counter: UInt32, ratchet: [UInt8], signingLike template: OutboundGroupSession) throws -> OutboundGroupSession {
        let pickle = try template.pickle(key: TestKeys.pickle)
        var body = try LibolmPickleEnvelope.open(pickle, key: TestKeys.pickle)
        try #require(body.count == 4 + 128 + 4 + 32 + 64)
        body.replaceSubrange(4..<132, with: ratchet)
        body.replaceSubrange(132..<136, with: [UInt8(counter >> 24), UInt8(counter >> 16 & 0xff), UInt8(counter >> 8 & 0xff), UInt8(counter & 0xff)])
        return try OutboundGroupSession.unpickle(try LibolmPickleEnvelope.seal(body, key: TestKeys.pickle), key: TestKeys.pickle)
    }

    /// The receiver a fresh session made from `sessionKey` would use.
    static func receiver(_ sessionKey: String) throws -> MegolmReceiver {
        try #require(try InboundGroupSession(sessionKey: sessionKey).makeReceiver())
    }

    static func expectDecrypted(_ outcome: MegolmReceiver.Outcome, _ plaintext: String, _ index: UInt32, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .decrypted(let decrypted) = outcome else {
            Issue.record("expected a decryption, got \(outcome)", sourceLocation: sourceLocation)
            return
        }
        #expect(decrypted.plaintext.utf8String == plaintext, sourceLocation: sourceLocation)
        #expect(decrypted.messageIndex == index, sourceLocation: sourceLocation)
    }

    @Test("jumps within and across every ratchet part, and the 32-bit wrap, decrypt as libolm decrypts them")
    func jumps() throws {
        let template = try OutboundGroupSession.create()
        let ratchet = SecureRandom.bytes(count: MegolmRatchet.byteCount)
        for start: UInt32 in [0, 0xFE, 0xFFFE, 0x00FF_FFFE, 0xFFFF_FFFE] {
            let first = try Self.outbound(at: start, ratchet: ratchet, signingLike: template)
            let receiver = try Self.receiver(first.sessionKey)
            var messages: [(index: UInt32, ciphertext: String)] = []
            for jump: UInt32 in [0, 1, 2, 0xFF, 0x100, 0x101, 0x1_0000, 0x1_0203, 0x100_0000, 0x102_0304, 0x7FFF_FFFF] {
                // The ratchet at the target, moved by MegolmRatchet: libolm decrypting what it encrypts
                // checks the advance as much as the receiver.
                var moved = MegolmRatchet(data: ratchet, counter: start)
                moved.advance(to: start &+ jump)
                #expect(moved.counter == start &+ jump)
                let sender = try Self.outbound(at: start &+ jump, ratchet: moved.data, signingLike: template)
                messages.append((start &+ jump, try sender.encrypt("at +\(jump)")))
            }
            // Forward (the latest ratchet moves), then backward (from the initial one), then again.
            for (index, ciphertext) in messages + messages.reversed() + messages {
                let libolm = try InboundGroupSession(sessionKey: first.sessionKey).decryptWithLibolm(ciphertext)
                #expect(libolm.messageIndex == index)
                Self.expectDecrypted(receiver.decrypt(ciphertext), libolm.plaintext.utf8String, index)
            }
        }
    }

    @Test("a session made from a key, an export or a pickle decrypts through the receiver")
    func everySessionHasAReceiver() throws {
        let outbound = try OutboundGroupSession.create()
        let fromKey = try InboundGroupSession(sessionKey: outbound.sessionKey)
        let sessions = [
            fromKey, try InboundGroupSession(importing: try fromKey.export(at: 0)),
            try InboundGroupSession.unpickle(try fromKey.pickle(key: TestKeys.pickle), key: TestKeys.pickle),
        ]
        let ciphertext = try outbound.encrypt("hello")
        for session in sessions {
            let receiver = try #require(session.makeReceiver())
            Self.expectDecrypted(receiver.decrypt(ciphertext), "hello", 0)
            #expect(try session.decrypt(ciphertext).plaintext.utf8String == "hello")
        }
        #expect(sessions[1].isVerified, "an imported session is verified once a signed message decrypted")
    }

    @Test("a bad signature and an index before the first known one are decided, as libolm decides them")
    func decidedFailures() throws {
        let outbound = try OutboundGroupSession.create()
        let early = try outbound.encrypt("early")
        let sessionKey = outbound.sessionKey
        let message = try outbound.encrypt("later")
        let receiver = try Self.receiver(sessionKey)

        var bytes = try Base64.decode(message)
        bytes[bytes.count - 80] ^= 1  // a ciphertext byte: signed, so the signature fails first
        let tampered = Base64.encodeUnpadded(bytes)
        guard case .failed(.badSignature) = receiver.decrypt(tampered) else { Issue.record("tampered: not a bad signature"); return }
        #expect(throws: OlmError(code: .badSignature, operation: "olm_group_decrypt")) {
            try InboundGroupSession(sessionKey: sessionKey).decryptWithLibolm(tampered)
        }
        guard case .failed(.unknownMessageIndex) = receiver.decrypt(early) else { Issue.record("early: not an unknown index"); return }
        #expect(throws: OlmError(code: .unknownMessageIndex, operation: "olm_group_decrypt")) {
            try InboundGroupSession(sessionKey: sessionKey).decryptWithLibolm(early)
        }
        // Through the session, the receiver's decision is what the caller sees.
        #expect(throws: OlmError(code: .unknownMessageIndex, operation: "olm_group_decrypt")) {
            try InboundGroupSession(sessionKey: sessionKey).decrypt(early)
        }
        Self.expectDecrypted(receiver.decrypt(message), "later", 1)
    }

    /// A decryption's answer, success or libolm's error (nil: some other error, never expected).
    static func answer(_ body: () throws -> InboundGroupSession.Decrypted) -> Result<InboundGroupSession.Decrypted, OlmError>? {
        do {
            return .success(try body())
        } catch let error as OlmError {
            return .failure(error)
        } catch {
            return nil
        }
    }

    @Test("padded base64, another field order, a wrong ratchet, truncation: left to libolm")
    func undecided() throws {
        let outbound = try OutboundGroupSession.create()
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        let receiver = try #require(inbound.makeReceiver())
        // A plaintext length whose message needs base64 padding.
        var message = try outbound.encrypt("x")
        var length = 1
        while try Base64.decode(message).count % 3 == 0 {
            length += 1
            message = try outbound.encrypt(String(repeating: "x", count: length))
        }
        let bytes = try Base64.decode(message)
        let padded = Base64.encodePadded(bytes)
        #expect(padded != message)
        var middle = Array(message.utf8)
        middle[middle.count / 2] = UInt8(ascii: "=")
        var cases: [(String, String)] = [
            ("padded", padded), ("truncated", String(message.dropLast(8))), ("= inside", String(decoding: middle, as: UTF8.self)),
            ("not base64", String(message.dropLast(1)) + "!"),
        ]
        // An unknown varint field (3) between the index and the ciphertext.
        var extraField = bytes
        extraField.insert(contentsOf: [0x18, 0x01], at: 3)
        cases.append(("extra field", Base64.encodeUnpadded(extraField)))
        // The version byte.
        var version = bytes
        version[0] = 4
        cases.append(("version", Base64.encodeUnpadded(version)))
        // libolm's own base64 reader is lenient: "= inside" and "not base64" may decode to the very
        // bytes of the message (when the replaced character's bits that count are the same), and then
        // libolm decrypts it. Either way the session's answer is libolm's; the other shapes it refuses.
        let refusedByLibolm: Set = ["padded", "truncated", "extra field", "version"]
        for (name, variant) in cases {
            guard case .undecided = receiver.decrypt(variant) else { Issue.record("\(name): decided"); continue }
            let viaSession = Self.answer { try inbound.decrypt(variant) }, viaLibolm = Self.answer { try inbound.decryptWithLibolm(variant) }
            #expect(viaSession != nil && viaSession == viaLibolm, "\(name): the session answers as libolm does")
            if refusedByLibolm.contains(name) {
                #expect(throws: OlmError.self, "\(name): libolm refuses it too") { try inbound.decryptWithLibolm(variant) }
            }
        }

        // The right signing key with another ratchet (an export is not signed): the signature holds,
        // the MAC does not; libolm says so.
        var export = try Base64.decode(try inbound.export(at: 0))
        try #require(export.count == 1 + 4 + 128 + 32)
        export.replaceSubrange(5..<133, with: SecureRandom.bytes(count: 128))
        let forged = try InboundGroupSession(importing: Base64.encodeUnpadded(export))
        let forgedReceiver = try #require(forged.makeReceiver())
        guard case .undecided = forgedReceiver.decrypt(message) else { Issue.record("wrong ratchet: decided"); return }
        #expect(throws: OlmError(code: .badMessageMAC, operation: "olm_group_decrypt")) { try forged.decrypt(message) }
    }

    @Test("mutated messages: whatever the receiver decides, libolm decides the same")
    func mutations() throws {
        let outbound = try OutboundGroupSession.create()
        let sessionKey = outbound.sessionKey
        let messages = try (0..<4).map { try outbound.encrypt(String(repeating: "m", count: 40 + 37 * $0)) }
        let receiver = try Self.receiver(sessionKey)
        var generator = SystemRandomNumberGenerator()
        var decided = 0, undecided = 0
        for round in 0..<400 {
            var bytes = try Base64.decode(messages[round % messages.count])
            // Most mutations hit the header (version, tags, varints), where the parsers could differ.
            let position = round % 3 == 0 ? Int.random(in: 0..<bytes.count, using: &generator) : Int.random(in: 0..<min(8, bytes.count), using: &generator)
            bytes[position] = UInt8.random(in: 0...255, using: &generator)
            if round % 5 == 0 { bytes.removeLast(Int.random(in: 0...4, using: &generator)) }
            let variant = Base64.encodeUnpadded(bytes)
            let libolm = Result { () throws(OlmError) in try InboundGroupSession(sessionKey: sessionKey).decryptWithLibolm(variant) }
            switch receiver.decrypt(variant) {
            case .decrypted(let decrypted):
                decided += 1
                #expect(try libolm.get() == decrypted)
            case .failed(let code):
                decided += 1
                if case .failure(let error) = libolm { #expect(error.code == code) } else { Issue.record("libolm decrypted what the receiver refused") }
            case .undecided:
                undecided += 1
            }
        }
        // Not vacuous: most mutations break only the signature, which the receiver decides itself.
        #expect(decided > 100)
        #expect(undecided > 10)
    }

    @Test("the ratchet moves like the specification's examples: R(3) alone, then R(2) re-seeds R(3)")
    func ratchetParts() {
        let start = [UInt8](repeating: 7, count: MegolmRatchet.byteCount)
        var one = MegolmRatchet(data: start, counter: 0)
        one.advance(to: 1)
        #expect(one.data[0..<96] == start[0..<96], "one step moves R(3) only")
        #expect(one.data[96...] == HMACSHA256.authenticationCode(for: [3], key: Array(start[96...]))[...])
        var byte = MegolmRatchet(data: start, counter: 0)
        byte.advance(to: 0x100)
        let r2 = HMACSHA256.authenticationCode(for: [2], key: Array(start[64..<96]))
        #expect(byte.data[0..<64] == start[0..<64])
        #expect(Array(byte.data[64..<96]) == r2)
        #expect(Array(byte.data[96...]) == HMACSHA256.authenticationCode(for: [3], key: Array(start[64..<96])))
        #expect(byte.counter == 0x100)
    }
}
