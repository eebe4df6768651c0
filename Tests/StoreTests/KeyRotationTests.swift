import Foundation
@testable import MatrixCrypto
import MatrixModels
import Olm
import Postgres
@testable import Store
import TestSupport
import Testing

@Suite("Pickle key rotation on PostgreSQL")
struct KeyRotationTests {
    static let oldSecret = String(repeating: "o", count: 44), newSecret = String(repeating: "n", count: 44)
    let old = try! StoreCipher(secret: KeyRotationTests.oldSecret)
    let ring = try! StoreCipher(secret: KeyRotationTests.newSecret, previous: [KeyRotationTests.oldSecret])
    let newOnly = try! StoreCipher(secret: KeyRotationTests.newSecret)
    let columns = PostgresCryptoStore.encryptedColumns

    let bot = try! UserID("@bot:hs"), alice = try! UserID("@alice:hs"), device = try! DeviceID("DEV")

    /// Every encrypted column of the crypto store, populated under the old key: half version 2, half
    /// version 1 (rows written before key ids), as a database upgraded from an earlier release holds them.
    func populate(_ client: PostgresClient, rows: Int) async throws {
        let store = PostgresCryptoStore(client: client, cipher: old)
        var changes = CryptoChanges()
        func pickle(_ index: Int, _ body: (PickleKey) throws -> String) throws -> String {
            index.isMultiple(of: 2) ? try old.pickle(body) : try old.pickleVersion1(body)
        }
        let remote = try Account.create()
        try remote.generateOneTimeKeys(count: rows)
        let oneTimeKeys = remote.unpublishedOneTimeKeys
        for index in 0..<rows {
            let account = try Account.create()
            let user = try UserID("@p\(index):hs")
            changes.accounts.append(StoredAccount(userID: user, deviceID: device, pickle: try pickle(index) { try account.pickle(key: $0) }, deviceKeysUploaded: true))
            let session = try Session.outbound(account: account, theirIdentityKey: remote.identityKeys.curve25519, theirOneTimeKey: oneTimeKeys[index].publicKey)
            changes.olmSessions.append(StoredOlmSession(
                localUserID: user, localDeviceID: device, senderKey: remote.identityKeys.curve25519, sessionID: session.sessionID,
                pickle: try pickle(index) { try session.pickle(key: $0) }, lastUsed: Date()))
            let outbound = try OutboundGroupSession.create()
            let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
            changes.inboundGroupSessions.append(StoredInboundGroupSession(
                roomID: try RoomID("!r\(index):hs"), sessionID: outbound.sessionID, senderKey: "K", senderUserID: alice, firstKnownIndex: 0,
                pickle: try pickle(index) { try inbound.pickle(key: $0) }))
            changes.outboundGroupSessions.append(StoredOutboundGroupSession(
                roomID: try RoomID("!r\(index):hs"), senderUserID: user, senderDeviceID: device, sessionID: outbound.sessionID,
                pickle: try pickle(index) { try outbound.pickle(key: $0) }, createdAt: Date()))
            changes.parkedEvents.append(ParkedEvent(
                event: .object(["event_id": .string("$e\(index)"), "sender": .string(alice.rawValue), "content": .object([:])]),
                sessionID: "S", roomID: try RoomID("!r:hs"), sender: alice))
            changes.pendingToDevice.append(PendingToDevice(
                id: "t\(index)", recipient: DeviceRef(userID: user, deviceID: device), sender: alice, senderKey: "K",
                payload: .object(["n": .integer(Int64(index))]), receivedAt: Date()))
        }
        try await store.save(changes)
        // Retire half the outbound sessions: their first pickle moves to sealbridge_retired_outbound_sessions.
        var retire = CryptoChanges()
        retire.discardedOutboundSessions = try (0..<rows).filter { $0.isMultiple(of: 2) }.map {
            OutboundSessionOwner(roomID: try RoomID("!r\($0):hs"), senderUserID: try UserID("@p\($0):hs"))
        }
        try await store.save(retire)
        for index in 0..<rows {
            let user = try UserID("@p\(index):hs")
            let seeds = try index.isMultiple(of: 2)
                ? old.seal(Array(repeating: UInt8(index), count: 96), context: StoredCrossSigningIdentity.sealContext(user))
                : old.sealVersion1(Array(repeating: UInt8(index), count: 96), context: StoredCrossSigningIdentity.sealContext(user))
            try await client.execute("""
                INSERT INTO sealbridge_cross_signing_identities (user_id, master_key, self_signing_key, user_signing_key, sealed_seeds, published)
                VALUES (\(user.rawValue), 'm', 's', 'u', \(seeds), true)
                """)
            // A history bundle's sealed file pointer (its AES key among it).
            let id = "b\(index)", pointer = Array(#"{"url":"mxc://hs/m","key":{"k":"secret"}}"#.utf8)
            let sealed = try index.isMultiple(of: 2)
                ? old.seal(pointer, context: PostgresCryptoStore.historyBundleContext(id))
                : old.sealVersion1(pointer, context: PostgresCryptoStore.historyBundleContext(id))
            try await client.execute("""
                INSERT INTO sealbridge_history_bundles
                    (id, recipient_user_id, recipient_device_id, room_id, sender_user_id, sender_device_id, sender_key, sender_ed25519, sealed, received_at)
                VALUES (\(id), \(user.rawValue), 'DEV', \("!r\(index):hs"), \(alice.rawValue), 'AD', 'K', 'E', \(sealed), now())
                """)
        }
    }

    func rotateAll(_ rotation: StoreKeyRotation, batchSize: Int) async throws -> (rewritten: Int, failed: Int) {
        var rewritten = 0, failed = 0
        for column in columns {
            var cursor: [String]?
            repeat {
                let batch = try await rotation.batch(column, after: cursor, limit: batchSize)
                rewritten += batch.rewritten
                failed += batch.failed
                cursor = batch.cursor
            } while cursor != nil
        }
        return (rewritten, failed)
    }

    @Test("every row moves to the new key, resumably; afterwards the new key alone opens everything and the old key alone nothing")
    func rotation() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let rows = 7
        try await populate(client, rows: rows)
        let rotation = StoreKeyRotation(client: client, cipher: ring)
        var total = 0
        for column in columns {
            let progress = try await rotation.progress(column)
            #expect(progress.total > 0 && progress.left == progress.total, "\(column.name)")
            total += progress.total
        }
        // Before: the new key alone opens nothing, the keyring everything.
        for column in columns {
            #expect(try await StoreKeyRotation(client: client, cipher: newOnly).verify(column, batchSize: 3).opened == 0, "\(column.name)")
            #expect(try await rotation.verify(column, batchSize: 3).failed == 0, "\(column.name)")
        }

        // Interrupted after one batch of 3 accounts: 3 moved, the rest not.
        let accounts = columns[0]
        let first = try await rotation.batch(accounts, after: nil, limit: 3)
        #expect(first.rewritten == 3 && first.cursor != nil)
        #expect(try await rotation.progress(accounts) == .init(total: rows, left: rows - 3))
        // A rerun from the start skips the moved rows and finishes.
        let rest = try await rotateAll(rotation, batchSize: 3)
        #expect(rest.failed == 0)
        #expect(rest.rewritten == total - 3)
        for column in columns {
            #expect(try await rotation.progress(column).left == 0, "\(column.name)")
        }
        #expect(try await rotateAll(rotation, batchSize: 3).rewritten == 0)

        // Every row is under the new key id, opens with the new key alone, and not with the old key alone.
        for row in try await client.query("SELECT pickle FROM sealbridge_crypto_accounts") {
            #expect(StoreCipher.keyID(ofPickle: try row.decode(String.self, "pickle")) == newOnly.keyID)
        }
        for row in try await client.query("SELECT sealed FROM sealbridge_parked_events") {
            #expect(StoreCipher.keyID(ofSealed: try row.decode([UInt8].self, "sealed")) == newOnly.keyID)
        }
        for column in columns {
            let withNew = try await StoreKeyRotation(client: client, cipher: newOnly).verify(column, batchSize: 4)
            let withOld = try await StoreKeyRotation(client: client, cipher: old).verify(column, batchSize: 4)
            #expect(withNew.failed == 0 && withNew.opened > 0, "\(column.name)")
            #expect(withOld.opened == 0 && withOld.failed == withNew.opened, "\(column.name)")
        }
        // And the store reads it through the new key alone: the same objects as before.
        let store = PostgresCryptoStore(client: client, cipher: newOnly)
        let parked = try await store.parkedEvents(sessionIDs: ["S"])
        #expect(Set(parked.map(\.eventID)) == Set((0..<rows).map { "$e\($0)" }))
        #expect(try await store.pendingToDevice(senders: [alice]).count == rows)
        let account = try #require(try await store.account(userID: try UserID("@p1:hs")))
        _ = try newOnly.unpickle(account.pickle) { try Account.unpickle($0, key: $1) }
        await TestDatabase.drop(client, name)
    }

    @Test("a row the daemon rewrites between the rotation's read and write keeps the daemon's value (compare-and-swap)")
    func concurrentWrite() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        try await populate(client, rows: 3)
        let rotation = StoreKeyRotation(client: client, cipher: ring)
        let accounts = columns[0]
        let read = try await rotation.read(accounts, after: nil, limit: 10, onlyStale: true)
        #expect(read.count == 3)
        // Meanwhile the daemon (writing under the new key) advances @p0's account: one more one-time key.
        let daemon = PostgresCryptoStore(client: client, cipher: ring)
        let user = try UserID("@p0:hs")
        let stored = try #require(try await daemon.account(userID: user))
        let account = try ring.unpickle(stored.pickle) { try Account.unpickle($0, key: $1) }
        try account.generateOneTimeKeys(count: 1)
        let advanced = try ring.pickle { try account.pickle(key: $0) }
        var changes = CryptoChanges()
        changes.accounts = [StoredAccount(userID: user, deviceID: device, pickle: advanced, deviceKeysUploaded: true)]
        try await daemon.save(changes)

        let outcome = try await rotation.rewrite(accounts, read)
        #expect(outcome.rewritten == 2 && outcome.changed == 1 && outcome.failed == 0)
        // The daemon's write stands: the new one-time key is still there.
        #expect(try await daemon.account(userID: user)?.pickle == advanced)
        #expect(try await rotation.progress(accounts).left == 0)
        await TestDatabase.drop(client, name)
    }

    @Test("every pickle or sealed column of the crypto store's schema is rotated (a new table with one must be listed)")
    func everyEncryptedColumnIsListed() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let found = Set(try await client.query("""
            SELECT table_name || '.' || column_name AS name FROM information_schema.columns
            WHERE table_schema = current_schema() AND (column_name LIKE '%pickle%' OR column_name LIKE 'sealed%')
            """).map { try $0.decode(String.self, "name") })
        #expect(found == Set(columns.map(\.name)))
        await TestDatabase.drop(client, name)
    }

    @Test("the registry: a daemon without a listed key id is told which; a finished rotation forgets the old id")
    func registry() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let registry = StoreKeyRegistry(client: client)
        #expect(try await registry.latestWriter() == nil)
        try await registry.registerWriter(old)
        #expect(try await registry.missing(from: old).isEmpty)
        try await registry.registerWriter(ring)
        #expect(try await registry.latestWriter() == ring.keyID)
        #expect(try await registry.missing(from: ring).isEmpty)
        #expect(try await registry.missing(from: newOnly) == [old.keyID])
        #expect(try await registry.missing(from: old) == [ring.keyID])
        // A daemon that started under the old key after the rotation began keeps the old id listed.
        let started = try await registry.now()
        try await registry.registerWriter(old)
        #expect(try await registry.retire(except: ring.keyID, unless: started).isEmpty)
        try await registry.registerWriter(ring)
        #expect(try await registry.retire(except: ring.keyID, unless: try await registry.now()) == [old.keyID])
        #expect(try await registry.missing(from: newOnly).isEmpty)
        await TestDatabase.drop(client, name)
    }
}
