import Foundation
import MatrixCrypto
import MatrixModels
import Olm
import Postgres
import Store
import TestSupport
import Testing

@Suite("Retention of the Megolm replay ledger on PostgreSQL")
struct ReplayRetentionTests {
    static let cipher = try! StoreCipher(secret: String(repeating: "q", count: 44))

    /// Decrypts `ciphertext` as event `eventID` with the ledger as the store reports it for that index.
    static func decrypt(
        _ ciphertext: String, eventID: String, session: (id: String, key: String), store: PostgresCryptoStore, room: RoomID
    ) async throws -> Result<MegolmDecryption.Decrypted, DecryptionFailure> {
        let envelope = try MegolmDecryption.Envelope(content: [
            "algorithm": .string(EncryptionAlgorithm.megolm), "session_id": .string(session.id), "ciphertext": .string(ciphertext),
        ])
        let index = try #require(MegolmDecryption.messageIndex(of: ciphertext))
        var ledger = ReplayLedger(entries: try await store.replayEntries([ReplayLedger.Key(sessionID: session.id, messageIndex: index)]))
        let inbound = try InboundGroupSession(sessionKey: session.key)
        let result = Result { () throws(DecryptionFailure) in
            try MegolmDecryption.decrypt(envelope, eventID: try! EventID(eventID), roomID: room, session: inbound, ledger: &ledger)
        }
        var changes = CryptoChanges()
        changes.replayEntries = ledger.added
        try await store.save(changes)
        return result
    }

    @Test("old entries go and leave a floor: a replay of a pruned index is refused, newer and unseen higher indices still decrypt, the floor never drops")
    func prunedReplayStillRefused() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher)
        let room = try RoomID("!r:hs"), outbound = try OutboundGroupSession.create()
        let session = (id: outbound.sessionID, key: outbound.sessionKey)
        let payload: JSONValue = ["type": "m.room.message", "room_id": .string(room.rawValue), "content": ["body": "hi"]]
        let messages = try (0..<6).map { _ in try outbound.encrypt(payload.serialized()) }
        // Indices 0–3 seen long ago, 4 seen now; 5 not seen yet.
        for index in 0..<5 {
            let result = try await Self.decrypt(messages[index], eventID: "$e\(index)", session: session, store: store, room: room)
            guard case .success = result else { Issue.record("index \(index) did not decrypt: \(result)"); return }
        }
        try await client.execute("UPDATE sealbridge_megolm_replay SET seen_at = now() - interval '30 days' WHERE message_index < 4")
        let horizon = Date().addingTimeInterval(-7 * 86_400)
        #expect(try await store.pruneReplayLedger(seenBefore: horizon, batch: 3) == 3)
        #expect(try await store.pruneReplayLedger(seenBefore: horizon, batch: 100) == 1)
        #expect(try await store.pruneReplayLedger(seenBefore: horizon, batch: 100) == 0)
        #expect(try await client.query("SELECT count(*) AS n FROM sealbridge_megolm_replay").first?.decode(Int.self, "n") == 1)

        // A replay of a pruned index (another event id) is refused as a replay, not decrypted.
        let replayed = try await Self.decrypt(messages[2], eventID: "$attacker", session: session, store: store, room: room)
        guard case .failure(.replay(_, 2, _)) = replayed else { Issue.record("pruned index 2 replayed: \(replayed)"); return }
        // The kept entry still tells a replay from the same event again.
        guard case .success = try await Self.decrypt(messages[4], eventID: "$e4", session: session, store: store, room: room) else {
            Issue.record("the same event again is not a replay"); return
        }
        guard case .failure(.replay(_, 4, "$e4")) = try await Self.decrypt(messages[4], eventID: "$other", session: session, store: store, room: room) else {
            Issue.record("a replay of a kept index was not refused"); return
        }
        // An index never seen, above the floor, decrypts.
        guard case .success = try await Self.decrypt(messages[5], eventID: "$e5", session: session, store: store, room: room) else {
            Issue.record("a new index did not decrypt"); return
        }
        // Pruning later entries with lower indices never lowers the floor.
        try await client.execute("""
            INSERT INTO sealbridge_megolm_replay (session_id, message_index, event_id, seen_at)
            VALUES (\(session.id), 1, '$late', now() - interval '30 days')
            """)
        #expect(try await store.pruneReplayLedger(seenBefore: horizon, batch: 100) == 1)
        #expect(try await client.query("SELECT below FROM sealbridge_megolm_replay_floors WHERE session_id = \(session.id)")
            .first?.decode(Int.self, "below") == 4)
        await TestDatabase.drop(client, name)
    }
}
