import AppService
import Foundation
import Postgres
import Store

/// What the database holds per ingested event, and what is left after a simulated week with the
/// housekeeping service's pruning (issue 13: bounded storage).
///
/// Runs right after an ingest row on the same database: measures the tables that grow per event, then
/// ages every row by eight days (as if a week had passed), has the consumer acknowledge the outbox, runs
/// the same prune calls the housekeeping service makes until they come back empty, and measures again
/// after `VACUUM FULL` (the size a long-running database settles at, space being reused).
struct StorageWorkload {
    let events: Int

    static let tables = [
        "sealbridge_megolm_replay", "sealbridge_megolm_replay_floors", "sealbridge_outbox", "sealbridge_appservice_transactions",
        "sealbridge_transaction_log", "sealbridge_inbound_group_sessions",
    ]

    func run(client: PostgresClient, store: PostgresCryptoStore) async throws -> [BenchResult] {
        try await client.execute("VACUUM FULL")
        let before = try await Self.bytes(client), databaseBefore = try await Self.databaseBytes(client)
        let start = Measure.now()
        try await client.execute("UPDATE sealbridge_megolm_replay SET seen_at = seen_at - interval '8 days'")
        try await client.execute("UPDATE sealbridge_appservice_transactions SET committed_at = committed_at - interval '8 days'")
        try await client.execute("DELETE FROM sealbridge_outbox")  // acknowledged by the consumer
        let horizon = Date().addingTimeInterval(-7 * 86_400), retention = TransactionRetention(client: client)
        var pruned = 0
        while case let n = try await store.pruneReplayLedger(seenBefore: horizon, batch: 1_000), n > 0 { pruned += n }
        while case let n = try await retention.pruneTransactions(committedBefore: horizon, batch: 1_000), n > 0 { pruned += n }
        let pruneSeconds = Measure.now() - start
        try await client.execute("VACUUM FULL")
        let after = try await Self.bytes(client), databaseAfter = try await Self.databaseBytes(client)
        let perEvent = Double(before) / Double(events)
        return [
            BenchResult(
                workload: "database size per ingested event (growing tables)", store: "postgresql", operations: events, unit: "events",
                wallSeconds: 0, cpuSeconds: 0, throughputPerSecond: perEvent, p50Milliseconds: 0, p99Milliseconds: 0, peakRSSMiB: Measure.peakRSSMiB(),
                ceilingPerSecond: nil,
                notes: "rate column = bytes per event after VACUUM FULL: \(before) bytes for \(events) events (1,000,000 events ≈ \(Int(perEvent * 1_000_000 / 1_048_576)) MiB) without housekeeping; whole database \(databaseBefore / 1_048_576) MiB"),
            BenchResult(
                workload: "database size after a simulated week with housekeeping", store: "postgresql", operations: pruned, unit: "rows pruned",
                wallSeconds: pruneSeconds, cpuSeconds: 0, throughputPerSecond: Double(after), p50Milliseconds: 0, p99Milliseconds: 0,
                peakRSSMiB: Measure.peakRSSMiB(), ceilingPerSecond: nil,
                notes: "rate column = bytes left in the growing tables (replay floors, inbound sessions) after pruning and VACUUM FULL; whole database \(databaseAfter / 1_048_576) MiB"),
        ]
    }

    /// Everything the database holds, catalogs included (what the operator's disk sees).
    static func databaseBytes(_ client: PostgresClient) async throws -> Int {
        try await client.query("SELECT pg_database_size(current_database())::bigint AS n").first?.decode(Int.self, "n") ?? 0
    }

    static func bytes(_ client: PostgresClient) async throws -> Int {
        try await client.query("""
            SELECT sum(pg_total_relation_size(c.oid))::bigint AS n FROM pg_class c
            WHERE c.relname = ANY(ARRAY(SELECT jsonb_array_elements_text(\(PostgresJSONB("[" + tables.map { "\"\($0)\"" }.joined(separator: ",") + "]")))))
            """).first?.decode(Int.self, "n") ?? 0
    }
}
