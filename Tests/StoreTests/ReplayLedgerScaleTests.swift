import MatrixCrypto
import Postgres
@testable import Store
import TestSupport
import Testing

@Suite("The replay ledger on PostgreSQL at scale")
struct ReplayLedgerScaleTests {
    static let cipher = try! StoreCipher(secret: String(repeating: "l", count: 44))

    @Test("a transaction's lookup probes the index per key, never scans the ledger; entries written in one statement read back")
    func lookupIsIndexed() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher)
        // 10,000 entries of 100 sessions: the size at which a hash join over the whole ledger looked cheap to the planner.
        try await client.execute("""
            INSERT INTO sealbridge_megolm_replay (session_id, message_index, event_id)
            SELECT 'session-' || (n / 100), n % 100, '$e' || n FROM generate_series(0, 9999) AS n
            """)
        try await client.execute("ANALYZE sealbridge_megolm_replay")
        var changes = CryptoChanges()
        for index in 0..<100 { changes.replayEntries[ReplayLedger.Key(sessionID: "new \"quoted\" \\ session", messageIndex: UInt32(index))] = "$new\(index)" }
        try await store.save(changes)
        var keys = Set((0..<100).map { ReplayLedger.Key(sessionID: "session-\($0)", messageIndex: UInt32(($0 * 7) % 100)) })
        keys.insert(ReplayLedger.Key(sessionID: "new \"quoted\" \\ session", messageIndex: 42))
        keys.insert(ReplayLedger.Key(sessionID: "session-100", messageIndex: 1))  // not stored
        let query = PostgresCryptoStore.replayEntriesQuery(keys)
        let plan = try await client.query(PostgresQuery(unsafeSQL: "EXPLAIN " + query.sql, binds: query.binds))
            .map { try $0.decode(String.self, "QUERY PLAN") }.joined(separator: "\n")
        #expect(!plan.contains("Seq Scan on sealbridge_megolm_replay"), "\(plan)")
        #expect(plan.contains("Index"), "\(plan)")
        let found = try await store.replayEntries(keys)
        #expect(found.count == 101)
        #expect(found[ReplayLedger.Key(sessionID: "session-7", messageIndex: 49)] == "$e749")
        #expect(found[ReplayLedger.Key(sessionID: "new \"quoted\" \\ session", messageIndex: 42)] == "$new42")
        #expect(found[ReplayLedger.Key(sessionID: "session-100", messageIndex: 1)] == nil)
        await TestDatabase.drop(client, name)
    }
}
