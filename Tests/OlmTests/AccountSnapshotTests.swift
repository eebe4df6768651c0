@testable import Olm
import Primitives
import Testing

/// A new account written by Sealbridge (``NewAccount``) and an account pickle edited without libolm
/// (``AccountSnapshot``) must be exactly what libolm would hold (issue 12 point 4).
@Suite("Account snapshots and new accounts")
struct AccountSnapshotTests {
    @Test("a new account unpickles in libolm with the keys it lists, and signs as the unpickled account does")
    func newAccountIsLibolms() throws {
        let made = try NewAccount.create(oneTimeKeys: 50)
        let account = try Account.unpickle(try made.snapshot.seal(key: TestKeys.pickle), key: TestKeys.pickle)
        #expect(account.identityKeys == made.identityKeys)
        #expect(account.unpublishedOneTimeKeys == made.unpublishedOneTimeKeys)
        #expect(account.unpublishedFallbackKey == made.unpublishedFallbackKey)
        #expect(made.unpublishedOneTimeKeys.count == 50)
        // The expanded Ed25519 key in the body belongs to the seed the signer was made from: libolm's
        // signature with the account equals the signer's (Ed25519 is deterministic) and verifies.
        for message in ["{}", #"{"a":"b"}"#, String(repeating: "x", count: 1000)] {
            let signature = made.sign(Array(message.utf8))
            #expect(account.sign(message) == signature)
            try Utility.verifyEd25519(key: made.identityKeys.ed25519, message: Array(message.utf8), signature: signature)
        }
    }

    @Test("ids, order and flags equal libolm's create, fallback key, then one-time keys (50, and 130 past the limit)")
    func sameBookkeepingAsLibolm() throws {
        for count in [0, 1, 50, 130] {
            let byLibolm = try Account.create()
            try byLibolm.generateFallbackKey()
            try byLibolm.generateOneTimeKeysWithLibolm(count: count)
            let made = try NewAccount.create(oneTimeKeys: count)
            #expect(made.unpublishedOneTimeKeys.map(\.keyID) == byLibolm.unpublishedOneTimeKeys.map(\.keyID), "\(count)")
            #expect(made.unpublishedFallbackKey?.keyID == byLibolm.unpublishedFallbackKey?.keyID)
            let libolmBody = try LibolmPickleEnvelope.open(try byLibolm.pickle(key: TestKeys.pickle), key: TestKeys.pickle)
            let ourBody = try LibolmPickleEnvelope.open(try made.snapshot.seal(key: TestKeys.pickle), key: TestKeys.pickle)
            #expect(ourBody.count == libolmBody.count)
            // Everything but the key material is the same bytes: version, ids, flags, counts, counter.
            let layout = try #require(try AccountPickleBody(ourBody))
            #expect(layout.oneTimeKeys(in: ourBody).map(\.id) == layout.oneTimeKeys(in: libolmBody).map(\.id))
            #expect(layout.fallbackKeys(in: ourBody).map(\.id) == layout.fallbackKeys(in: libolmBody).map(\.id))
            #expect(Array(ourBody.suffix(4)) == Array(libolmBody.suffix(4)))
            #expect(Array(ourBody.prefix(4)) == Array(libolmBody.prefix(4)))
        }
        #expect(NewAccount.maxNumberOfOneTimeKeys == (try Account.create()).maxNumberOfOneTimeKeys)
    }

    @Test("every key of a new account is a real pair: a peer's pre-key message to the identity key and each one-time or fallback key decrypts")
    func keysArePairs() throws {
        let made = try NewAccount.create(oneTimeKeys: 5)
        let account = try Account.unpickle(try made.snapshot.seal(key: TestKeys.pickle), key: TestKeys.pickle)
        let keys = made.unpublishedOneTimeKeys + [try #require(made.unpublishedFallbackKey)]
        account.markKeysAsPublished()
        for key in keys {
            let peer = try Account.create()
            let outbound = try Session.outbound(account: peer, theirIdentityKey: made.identityKeys.curve25519, theirOneTimeKey: key.publicKey)
            let message = try outbound.encrypt("to \(key.keyID)")
            let inbound = try Session.inbound(account: account, preKeyMessage: message, theirIdentityKey: peer.identityKeys.curve25519)
            #expect(try inbound.decrypt(message) == Array("to \(key.keyID)".utf8))
        }
        // Random public halves would not decrypt: the check can fail.
        let peer = try Account.create()
        let forged = Base64.encodeUnpadded(SecureRandom.bytes(count: 32))
        let outbound = try Session.outbound(account: peer, theirIdentityKey: made.identityKeys.curve25519, theirOneTimeKey: forged)
        #expect(throws: OlmError.self) {
            _ = try Session.inbound(account: account, preKeyMessage: try outbound.encrypt("x"), theirIdentityKey: peer.identityKeys.curve25519)
        }
    }

    @Test("two new accounts share no key")
    func fresh() throws {
        let a = try NewAccount.create(oneTimeKeys: 3), b = try NewAccount.create(oneTimeKeys: 3)
        #expect(a.identityKeys.curve25519 != b.identityKeys.curve25519)
        #expect(a.identityKeys.ed25519 != b.identityKeys.ed25519)
        #expect(Set(a.unpublishedOneTimeKeys.map(\.publicKey)).isDisjoint(with: b.unpublishedOneTimeKeys.map(\.publicKey)))
    }

    @Test("marking keys published in a snapshot leaves the same bytes as libolm's mark, with and without a fallback key")
    func markPublishedAsLibolm() throws {
        for withFallback in [false, true] {
            let account = try Account.create()
            try account.generateOneTimeKeysWithLibolm(count: 4)
            account.markKeysAsPublished()
            if withFallback { try account.generateFallbackKey() }
            try account.generateOneTimeKeysWithLibolm(count: 3)
            let snapshot = try #require(try AccountSnapshot.open(try account.pickle(key: TestKeys.pickle), key: TestKeys.pickle))
            #expect(snapshot.unpublishedOneTimeKeys == account.unpublishedOneTimeKeys)
            #expect(snapshot.unpublishedFallbackKey == account.unpublishedFallbackKey)
            #expect(snapshot.identityKeys == account.identityKeys)
            #expect(snapshot.unpublishedOneTimeKeys.count == 3)
            snapshot.markKeysAsPublished()
            account.markKeysAsPublished()
            #expect(snapshot.unpublishedOneTimeKeys.isEmpty)
            #expect(snapshot.unpublishedFallbackKey == nil)
            let ours = try LibolmPickleEnvelope.open(try snapshot.seal(key: TestKeys.pickle), key: TestKeys.pickle)
            let libolms = try LibolmPickleEnvelope.open(try account.pickle(key: TestKeys.pickle), key: TestKeys.pickle)
            #expect(ours == libolms)
        }
    }

    @Test("a snapshot refuses a wrong key or a damaged pickle, and leaves another version to libolm")
    func openChecks() throws {
        let account = try Account.create()
        let pickle = try account.pickle(key: TestKeys.pickle)
        #expect(throws: OlmError.self) { _ = try AccountSnapshot.open(pickle, key: TestKeys.otherPickle) }
        #expect(throws: OlmError.self) { _ = try AccountSnapshot.open("AAAA", key: TestKeys.pickle) }
        var body = try LibolmPickleEnvelope.open(pickle, key: TestKeys.pickle)
        body[3] = 3
        #expect(try AccountSnapshot.open(try LibolmPickleEnvelope.seal(body, key: TestKeys.pickle), key: TestKeys.pickle) == nil)
    }
}
