@testable import Olm
import Primitives
import Testing

/// One-time keys written into the account's pickle with libcrypto's X25519 (issue 12 point 4) must be
/// exactly what libolm would have made: real key pairs, the same ids, order, limit and flags.
@Suite("Spliced one-time keys")
struct SplicedOneTimeKeysTests {
    @Test("every spliced key is a real key pair: a peer's pre-key message to it decrypts, and the key is then removed")
    func keysArePairs() throws {
        let account = try Account.create()
        #expect(try account.spliceOneTimeKeys(count: 50) == .spliced)
        let keys = account.unpublishedOneTimeKeys
        #expect(keys.count == 50)
        account.markKeysAsPublished()
        for key in keys {
            let peer = try Account.create()
            let outbound = try Session.outbound(
                account: peer, theirIdentityKey: account.identityKeys.curve25519, theirOneTimeKey: key.publicKey)
            let message = try outbound.encrypt("to \(key.keyID)")
            let inbound = try Session.inbound(account: account, preKeyMessage: message, theirIdentityKey: peer.identityKeys.curve25519)
            #expect(try inbound.decrypt(message) == Array("to \(key.keyID)".utf8))
            try account.removeOneTimeKeys(usedBy: inbound)
        }
        // All 50 were used once and removed: a second session on any of them is refused.
        let peer = try Account.create()
        let again = try Session.outbound(account: peer, theirIdentityKey: account.identityKeys.curve25519, theirOneTimeKey: keys[0].publicKey)
        #expect(throws: OlmError.self) {
            _ = try Session.inbound(account: account, preKeyMessage: try again.encrypt("x"), theirIdentityKey: peer.identityKeys.curve25519)
        }
    }

    @Test("ids, order, flags and the 100-key limit come out as libolm's own generation leaves them")
    func sameBookkeepingAsLibolm() throws {
        let byLibolm = try Account.create(), bySplice = try Account.create()
        func step(_ count: Int) throws {
            try byLibolm.generateOneTimeKeysWithLibolm(count: count)
            #expect(try bySplice.spliceOneTimeKeys(count: count) == .spliced)
        }
        try step(3)
        #expect(byLibolm.unpublishedOneTimeKeys.map(\.keyID) == bySplice.unpublishedOneTimeKeys.map(\.keyID))
        byLibolm.markKeysAsPublished(); bySplice.markKeysAsPublished()
        try byLibolm.generateFallbackKey(); try bySplice.generateFallbackKey()
        try step(2)
        // Published keys stay published; only the two new ones are listed; the fallback key took an id.
        #expect(bySplice.unpublishedOneTimeKeys.count == 2)
        #expect(byLibolm.unpublishedOneTimeKeys.map(\.keyID) == bySplice.unpublishedOneTimeKeys.map(\.keyID))
        #expect(byLibolm.unpublishedFallbackKey?.keyID == bySplice.unpublishedFallbackKey?.keyID)
        // Past the limit the oldest go, and ids skipped by it are used up, as in libolm.
        try step(130)
        let kept = bySplice.unpublishedOneTimeKeys
        #expect(kept.count == 100)
        #expect(byLibolm.unpublishedOneTimeKeys.map(\.keyID) == kept.map(\.keyID))
        try step(1)
        #expect(byLibolm.unpublishedOneTimeKeys.map(\.keyID) == bySplice.unpublishedOneTimeKeys.map(\.keyID))
        // The fallback key and identity survive the splice.
        #expect(byLibolm.unpublishedFallbackKey?.keyID == bySplice.unpublishedFallbackKey?.keyID)
        let identity = bySplice.identityKeys
        try #require(bySplice.spliceOneTimeKeys(count: 1) == .spliced)
        #expect(bySplice.identityKeys == identity)
        try Utility.verifyEd25519(key: identity.ed25519, message: Array("{}".utf8), signature: bySplice.sign("{}"))
    }

    @Test("the public API makes spliced keys, and they survive a pickle round trip")
    func publicPathAndPickle() throws {
        let account = try Account.create()
        try account.generateOneTimeKeys(count: 10)
        let restored = try Account.unpickle(try account.pickle(key: TestKeys.pickle), key: TestKeys.pickle)
        #expect(restored.unpublishedOneTimeKeys == account.unpublishedOneTimeKeys)
        #expect(restored.identityKeys == account.identityKeys)
    }

    @Test("libolm's pickle envelope: libolm's pickles open, ours unpickle, a wrong key or a changed byte is refused")
    func envelope() throws {
        let account = try Account.create()
        try account.generateOneTimeKeysWithLibolm(count: 4)
        let pickle = try account.pickle(key: TestKeys.pickle)
        let body = try LibolmPickleEnvelope.open(pickle, key: TestKeys.pickle)
        let layout = try #require(try AccountPickleBody(body))
        #expect(layout.oneTimeKeyCount == 4)
        #expect(layout.nextKeyID == 4)
        let resealed = try LibolmPickleEnvelope.seal(body, key: TestKeys.otherPickle)
        #expect(try Account.unpickle(resealed, key: TestKeys.otherPickle).unpublishedOneTimeKeys == account.unpublishedOneTimeKeys)
        #expect(throws: OlmError(code: .badAccountKey, operation: "open libolm pickle")) {
            _ = try LibolmPickleEnvelope.open(pickle, key: TestKeys.otherPickle)
        }
        var bytes = try Base64.decode(pickle)
        bytes[10] ^= 1
        #expect(throws: OlmError(code: .badAccountKey, operation: "open libolm pickle")) {
            _ = try LibolmPickleEnvelope.open(Base64.encodeUnpadded(bytes), key: TestKeys.pickle)
        }
        #expect(throws: OlmError.self) { _ = try LibolmPickleEnvelope.open("not base64!", key: TestKeys.pickle) }
    }

    @Test("a body of another version is left to libolm; a body whose lengths do not add up is refused")
    func layoutChecks() throws {
        let account = try Account.create()
        let body = try LibolmPickleEnvelope.open(try account.pickle(key: TestKeys.pickle), key: TestKeys.pickle)
        var otherVersion = body
        otherVersion[3] = 3
        #expect(try AccountPickleBody(otherVersion) == nil)
        #expect(throws: OlmError.self) { _ = try AccountPickleBody(Array(body.dropLast())) }
        var lyingCount = body
        lyingCount[AccountPickleBody.headerByteCount + 3] = 7
        #expect(throws: OlmError.self) { _ = try AccountPickleBody(lyingCount) }
        #expect(throws: OlmError.self) { _ = try AccountPickleBody(Array(body.prefix(20))) }
    }
}

@Suite("libolm's key map, scanned")
struct KeyMapScanTests {
    @Test("the scan reads libolm's own output exactly as JSONDecoder does, empty or full")
    func sameAsDecoder() throws {
        let account = try Account.create()
        #expect(Account.scanKeyMap(Array(#"{"curve25519":{}}"#.utf8)) == [])
        try account.generateOneTimeKeys(count: 100)
        let keys = account.unpublishedOneTimeKeys
        #expect(keys.count == 100)
        let json = "{\"curve25519\":{" + keys.map { "\"\($0.keyID)\":\"\($0.publicKey)\"" }.joined(separator: ",") + "}}"
        let scanned = try #require(Account.scanKeyMap(Array(json.utf8)))
        #expect(scanned.sorted { $0.keyID < $1.keyID } == keys)
        try account.generateFallbackKey()
        #expect(account.unpublishedFallbackKey != nil)
    }

    @Test("anything but libolm's exact shape is left to JSONDecoder (nil), which still reads valid JSON")
    func otherShapes() {
        for text in [
            #"{"curve25519": {"AAAAAQ":"a"}}"#, #"{"curve25519":{"AAAAAQ":"a",}}"#, #"{"curve25519":{"AAAAAQ":"a\u0041"}}"#,
            #"{"curve25519":{"AAAAAQ""a"}}"#, #"{"curve25519":{"":"a"}}"#, #"{"ed25519":{"AAAAAQ":"a"}}"#, #"{"curve25519":{"AAAAAQ":"a"}"#,
        ] {
            #expect(Account.scanKeyMap(Array(text.utf8)) == nil, "\(text)")
        }
        #expect(Account.decodeKeyMap(Array(#"{"curve25519": {"AAAAAQ":"a\u0041"}}"#.utf8)) == [OneTimeKey(keyID: "AAAAAQ", publicKey: "aA")])
    }
}
