import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

/// One set of expectations, run against every ``CryptoStore`` implementation.
enum CryptoStoreConformance {
    static func run(_ store: any CryptoStore) async throws {
        let bot = try UserID("@bot:localhost"), device = try DeviceID("BOT1"), room = try RoomID("!room")
        let alice = try UserID("@alice:localhost")

        // Empty store.
        #expect(try await store.account(userID: bot) == nil)
        #expect(try await store.olmSessions(localUserID: bot, localDeviceID: device, senderKey: "K").isEmpty)
        #expect(try await store.inboundGroupSession(roomID: room, sessionID: "S") == nil)
        #expect(try await store.replayEntries([ReplayLedger.Key(sessionID: "S", messageIndex: 5)]).isEmpty)

        // One batch with one of everything.
        var changes = CryptoChanges()
        changes.accounts = [StoredAccount(userID: bot, deviceID: device, pickle: "account-v1", deviceKeysUploaded: false)]
        let older = Date(timeIntervalSince1970: 1_800_000_000), newer = older.addingTimeInterval(60)
        changes.olmSessions = [
            StoredOlmSession(localUserID: bot, localDeviceID: device, senderKey: "K", sessionID: "o1", pickle: "olm-1", lastUsed: older),
            StoredOlmSession(localUserID: bot, localDeviceID: device, senderKey: "K", sessionID: "o2", pickle: "olm-2", lastUsed: newer),
            StoredOlmSession(localUserID: bot, localDeviceID: device, senderKey: "OTHER", sessionID: "o3", pickle: "olm-3", lastUsed: newer),
        ]
        changes.inboundGroupSessions = [
            StoredInboundGroupSession(roomID: room, sessionID: "S", senderKey: "K", senderUserID: alice, firstKnownIndex: 5, pickle: "igs-from-5"),
        ]
        changes.replayEntries = [ReplayLedger.Key(sessionID: "S", messageIndex: 5): "$e5"]
        try await store.save(changes)

        #expect(try await store.account(userID: bot) == changes.accounts[0])
        let sessions = try await store.olmSessions(localUserID: bot, localDeviceID: device, senderKey: "K")
        #expect(sessions.map(\.sessionID) == ["o2", "o1"])  // most recently used first
        #expect(try await store.inboundGroupSession(roomID: room, sessionID: "S")?.pickle == "igs-from-5")
        #expect(try await store.replayEntries([ReplayLedger.Key(sessionID: "S", messageIndex: 5), ReplayLedger.Key(sessionID: "S", messageIndex: 6)])
            == [ReplayLedger.Key(sessionID: "S", messageIndex: 5): "$e5"])

        // Updates: account and Olm session replaced; an inbound session known from an earlier index
        // replaces the later copy, a later copy never replaces an earlier one; replay entries never change.
        var update = CryptoChanges()
        update.accounts = [StoredAccount(userID: bot, deviceID: device, pickle: "account-v2", deviceKeysUploaded: true)]
        update.olmSessions = [StoredOlmSession(localUserID: bot, localDeviceID: device, senderKey: "K", sessionID: "o1", pickle: "olm-1b", lastUsed: newer.addingTimeInterval(1))]
        update.inboundGroupSessions = [StoredInboundGroupSession(roomID: room, sessionID: "S", senderKey: "K", senderUserID: alice, firstKnownIndex: 2, pickle: "igs-from-2")]
        update.replayEntries = [ReplayLedger.Key(sessionID: "S", messageIndex: 5): "$attacker"]
        try await store.save(update)
        #expect(try await store.account(userID: bot)?.pickle == "account-v2")
        #expect(try await store.account(userID: bot)?.deviceKeysUploaded == true)
        #expect(try await store.olmSessions(localUserID: bot, localDeviceID: device, senderKey: "K").map(\.sessionID) == ["o1", "o2"])
        #expect(try await store.olmSessions(localUserID: bot, localDeviceID: device, senderKey: "K").first?.pickle == "olm-1b")
        #expect(try await store.inboundGroupSession(roomID: room, sessionID: "S")?.firstKnownIndex == 2)
        #expect(try await store.replayEntries([ReplayLedger.Key(sessionID: "S", messageIndex: 5)])[ReplayLedger.Key(sessionID: "S", messageIndex: 5)] == "$e5")

        var later = CryptoChanges()
        later.inboundGroupSessions = [StoredInboundGroupSession(roomID: room, sessionID: "S", senderKey: "K", senderUserID: alice, firstKnownIndex: 9, pickle: "igs-from-9")]
        try await store.save(later)
        #expect(try await store.inboundGroupSession(roomID: room, sessionID: "S")?.pickle == "igs-from-2")
        // The same session id in another room is another session.
        #expect(try await store.inboundGroupSession(roomID: try RoomID("!elsewhere"), sessionID: "S") == nil)

        // Parked events: kept once per event id, found by session, removed when released.
        let event: JSONValue = ["type": "m.room.encrypted", "event_id": "$p1", "room_id": "!room", "sender": "@alice:localhost",
                                "content": ["algorithm": "m.megolm.v1.aes-sha2", "session_id": "WAIT", "ciphertext": "AwgA"]]
        var park = CryptoChanges()
        park.parkedEvents = [ParkedEvent(event: event, sessionID: "WAIT", roomID: room), ParkedEvent(event: event, sessionID: "WAIT", roomID: room)]
        try await store.save(park)
        #expect(try await store.parkedEvents(sessionIDs: ["WAIT"]) == [ParkedEvent(event: event, sessionID: "WAIT", roomID: room)])
        #expect(try await store.parkedEvents(sessionIDs: ["OTHER"]).isEmpty)
        var release = CryptoChanges()
        release.releasedEvents = ["$p1"]
        try await store.save(release)
        #expect(try await store.parkedEvents(sessionIDs: ["WAIT"]).isEmpty)
    }
}

@Suite("Crypto store conformance")
struct CryptoStoreConformanceTests {
    @Test("the memory store")
    func memory() async throws {
        try await CryptoStoreConformance.run(MemoryCryptoStore())
    }

    @Test("the PostgreSQL store")
    func postgres() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        try await CryptoStoreConformance.run(PostgresCryptoStore(client: client))
        await TestDatabase.drop(client, name)
    }

    @Test("PostgreSQL: changes saved inside a transaction that rolls back leave nothing")
    func rollback() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client)
        var changes = CryptoChanges()
        changes.accounts = [StoredAccount(userID: try UserID("@bot:localhost"), deviceID: try DeviceID("D"), pickle: "p", deviceKeysUploaded: false)]
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await client.withTransaction { connection in
                try await store.save(changes, on: connection)
                throw Abort()
            }
        }
        #expect(try await store.account(userID: try UserID("@bot:localhost")) == nil)
        await TestDatabase.drop(client, name)
    }
}
