@testable import Bridge
import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

@Suite("Outbox and send records on PostgreSQL")
struct OutboxTests {
    static func delivery(_ event: String, body: String) throws -> Delivery {
        Delivery(
            roomID: try RoomID("!r:hs"), eventID: try EventID(event),
            json: ["event_id": .string(event), "room_id": "!r:hs", "content": ["body": .string(body)]], late: false)
    }

    @Test("queued in the caller's transaction, sealed at rest, read in order, once per event, until acknowledged")
    func queue() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(BridgeMigrations.all, on: client)
        let cipher = try StoreCipher(secret: String(repeating: "p", count: 40))
        let outbox = Outbox(client: client, cipher: cipher)

        // A rolled-back transaction queues nothing.
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await client.withTransaction { connection in
                try await outbox.append([try Self.delivery("$lost", body: "never")], on: connection)
                throw Abort()
            }
        }
        try await client.withTransaction { connection in
            try await outbox.append([try Self.delivery("$a", body: "secret one"), try Self.delivery("$b", body: "secret two")], on: connection)
        }
        // A homeserver retry of the same events does not queue them again.
        try await client.withTransaction { connection in
            try await outbox.append(
                [try Self.delivery("$b", body: "secret two"), try Self.delivery("$c", body: "three"), try Self.delivery("$c", body: "three")],
                on: connection)
        }
        let all = try await outbox.entries(after: 0, limit: 10)
        #expect(all.map { $0.event["event_id"]?.stringValue } == ["$a", "$b", "$c"])
        #expect(all[0].event["content"]?["body"] == "secret one")
        let leaked = try await client.query("""
            SELECT count(*) AS n FROM sealbridge_outbox WHERE position('secret' in encode(sealed, 'escape')) > 0
            """).first!.decode(Int.self, "n")
        #expect(leaked == 0)

        // Another pickle key cannot read the rows.
        let stranger = Outbox(client: client, cipher: try StoreCipher(secret: String(repeating: "q", count: 40)))
        await #expect(throws: CryptoError.self) { _ = try await stranger.entries(after: 0, limit: 10) }

        // Acknowledging through the first entry leaves the rest; a long-poll with nothing new times out empty.
        try await outbox.acknowledge(through: all[0].id)
        #expect(try await outbox.entries(after: 0, limit: 10).map(\.id) == [all[1].id, all[2].id])
        #expect(try await outbox.next(after: all[2].id, limit: 10, timeout: .milliseconds(100)).isEmpty)
        await TestDatabase.drop(client, name)
    }

    @Test("a transaction's many deliveries keep the order they were given (ids drawn in it), whatever their event ids sort as; late copies stay apart")
    func manyInOneStatement() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(BridgeMigrations.all, on: client)
        let outbox = Outbox(client: client, cipher: try StoreCipher(secret: String(repeating: "p", count: 40)))
        // Event ids that sort against the delivery order, and one event delivered again as late.
        let given = try (0..<300).map { try Self.delivery("$\(String(format: "%03d", 299 - $0))z", body: "m\($0)") }
        var late = try Self.delivery("$150z", body: "again")
        late.late = true
        try await client.withTransaction { connection in try await outbox.append(given + [late], on: connection) }
        let entries = try await outbox.entries(after: 0, limit: 1_000)
        #expect(entries.map { $0.event["event_id"]?.stringValue } == (given + [late]).map(\.eventID.rawValue))
        #expect(entries.map { $0.event["content"]?["body"]?.stringValue } == (0..<300).map { "m\($0)" } + ["again"])
        #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.id < $1.id })
        await TestDatabase.drop(client, name)
    }

    @Test("a long-poll acknowledges only what it handed out: a wrong since deletes nothing unseen")
    func pollAcknowledges() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(BridgeMigrations.all, on: client)
        let outbox = Outbox(client: client, cipher: try StoreCipher(secret: String(repeating: "p", count: 40)))
        try await client.withTransaction { connection in
            try await outbox.append([try Self.delivery("$1", body: "a"), try Self.delivery("$2", body: "b")], on: connection)
        }
        // A consumer with a made-up cursor (or one from before a restart) gets everything, loses nothing.
        let first = try await outbox.poll(since: 1_000_000, limit: 1, timeout: .zero)
        #expect(first.entries.map { $0.event["event_id"]?.stringValue } == ["$1"] && first.acknowledged == 0)
        #expect(first.entries[0].delivery["delivery_id"] == .string(String(first.entries[0].id)))
        // Passing the cursor it was given acknowledges exactly that.
        let second = try await outbox.poll(since: first.entries[0].id, limit: 10, timeout: .zero)
        #expect(second.entries.map { $0.event["event_id"]?.stringValue } == ["$2"] && second.acknowledged == first.entries[0].id)
        #expect(try await outbox.entries(after: 0, limit: 10).map { $0.event["event_id"]?.stringValue } == ["$2"])
        await TestDatabase.drop(client, name)
    }

    @Test("an acknowledgement counts across a restart: what the consumer acknowledged never comes again, the rest comes again")
    func acknowledgedAcrossRestart() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(BridgeMigrations.all, on: client)
        let cipher = try StoreCipher(secret: String(repeating: "p", count: 40))
        let before = Outbox(client: client, cipher: cipher)
        try await client.withTransaction { connection in
            try await before.append(
                [try Self.delivery("$1", body: "a"), try Self.delivery("$2", body: "b"), try Self.delivery("$3", body: "c")], on: connection)
        }
        let first = try await before.poll(since: 0, limit: 2, timeout: .zero)
        #expect(first.entries.map { $0.event["event_id"]?.stringValue } == ["$1", "$2"])
        // A new process (fresh signal, nothing handed out in memory): the consumer's cursor still counts.
        let after = Outbox(client: client, cipher: cipher)
        let second = try await after.poll(since: first.entries[1].id, limit: 10, timeout: .zero)
        #expect(second.acknowledged == first.entries[1].id)
        #expect(second.entries.map { $0.event["event_id"]?.stringValue } == ["$3"])
        // A cursor beyond anything ever handed out still deletes nothing unseen.
        let third = Outbox(client: client, cipher: cipher)
        let bogus = try await third.poll(since: 1_000_000, limit: 10, timeout: .zero)
        #expect(bogus.acknowledged == second.entries[0].id)
        #expect(bogus.entries.isEmpty)
        await TestDatabase.drop(client, name)
    }

    @Test("a long-poll wakes when a delivery is committed")
    func wakes() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(BridgeMigrations.all, on: client)
        let outbox = Outbox(client: client, cipher: try StoreCipher(secret: String(repeating: "p", count: 40)))
        let clock = ContinuousClock(), started = clock.now
        async let polled = outbox.next(after: 0, limit: 10, timeout: .seconds(20))
        try await Task.sleep(for: .milliseconds(200))
        try await client.withTransaction { connection in
            try await outbox.append([try Self.delivery("$late", body: "x")], on: connection)
        }
        await outbox.signal.notify()
        let got = try await polled
        #expect(got.map { $0.event["event_id"]?.stringValue } == ["$late"])
        #expect(clock.now - started < .seconds(10), "the long-poll waited for its timeout instead of waking")
        await TestDatabase.drop(client, name)
    }

    @Test("send records older than a day are forgotten, newer ones kept")
    func housekeeping() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(BridgeMigrations.all, on: client)
        try await client.execute("""
            INSERT INTO sealbridge_bridge_sends (sender, txn_id, event_id, sent_at)
            VALUES ('@bot:hs', 'old', '$1', now() - interval '25 hours'), ('@bot:hs', 'new', '$2', now())
            """)
        let retention = BridgeSendRetention(sends: PostgresBridgeSendLedger(client: client))
        #expect(try await retention.prune(sentBefore: Date().addingTimeInterval(-86_400), batch: 100) == 1)
        #expect(try await client.query("SELECT txn_id FROM sealbridge_bridge_sends").map { try $0.decode(String.self, "txn_id") } == ["new"])
        await TestDatabase.drop(client, name)
    }
}

@Suite("Bridge API send records on PostgreSQL")
struct BridgeSendLedgerTests {
    @Test("a send is claimed once: a second claim waits for the first, sees its event id when done, and takes over a stale claim")
    func claims() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(BridgeMigrations.all, on: client)
        let ledger = PostgresBridgeSendLedger(client: client)
        let key = BridgeSendKey(sender: try UserID("@bot:hs"), txnID: "t1")
        #expect(try await ledger.claim(key, staleAfter: .seconds(300)))
        #expect(try await !ledger.claim(key, staleAfter: .seconds(300)))  // in progress
        #expect(try await ledger.eventID(of: key) == nil)
        // A claim its sender failed to use is freed; the next caller gets it.
        try await ledger.release(key)
        #expect(try await ledger.claim(key, staleAfter: .seconds(300)))
        try await ledger.finish(key, eventID: try EventID("$sent"))
        #expect(try await ledger.eventID(of: key) == EventID("$sent"))
        // A finished send is never claimed again, however old.
        #expect(try await !ledger.claim(key, staleAfter: .seconds(0)))
        // A claim left by a crashed attempt is taken over once stale, not before.
        let crashed = BridgeSendKey(sender: try UserID("@bot:hs"), txnID: "t2")
        #expect(try await ledger.claim(crashed, staleAfter: .seconds(300)))
        try await client.execute("UPDATE sealbridge_bridge_sends SET claimed_at = now() - interval '10 minutes' WHERE txn_id = 't2'")
        #expect(try await !ledger.claim(crashed, staleAfter: .seconds(3600)))
        #expect(try await ledger.claim(crashed, staleAfter: .seconds(300)))
        await TestDatabase.drop(client, name)
    }
}

@Suite("Housekeeping rounds")
struct HousekeepingServiceTests {
    final class Table: @unchecked Sendable {
        // Only touched from the service's sequential round in this test.
        var rows: Int
        var calls = 0
        init(_ rows: Int) { self.rows = rows }
        func prune(_ batch: Int) -> Int {
            calls += 1
            let deleted = min(batch, rows)
            rows -= deleted
            return deleted
        }
    }

    @Test("each task runs in batches until one comes back short, at most maxBatches per round; a failing task does not stop the others")
    func rounds() async throws {
        let big = Table(25), small = Table(3)
        struct Broken: Error {}
        let service = HousekeepingService(
            tasks: [
                HousekeepingTask(table: "big") { big.prune($0) },
                HousekeepingTask(table: "broken") { _ in throw Broken() },
                HousekeepingTask(table: "small") { small.prune($0) },
            ],
            batch: 10, maxBatches: 2, pause: .zero, logger: Logger(label: "test"))
        let first = await service.round()
        #expect(first["big"] == 20 && first["small"] == 3 && first["broken"] == 0)
        #expect(big.rows == 5 && small.rows == 0 && small.calls == 1)
        let second = await service.round()
        #expect(second["big"] == 5 && big.rows == 0)
    }
}
