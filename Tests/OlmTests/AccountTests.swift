import Olm
import Testing

@Suite("Account")
struct AccountTests {
    @Test("identity keys are 32-byte keys in unpadded base64")
    func identityKeys() throws {
        let account = try Account.create()
        let keys = account.identityKeys
        #expect(keys.curve25519.count == 43)
        #expect(keys.ed25519.count == 43)
        #expect(keys.curve25519 != keys.ed25519)
        #expect(try Account.create().identityKeys != keys)
    }

    @Test("a signature verifies with the ed25519 key and fails for another message")
    func signAndVerify() throws {
        let account = try Account.create()
        let signature = account.sign("{\"a\":1}")
        try Utility.verifyEd25519(key: account.identityKeys.ed25519, message: Array("{\"a\":1}".utf8), signature: signature)
        #expect(throws: OlmError(code: .badSignature, operation: "olm_ed25519_verify")) {
            try Utility.verifyEd25519(
                key: account.identityKeys.ed25519, message: Array("{\"a\":2}".utf8), signature: signature)
        }
        let other = try Account.create()
        #expect(throws: OlmError.self) {
            try Utility.verifyEd25519(key: other.identityKeys.ed25519, message: Array("{\"a\":1}".utf8), signature: signature)
        }
    }

    @Test("one-time keys: generate, list unpublished, mark published, cap at the maximum")
    func oneTimeKeys() throws {
        let account = try Account.create()
        #expect(account.unpublishedOneTimeKeys.isEmpty)
        try account.generateOneTimeKeys(count: 5)
        let keys = account.unpublishedOneTimeKeys
        #expect(keys.count == 5)
        #expect(Set(keys.map(\.keyID)).count == 5)
        #expect(keys.allSatisfy { $0.publicKey.count == 43 })
        account.markKeysAsPublished()
        #expect(account.unpublishedOneTimeKeys.isEmpty)
        #expect(account.maxNumberOfOneTimeKeys == 100)
        try account.generateOneTimeKeys(count: account.maxNumberOfOneTimeKeys + 10)
        #expect(account.unpublishedOneTimeKeys.count == account.maxNumberOfOneTimeKeys)
    }

    @Test("fallback key: generated unpublished, published by mark, old one forgettable")
    func fallbackKey() throws {
        let account = try Account.create()
        #expect(account.unpublishedFallbackKey == nil)
        try account.generateFallbackKey()
        let first = try #require(account.unpublishedFallbackKey)
        account.markKeysAsPublished()
        #expect(account.unpublishedFallbackKey == nil)
        try account.generateFallbackKey()
        let second = try #require(account.unpublishedFallbackKey)
        #expect(second.publicKey != first.publicKey)
        account.forgetOldFallbackKey()
        #expect(account.unpublishedFallbackKey == second)
    }

    @Test("a session made from the old fallback key works until it is forgotten")
    func oldFallbackKeyGracePeriod() throws {
        let bob = try Account.create(), alice = try Account.create()
        try bob.generateFallbackKey()
        let old = try #require(bob.unpublishedFallbackKey)
        bob.markKeysAsPublished()
        try bob.generateFallbackKey()
        bob.markKeysAsPublished()
        let toOld = try Session.outbound(account: alice, theirIdentityKey: bob.identityKeys.curve25519, theirOneTimeKey: old.publicKey)
        let message = try toOld.encrypt("via old fallback")
        let inbound = try Session.inbound(account: bob, preKeyMessage: message)
        #expect(try inbound.decrypt(message).utf8String == "via old fallback")
        // Removing "used" keys leaves a fallback key in place: a second peer can still use it.
        try bob.removeOneTimeKeys(usedBy: inbound)
        let second = try Session.outbound(account: try Account.create(), theirIdentityKey: bob.identityKeys.curve25519, theirOneTimeKey: old.publicKey)
        let again = try second.encrypt("second peer")
        #expect(try Session.inbound(account: bob, preKeyMessage: again).decrypt(again).utf8String == "second peer")
        bob.forgetOldFallbackKey()
        let late = try Session.outbound(account: alice, theirIdentityKey: bob.identityKeys.curve25519, theirOneTimeKey: old.publicKey)
        #expect(throws: OlmError(code: .badMessageKeyID, operation: "olm_create_inbound_session")) {
            try Session.inbound(account: bob, preKeyMessage: try late.encrypt("too late"))
        }
    }

    @Test("pickle round trip keeps keys; wrong key and damaged pickles give typed errors")
    func pickle() throws {
        let account = try Account.create()
        try account.generateOneTimeKeys(count: 3)
        let pickle = try account.pickle(key: TestKeys.pickle)
        #expect(!pickle.contains(account.identityKeys.ed25519))
        let restored = try Account.unpickle(pickle, key: TestKeys.pickle)
        #expect(restored.identityKeys == account.identityKeys)
        #expect(restored.unpublishedOneTimeKeys == account.unpublishedOneTimeKeys)
        #expect(restored.sign("x") == account.sign("x"))

        #expect(throws: OlmError(code: .badAccountKey, operation: "olm_unpickle_account")) {
            try Account.unpickle(pickle, key: TestKeys.otherPickle)
        }
        expectOlmError([.invalidBase64, .badAccountKey, .corruptedPickle]) {
            _ = try Account.unpickle("not*base64!", key: TestKeys.pickle)
        }
        #expect(throws: OlmError.self) {
            try Account.unpickle(String(pickle.prefix(pickle.count / 2)), key: TestKeys.pickle)
        }
        #expect(throws: OlmError.self) { try Account.unpickle("", key: TestKeys.pickle) }
    }

    @Test("pickle keys must be exactly 32 bytes")
    func pickleKeyLength() {
        #expect(throws: OlmError.self) { try PickleKey([]) }
        #expect(throws: OlmError.self) { try PickleKey(Array(repeating: 1, count: 31)) }
        #expect(throws: OlmError.self) { try PickleKey(Array(repeating: 1, count: 33)) }
        #expect(throws: Never.self) { try PickleKey(Array(repeating: 1, count: 32)) }
    }
}
