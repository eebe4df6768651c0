import Olm
import Testing

@Suite("Olm session")
struct SessionTests {
    @Test("pre-key message, then normal messages both ways, same session id")
    func roundTrip() throws {
        let alice = try Account.create(), bob = try Account.create()
        try bob.generateOneTimeKeys(count: 2)
        let otk = try #require(bob.unpublishedOneTimeKeys.first)
        bob.markKeysAsPublished()

        let aliceSession = try Session.outbound(
            account: alice, theirIdentityKey: bob.identityKeys.curve25519, theirOneTimeKey: otk.publicKey)
        let first = try aliceSession.encrypt("hello bob")
        #expect(first.kind == .preKey)
        #expect(!aliceSession.hasReceivedMessage)

        let bobSession = try Session.inbound(account: bob, preKeyMessage: first, theirIdentityKey: alice.identityKeys.curve25519)
        #expect(bobSession.matchesInbound(first))
        #expect(bobSession.matchesInbound(first, theirIdentityKey: alice.identityKeys.curve25519))
        #expect(!bobSession.matchesInbound(first, theirIdentityKey: bob.identityKeys.curve25519))
        #expect(try bobSession.decrypt(first).utf8String == "hello bob")
        #expect(bobSession.sessionID == aliceSession.sessionID)

        // The used one-time key is gone; the other remains.
        try bob.removeOneTimeKeys(usedBy: bobSession)
        #expect(throws: OlmError.self) { try bob.removeOneTimeKeys(usedBy: bobSession) }

        let reply = try bobSession.encrypt("hello alice")
        #expect(reply.kind == .normal)
        #expect(try aliceSession.decrypt(reply).utf8String == "hello alice")
        #expect(aliceSession.hasReceivedMessage)

        let next = try aliceSession.encrypt("second")
        #expect(next.kind == .normal)
        #expect(try bobSession.decrypt(next).utf8String == "second")
    }

    @Test("inbound session from a pre-key message fails once the one-time key was removed")
    func oneTimeKeyUsedOnce() throws {
        let pair = try OlmPair.establish()
        let replay = try Session.outbound(
            account: pair.alice, theirIdentityKey: pair.bob.identityKeys.curve25519,
            theirOneTimeKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        #expect(throws: OlmError(code: .badMessageKeyID, operation: "olm_create_inbound_session")) {
            try Session.inbound(account: pair.bob, preKeyMessage: try replay.encrypt("x"))
        }
    }

    @Test("out-of-order messages decrypt in both directions")
    func outOfOrder() throws {
        let pair = try OlmPair.establish()
        let fromAlice = try (0..<4).map { try pair.aliceSession.encrypt("a\($0)") }
        for index in [3, 0, 2, 1] {
            #expect(try pair.bobSession.decrypt(fromAlice[index]).utf8String == "a\(index)")
        }
        let fromBob = try (0..<3).map { try pair.bobSession.encrypt("b\($0)") }
        for index in [2, 1, 0] {
            #expect(try pair.aliceSession.decrypt(fromBob[index]).utf8String == "b\(index)")
        }
    }

    @Test("a message decrypts once: the replayed copy fails")
    func noDoubleDecrypt() throws {
        let pair = try OlmPair.establish()
        let message = try pair.aliceSession.encrypt("once")
        _ = try pair.bobSession.decrypt(message)
        #expect(throws: OlmError.self) { try pair.bobSession.decrypt(message) }
    }

    @Test("tampered, truncated and garbage messages give typed errors and leave the session usable")
    func badInput() throws {
        let pair = try OlmPair.establish()
        let good = try pair.aliceSession.encrypt("genuine")
        #expect(good.kind == .normal)
        var body = Array(good.ciphertext.utf8)
        body[body.count - 5] = body[body.count - 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let tampered = OlmMessage(kind: .normal, ciphertext: String(decoding: body, as: UTF8.self))
        expectOlmError([.badMessageMAC]) { _ = try pair.bobSession.decrypt(tampered) }
        var macFlip = Array(good.ciphertext.utf8)
        macFlip[macFlip.count - 4] = macFlip[macFlip.count - 4] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        expectOlmError([.badMessageMAC]) {
            _ = try pair.bobSession.decrypt(OlmMessage(kind: .normal, ciphertext: String(decoding: macFlip, as: UTF8.self)))
        }

        let truncated = OlmMessage(kind: .normal, ciphertext: String(good.ciphertext.prefix(20)))
        #expect(throws: OlmError.self) { try pair.bobSession.decrypt(truncated) }
        expectOlmError([.invalidBase64, .badMessageFormat]) {
            _ = try pair.bobSession.decrypt(OlmMessage(kind: .normal, ciphertext: "!!!not base64!!!"))
        }
        #expect(throws: OlmError.self) { try pair.bobSession.decrypt(OlmMessage(kind: .normal, ciphertext: "")) }
        #expect(throws: OlmError.self) { try OlmMessage(type: 7, ciphertext: "x") }
        #expect(throws: OlmError.self) {
            try Session.inbound(account: pair.bob, preKeyMessage: OlmMessage(kind: .preKey, ciphertext: "AwoA"))
        }
        #expect(!pair.bobSession.matchesInbound(OlmMessage(kind: .preKey, ciphertext: "@@@")))

        // None of the failures moved the ratchet: the genuine message still decrypts.
        #expect(try pair.bobSession.decrypt(good).utf8String == "genuine")
    }

    @Test("a message for another session fails with a MAC error")
    func wrongSession() throws {
        let one = try OlmPair.establish(), two = try OlmPair.establish()
        let message = try one.aliceSession.encrypt("for one")
        #expect(throws: OlmError.self) { try two.bobSession.decrypt(message) }
    }

    @Test("pickle mid-conversation: the restored session continues the ratchet")
    func pickleRoundTrip() throws {
        let pair = try OlmPair.establish()
        let pending = try pair.aliceSession.encrypt("in flight")
        let pickle = try pair.bobSession.pickle(key: TestKeys.pickle)
        let restored = try Session.unpickle(pickle, key: TestKeys.pickle)
        #expect(restored.sessionID == pair.bobSession.sessionID)
        #expect(try restored.decrypt(pending).utf8String == "in flight")
        #expect(try pair.aliceSession.decrypt(try restored.encrypt("from restored")).utf8String == "from restored")
        #expect(throws: OlmError(code: .badAccountKey, operation: "olm_unpickle_session")) {
            try Session.unpickle(pickle, key: TestKeys.otherPickle)
        }
        #expect(throws: OlmError.self) { try Session.unpickle("AAAA", key: TestKeys.pickle) }
    }

    @Test("binary plaintext survives, including zero bytes")
    func binaryPlaintext() throws {
        let pair = try OlmPair.establish()
        let bytes: [UInt8] = [0, 1, 2, 255, 0, 128]
        #expect(try pair.bobSession.decrypt(try pair.aliceSession.encrypt(bytes)) == bytes)
    }
}
