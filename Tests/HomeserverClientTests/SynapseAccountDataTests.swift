import Foundation
import HomeserverClient
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

@Suite("Account data and master keys on a real Synapse")
struct SynapseAccountDataTests {
    @Test("account data: absent is nil; put then get per user; types with / and + in a key id round-trip")
    func accountData() async throws {
        let client = try TestHomeserver.client()
        let suffix = UInt32.random(in: 0...UInt32.max)
        let user = try UserID("@sbtest_ad\(suffix):localhost"), other = try UserID("@sbtest_ae\(suffix):localhost")
        try await client.registerUser(localpart: user.localpart)
        try await client.registerUser(localpart: other.localpart)

        #expect(try await client.accountData("m.secret_storage.default_key", of: user) == nil)
        try await client.setAccountData("m.secret_storage.default_key", content: ["key": "abc"], of: user)
        #expect(try await client.accountData("m.secret_storage.default_key", of: user) == ["key": "abc"])
        #expect(try await client.accountData("m.secret_storage.default_key", of: other) == nil)
        // mautrix makes key ids of base64 (with / and +): the type must be escaped in the path.
        let type = "m.secret_storage.key.a/b+c=d"
        try await client.setAccountData(type, content: ["algorithm": "x"], of: user)
        #expect(try await client.accountData(type, of: user) == ["algorithm": "x"])
        #expect(try await client.accountData("m.secret_storage.key.a", of: user) == nil)
        try await client.setAccountData("m.secret_storage.default_key", content: ["key": "def"], of: user)
        #expect(try await client.accountData("m.secret_storage.default_key", of: user) == ["key": "def"])
    }

    @Test("a user's master key reads back from /keys/query after its upload, and is nil before")
    func masterKey() async throws {
        let client = try TestHomeserver.client()
        let suffix = UInt32.random(in: 0...UInt32.max)
        let user = try UserID("@sbtest_mk\(suffix):localhost")
        try await client.registerUser(localpart: user.localpart)
        #expect(try PublishedMasterKey.masterKey(of: user, in: try await client.queryKeys([user], as: user)) == nil)

        let store = MemoryCryptoStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "q", count: 44)))
        await store.save(try await machine.createCrossSigningIdentity(userID: user))
        let upload = try #require(try await machine.pendingCrossSigningUpload(userID: user))
        _ = try await client.request(
            .POST, "/_matrix/client/v3/keys/device_signing/upload", as: .init(userID: user), body: try #require(upload.signingKeys))
        let published = try PublishedMasterKey.masterKey(of: user, in: try await client.queryKeys([user], as: user))
        #expect(published == upload.keys.master)
    }
}
