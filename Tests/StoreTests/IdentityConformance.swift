import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

/// Remote users' cross-signing identities, the same on every ``CryptoStore``.
enum IdentityConformance {
    static func run(_ store: any CryptoStore) async throws {
        let alice = try UserID("@alice:remote"), bob = try UserID("@bob:remote")
        let dev = try DeviceID("DEV"), other = try DeviceID("OTHER")
        #expect(try await store.userIdentities([alice]).isEmpty)

        // Written with the device list in one save; the recipients version grows with it.
        let before = try await store.recipientsVersion()
        let pinned = StoredUserIdentity(
            userID: alice, pinnedMasterKey: "MASTER1", masterKey: "MASTER1", selfSigningKey: "SSK1",
            crossSignedDevices: [dev: "ED1", other: "ED2"])
        var changes = CryptoChanges()
        changes.userIdentities[alice] = pinned
        changes.deviceLists[alice] = [VerifiedDeviceKeys(userID: alice, deviceID: dev, curve25519: "C1", ed25519: "ED1")]
        changes.trackedUsers[alice] = false
        try await store.save(changes)
        #expect(try await store.recipientsVersion() > before)
        #expect(try await store.userIdentities([alice, bob]) == [alice: pinned])

        // Replaced whole: a changed master key, no self-signing key, a vouch.
        var changed = pinned
        changed.masterKey = "MASTER2"
        changed.selfSigningKey = nil
        changed.userSigningKey = "USK2"
        changed.crossSignedDevices = [:]
        changed.vouchedMasterKey = "MASTER1"
        changed.signedByUserSigningKey = "BOTUSK"
        var update = CryptoChanges()
        update.userIdentities[alice] = changed
        try await store.save(update)
        let read = try #require(try await store.userIdentities([alice])[alice])
        #expect(read == changed && read.identityChanged && read.isVerified)

        // No master key now: the pin stays.
        var gone = changed
        gone.masterKey = nil
        var clear = CryptoChanges()
        clear.userIdentities[alice] = gone
        try await store.save(clear)
        #expect(try await store.userIdentities([alice])[alice] == gone)

        // Untracking forgets the devices, not the pin.
        var untrack = CryptoChanges()
        untrack.untrackedUsers = [alice]
        try await store.save(untrack)
        #expect(try await store.devices(userIDs: [alice]).isEmpty)
        #expect(try await store.userIdentities([alice])[alice]?.pinnedMasterKey == "MASTER1")
    }
}

@Suite("Crypto store conformance: cross-signing identities")
struct IdentityConformanceTests {
    @Test("the memory store")
    func memory() async throws {
        try await IdentityConformance.run(MemoryCryptoStore())
    }

    @Test("the PostgreSQL store")
    func postgres() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        try await IdentityConformance.run(PostgresCryptoStore(client: client, cipher: try StoreCipher(secret: String(repeating: "c", count: 44))))
        await TestDatabase.drop(client, name)
    }
}
