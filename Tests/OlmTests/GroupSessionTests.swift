import Olm
import Testing

@Suite("Megolm group sessions")
struct GroupSessionTests {
    @Test("in order: indexes count up, ids match, signed key is verified")
    func inOrder() throws {
        let outbound = try OutboundGroupSession.create()
        #expect(outbound.messageIndex == 0)
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        #expect(inbound.sessionID == outbound.sessionID)
        #expect(inbound.firstKnownIndex == 0)
        #expect(inbound.isVerified)
        for n in 0..<5 {
            let decrypted = try inbound.decrypt(try outbound.encrypt("message \(n)"))
            #expect(decrypted.plaintext.utf8String == "message \(n)")
            #expect(decrypted.messageIndex == UInt32(n))
        }
        #expect(outbound.messageIndex == 5)
    }

    @Test("gaps and out-of-order messages decrypt with their own index")
    func gaps() throws {
        let outbound = try OutboundGroupSession.create()
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        let messages = try (0..<10).map { try outbound.encrypt("m\($0)") }
        for index in [7, 2, 9, 0] {
            let decrypted = try inbound.decrypt(messages[index])
            #expect(decrypted.messageIndex == UInt32(index))
            #expect(decrypted.plaintext.utf8String == "m\(index)")
        }
    }

    @Test("a key shared later decrypts only from its index on")
    func laterSessionKey() throws {
        let outbound = try OutboundGroupSession.create()
        let early = try outbound.encrypt("before the key")
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        #expect(inbound.firstKnownIndex == 1)
        #expect(throws: OlmError(code: .unknownMessageIndex, operation: "olm_group_decrypt")) { try inbound.decrypt(early) }
        #expect(try inbound.decrypt(try outbound.encrypt("after")).messageIndex == 1)
    }

    @Test("export at a later index, import: earlier messages refused, later ones decrypt, unverified until used")
    func exportImport() throws {
        let outbound = try OutboundGroupSession.create()
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        let messages = try (0..<6).map { try outbound.encrypt("m\($0)") }
        let exported = try inbound.export(at: 3)
        let imported = try InboundGroupSession(importing: exported)
        #expect(imported.sessionID == outbound.sessionID)
        #expect(imported.firstKnownIndex == 3)
        #expect(!imported.isVerified)
        #expect(throws: OlmError(code: .unknownMessageIndex, operation: "olm_group_decrypt")) { try imported.decrypt(messages[2]) }
        #expect(try imported.decrypt(messages[4]).plaintext.utf8String == "m4")
        #expect(imported.isVerified)
        #expect(throws: OlmError(code: .unknownMessageIndex, operation: "olm_export_inbound_group_session")) {
            try imported.export(at: 1)
        }
        // An export is not a session key: the two formats are not interchangeable.
        #expect(throws: OlmError.self) { try InboundGroupSession(sessionKey: exported) }
    }

    @Test("a replayed ciphertext decrypts to the same index, which is what the caller's replay check keys on")
    func replayIsVisible() throws {
        let outbound = try OutboundGroupSession.create()
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        _ = try outbound.encrypt("zero")
        let message = try outbound.encrypt("one")
        let first = try inbound.decrypt(message), again = try inbound.decrypt(message)
        #expect(first.messageIndex == 1)
        #expect(again.messageIndex == first.messageIndex)
        #expect(again.plaintext == first.plaintext)
    }

    @Test("tampered, truncated and garbage ciphertexts give typed errors")
    func badInput() throws {
        let outbound = try OutboundGroupSession.create()
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        let good = try outbound.encrypt("genuine")
        var bytes = Array(good.utf8)
        let middle = bytes.count / 2
        bytes[middle] = bytes[middle] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: OlmError.self) { try inbound.decrypt(String(decoding: bytes, as: UTF8.self)) }
        #expect(throws: OlmError.self) { try inbound.decrypt(String(good.prefix(good.count - 10))) }
        expectOlmError([.invalidBase64, .badMessageVersion, .badMessageFormat]) { _ = try inbound.decrypt("***") }
        #expect(throws: OlmError.self) { try inbound.decrypt("") }
        expectOlmError([.invalidBase64, .badSessionKey]) { _ = try InboundGroupSession(sessionKey: "not base64 at all!") }
        #expect(throws: OlmError.self) { try InboundGroupSession(sessionKey: "AgAAAAAA") }
        let stranger = try InboundGroupSession(sessionKey: try OutboundGroupSession.create().sessionKey)
        #expect(throws: OlmError.self) { try stranger.decrypt(good) }
        #expect(try inbound.decrypt(good).plaintext.utf8String == "genuine")
    }

    @Test("pickles: the outbound ratchet continues, the inbound session still decrypts")
    func pickles() throws {
        let outbound = try OutboundGroupSession.create()
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
        _ = try outbound.encrypt("advance")
        let restoredOut = try OutboundGroupSession.unpickle(try outbound.pickle(key: TestKeys.pickle), key: TestKeys.pickle)
        #expect(restoredOut.messageIndex == 1)
        #expect(restoredOut.sessionID == outbound.sessionID)
        let restoredIn = try InboundGroupSession.unpickle(try inbound.pickle(key: TestKeys.pickle), key: TestKeys.pickle)
        #expect(restoredIn.sessionID == inbound.sessionID)
        let decrypted = try restoredIn.decrypt(try restoredOut.encrypt("after restore"))
        #expect(decrypted.messageIndex == 1)
        #expect(decrypted.plaintext.utf8String == "after restore")
        #expect(throws: OlmError.self) {
            try OutboundGroupSession.unpickle(try outbound.pickle(key: TestKeys.pickle), key: TestKeys.otherPickle)
        }
        #expect(throws: OlmError.self) {
            try InboundGroupSession.unpickle(try inbound.pickle(key: TestKeys.pickle), key: TestKeys.otherPickle)
        }
    }
}
