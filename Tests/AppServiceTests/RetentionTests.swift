import AppService
import Foundation
import Postgres
import TestSupport
import Testing

@Suite("Retention of appservice transactions")
struct TransactionRetentionTests {
    @Test("committed txn ids older than the retention go with their log rows, in batches; newer ones stay; only resolved quarantine entries go")
    func prune() async throws {
        let harness = try await Harness.make()
        let client = harness.client
        for (txn, age) in [("old-1", 10), ("old-2", 9), ("old-3", 8), ("new", 0)] {
            _ = try await client.execute("""
                INSERT INTO sealbridge_appservice_transactions (txn_id, committed_at) VALUES (\(txn), \(Date().addingTimeInterval(-Double(age) * 86_400)))
                """)
            _ = try await client.execute("""
                INSERT INTO sealbridge_transaction_log (txn_id, events, ephemeral, to_device, to_device_dropped, device_lists_changed,
                    device_lists_left, otk_count_devices, fallback_devices) VALUES (\(txn), 1, 0, 0, 0, 0, 0, 0, 0)
                """)
        }
        for (txn, resolvedAge) in [("q-resolved-old", Optional(40)), ("q-resolved-new", Optional(1)), ("q-open", nil)] {
            _ = try await client.execute("""
                INSERT INTO sealbridge_quarantine (txn_id, sealed, error, attempts, quarantined_at, resolved_at)
                VALUES (\(txn), \([UInt8]([1])), 'e', 3, now() - interval '60 days',
                        \(resolvedAge.map { Date().addingTimeInterval(-Double($0) * 86_400) }))
                """)
        }
        let retention = TransactionRetention(client: client)
        let horizon = Date().addingTimeInterval(-7 * 86_400)
        #expect(try await retention.pruneTransactions(committedBefore: horizon, batch: 2) == 2)
        #expect(try await retention.pruneTransactions(committedBefore: horizon, batch: 2) == 1)
        #expect(try await retention.pruneTransactions(committedBefore: horizon, batch: 2) == 0)
        let ids = try await client.query("SELECT txn_id FROM sealbridge_appservice_transactions").map { try $0.decode(String.self, "txn_id") }
        #expect(ids == ["new"])
        let logged = try await client.query("SELECT txn_id FROM sealbridge_transaction_log").map { try $0.decode(String.self, "txn_id") }
        #expect(logged == ["new"])

        #expect(try await retention.pruneResolvedQuarantine(resolvedBefore: Date().addingTimeInterval(-30 * 86_400), batch: 10) == 1)
        let left = try await client.query("SELECT txn_id FROM sealbridge_quarantine ORDER BY txn_id").map { try $0.decode(String.self, "txn_id") }
        #expect(left == ["q-open", "q-resolved-new"])
        await harness.close()
    }
}
