import Olm
import Testing

/// `hasChanges` decides whether an account is written back after a step: every mutating method must
/// set it, or a spent one-time key or a new fallback key would be lost with the step.
@Suite("Account: hasChanges")
struct AccountChangesTests {
    let key = try! PickleKey(Array(repeating: 7, count: 32))

    func unpickled() throws -> Account {
        let account = try Account.create()
        try account.generateOneTimeKeys(count: 2)
        try account.generateFallbackKey()
        return try Account.unpickle(try account.pickle(key: key), key: key)
    }

    @Test("a new account has changes; an unpickled one has none, and reading it adds none")
    func readsChangeNothing() throws {
        #expect(try Account.create().hasChanges)
        let account = try unpickled()
        #expect(!account.hasChanges)
        _ = account.identityKeys
        _ = account.unpublishedOneTimeKeys
        _ = account.unpublishedFallbackKey
        _ = account.sign("x")
        _ = try account.pickle(key: key)
        let peer = try Account.create()
        let otk = try #require(account.unpublishedOneTimeKeys.first?.publicKey)
        _ = try Session.outbound(account: account, theirIdentityKey: peer.identityKeys.curve25519, theirOneTimeKey: otk)
        #expect(!account.hasChanges)
    }

    @Test("every mutation sets it: one-time keys made, published or spent, a fallback key made or forgotten")
    func mutationsSetIt() throws {
        let mutations: [(String, (Account) throws -> Void)] = [
            ("generateOneTimeKeys", { try $0.generateOneTimeKeys(count: 1) }),
            ("markKeysAsPublished", { $0.markKeysAsPublished() }),
            ("generateFallbackKey", { try $0.generateFallbackKey() }),
            ("forgetOldFallbackKey", { $0.forgetOldFallbackKey() }),
            ("removeOneTimeKeys", { account in
                let peer = try Account.create()
                let otk = try #require(account.unpublishedOneTimeKeys.first?.publicKey)
                let outbound = try Session.outbound(account: peer, theirIdentityKey: account.identityKeys.curve25519, theirOneTimeKey: otk)
                let message = try outbound.encrypt("hi")
                let inbound = try Session.inbound(account: account, preKeyMessage: message)
                // Creating the session alone changes nothing: the key is spent by the removal.
                #expect(!account.hasChanges)
                try account.removeOneTimeKeys(usedBy: inbound)
            }),
        ]
        for (name, mutate) in mutations {
            let account = try unpickled()
            try mutate(account)
            #expect(account.hasChanges, "\(name) did not set hasChanges")
        }
    }
}
