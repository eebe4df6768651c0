import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

@Suite("Retention of crypto state on PostgreSQL")
struct CryptoRetentionTests {
    static let cipher = try! StoreCipher(secret: String(repeating: "r", count: 44))

    @Test("Olm sessions beyond the newest few per remote key go once idle; the newest stay, whatever their age; other keys are untouched")
    func olmSessions() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher)
        let user = try UserID("@p:hs"), device = try DeviceID("D")
        let old = Date().addingTimeInterval(-10 * 86_400)
        var changes = CryptoChanges()
        // Eight sessions with key A (all old), two with key B (old): keep 3 per key.
        for index in 0..<8 {
            changes.olmSessions.append(StoredOlmSession(
                localUserID: user, localDeviceID: device, senderKey: "A", sessionID: "a\(index)", pickle: "p", lastUsed: old.addingTimeInterval(Double(index))))
        }
        for index in 0..<2 {
            changes.olmSessions.append(StoredOlmSession(
                localUserID: user, localDeviceID: device, senderKey: "B", sessionID: "b\(index)", pickle: "p", lastUsed: old))
        }
        // A ninth with key A, used just now: rank follows recency, so it is always kept.
        changes.olmSessions.append(StoredOlmSession(
            localUserID: user, localDeviceID: device, senderKey: "A", sessionID: "recent", pickle: "p", lastUsed: Date()))
        try await store.save(changes)

        // Batches: 2 then the rest.
        #expect(try await store.pruneOlmSessions(keep: 3, idleBefore: Date().addingTimeInterval(-86_400), batch: 2) == 2)
        #expect(try await store.pruneOlmSessions(keep: 3, idleBefore: Date().addingTimeInterval(-86_400), batch: 100) == 4)
        #expect(try await store.pruneOlmSessions(keep: 3, idleBefore: Date().addingTimeInterval(-86_400), batch: 100) == 0)
        #expect(try await store.olmSessions(localUserID: user, localDeviceID: device, senderKey: "A").map(\.sessionID) == ["recent", "a7", "a6"])
        #expect(try await store.olmSessions(localUserID: user, localDeviceID: device, senderKey: "B").count == 2)

        // Sessions ranked out but used within the idle window stay.
        var busy = CryptoChanges()
        for index in 0..<5 {
            busy.olmSessions.append(StoredOlmSession(
                localUserID: user, localDeviceID: device, senderKey: "C", sessionID: "c\(index)", pickle: "p", lastUsed: Date().addingTimeInterval(-Double(index))))
        }
        try await store.save(busy)
        // keep 1: A loses a7 and a6, B one of its two; C's four ranked out are all busy and stay.
        #expect(try await store.pruneOlmSessions(keep: 1, idleBefore: Date().addingTimeInterval(-86_400), batch: 100) == 3)
        #expect(try await store.olmSessions(localUserID: user, localDeviceID: device, senderKey: "C").count == 5)
        await TestDatabase.drop(client, name)
    }

    @Test("withheld notices and recovery records go after their retention; newer ones stay")
    func notices() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher)
        let room = try RoomID("!r"), alice = try UserID("@alice:hs"), bot = try UserID("@bot:hs")
        var changes = CryptoChanges()
        changes.withheldNotices = [
            WithheldNotice(roomID: room, sessionID: "old", code: "m.unverified", reason: nil, senderUserID: alice, senderKey: "K"),
            WithheldNotice(roomID: room, sessionID: "new", code: "m.unverified", reason: nil, senderUserID: alice, senderKey: "K"),
        ]
        changes.olmRecoveries = [
            OlmRecovery(localUserID: bot, remoteKey: "OLD", at: Date().addingTimeInterval(-30 * 86_400)),
            OlmRecovery(localUserID: bot, remoteKey: "NEW", at: Date()),
        ]
        try await store.save(changes)
        _ = try await client.execute("UPDATE sealbridge_withheld_sessions SET received_at = now() - interval '40 days' WHERE session_id = 'old'")
        let horizon = Date().addingTimeInterval(-30 * 86_400)
        #expect(try await store.pruneWithheldNotices(receivedBefore: horizon, batch: 100) == 1)
        #expect(try await store.withheldNotices(roomID: room, sessionID: "old").isEmpty)
        #expect(try await store.withheldNotices(roomID: room, sessionID: "new").count == 1)
        #expect(try await store.pruneOlmRecoveries(recoveredBefore: Date().addingTimeInterval(-7 * 86_400), batch: 100) == 1)
        #expect(try await store.lastOlmRecovery(localUserID: bot, remoteKey: "OLD") == nil)
        #expect(try await store.lastOlmRecovery(localUserID: bot, remoteKey: "NEW") != nil)
        await TestDatabase.drop(client, name)
    }

    @Test("retired outbound sessions go with their share records after their retention; the current session and newer retirees stay")
    func retiredSessions() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher)
        let room = try RoomID("!r"), bot = try UserID("@bot:hs"), device = try DeviceID("B")
        let alice = DeviceRef(userID: try UserID("@alice:hs"), deviceID: try DeviceID("A"))
        for id in ["S1", "S2", "S3"] {
            var changes = CryptoChanges()
            changes.outboundGroupSessions = [StoredOutboundGroupSession(
                roomID: room, senderUserID: bot, senderDeviceID: device, sessionID: id, pickle: "p-\(id)", createdAt: Date())]
            changes.outboundShares = [OutboundShare(
                roomID: room, senderUserID: bot, sessionID: id, userID: alice.userID, deviceID: alice.deviceID, curve25519: "C", messageIndex: 0,
                withheldCode: nil)]
            try await store.save(changes)
        }
        _ = try await client.execute("UPDATE sealbridge_retired_outbound_sessions SET retired_at = now() - interval '10 days' WHERE session_id = 'S1'")
        #expect(try await store.pruneRetiredOutboundSessions(retiredBefore: Date().addingTimeInterval(-7 * 86_400), batch: 100) == 1)
        #expect(try await store.sharedRoomKey(sessionID: "S1", recipient: alice) == nil)
        #expect(try await store.sharedRoomKey(sessionID: "S2", recipient: alice)?.share != nil)
        #expect(try await store.sharedRoomKey(sessionID: "S3", recipient: alice)?.share != nil)
        #expect(try await client.query("SELECT 1 FROM sealbridge_retired_outbound_shares WHERE session_id = 'S1'").isEmpty)
        await TestDatabase.drop(client, name)
    }

    @Test("pruning is fenced: an instance that lost the epoch deletes nothing")
    func fenced() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let mine = InstanceFence()
        _ = try await mine.takeOver(client: client, holder: "first")
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher, fence: mine)
        var changes = CryptoChanges()
        changes.olmRecoveries = [OlmRecovery(localUserID: try UserID("@bot:hs"), remoteKey: "OLD", at: Date().addingTimeInterval(-30 * 86_400))]
        try await store.save(changes)
        let other = InstanceFence()
        _ = try await other.takeOver(client: client, holder: "second")
        await #expect(throws: PostgresError.self) { try await store.pruneOlmRecoveries(recoveredBefore: Date(), batch: 100) }
        let left = try await client.query("SELECT count(*) AS n FROM sealbridge_olm_recoveries").first!.decode(Int.self, "n")
        #expect(left == 1)
        await TestDatabase.drop(client, name)
    }
}
