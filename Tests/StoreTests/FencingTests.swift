import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

@Suite("Fencing: every write of crypto state proves this instance owns it")
struct FencingTests {
    static let cipher = try! StoreCipher(secret: String(repeating: "f", count: 44))

    static func account(_ pickle: String) throws -> CryptoChanges {
        var changes = CryptoChanges()
        changes.accounts = [StoredAccount(userID: try UserID("@bot:localhost"), deviceID: try DeviceID("D"), pickle: pickle, deviceKeysUploaded: true)]
        return changes
    }

    @Test("after another instance takes a newer epoch, the old one cannot commit a single write; a revoked fence writes nothing")
    func staleEpochIsRefused() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let oldFence = InstanceFence(), newFence = InstanceFence()
        let old = PostgresCryptoStore(client: client, cipher: Self.cipher, fence: oldFence)
        let new = PostgresCryptoStore(client: client, cipher: Self.cipher, fence: newFence)
        let first = try await oldFence.takeOver(client: client, holder: "old")
        try await old.save(try Self.account("from the old instance"))
        let second = try await newFence.takeOver(client: client, holder: "new")
        #expect(second == first + 1)
        await #expect { try await old.save(try Self.account("a forked ratchet")) } throws: { ($0 as? PostgresError)?.isFencedOut == true }
        // Inside a larger transaction too: the whole transaction is refused before COMMIT.
        await #expect { try await client.withTransaction { try await old.save(CryptoChanges(), on: $0) } } throws: {
            ($0 as? PostgresError)?.isFencedOut == true
        }
        #expect(try await new.account(userID: try UserID("@bot:localhost"))?.pickle == "from the old instance")
        try await new.save(try Self.account("from the new instance"))
        #expect(try await new.account(userID: try UserID("@bot:localhost"))?.pickle == "from the new instance")
        newFence.revoke()
        await #expect { try await new.save(try Self.account("after losing the lock")) } throws: { ($0 as? PostgresError)?.code == .fencedOut }
        #expect(try await new.account(userID: try UserID("@bot:localhost"))?.pickle == "from the new instance")
        await TestDatabase.drop(client, name)
    }

    @Test("a takeover waits for the old instance's write in flight, which commits; the next one is refused")
    func takeoverWaitsForWritesInFlight() async throws {
        let (client, name) = try await TestDatabase.fresh(poolSize: 4)
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let oldFence = InstanceFence(), newFence = InstanceFence()
        let old = PostgresCryptoStore(client: client, cipher: Self.cipher, fence: oldFence)
        try await oldFence.takeOver(client: client, holder: "old")
        let clock = ContinuousClock()
        async let inFlight: Void = client.withTransaction { connection in
            try await old.save(try Self.account("in flight"), on: connection)
            try await Task.sleep(for: .milliseconds(500))
        }
        try await Task.sleep(for: .milliseconds(100))
        let start = clock.now
        try await newFence.takeOver(client: client, holder: "new")
        #expect(clock.now - start >= .milliseconds(300), "the takeover waited for the write in flight")
        try await inFlight
        #expect(try await old.account(userID: try UserID("@bot:localhost"))?.pickle == "in flight")
        await #expect { try await old.save(try Self.account("too late")) } throws: { ($0 as? PostgresError)?.isFencedOut == true }
        await TestDatabase.drop(client, name)
    }
}
