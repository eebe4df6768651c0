import Foundation
import MatrixModels
import Postgres

/// ``BridgeSendLedger`` in `sealbridge_bridge_sends` (bridge migration 20).
public struct PostgresBridgeSendLedger: BridgeSendLedger {
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// One statement: the insert wins, or takes over a stale claim, or changes nothing — two callers
    /// racing for the same key cannot both get true.
    public func claim(_ key: BridgeSendKey, staleAfter: Duration) async throws -> Bool {
        try await client.execute("""
            INSERT INTO sealbridge_bridge_sends (sender, txn_id, event_id) VALUES (\(key.sender.rawValue), \(key.txnID), NULL)
            ON CONFLICT (sender, txn_id) DO UPDATE SET claimed_at = now()
            WHERE sealbridge_bridge_sends.event_id IS NULL
              AND sealbridge_bridge_sends.claimed_at < now() - make_interval(secs => \(Int(staleAfter.components.seconds)))
            """) > 0
    }

    public func eventID(of key: BridgeSendKey) async throws -> EventID? {
        let row = try await client.query("""
            SELECT event_id FROM sealbridge_bridge_sends WHERE sender = \(key.sender.rawValue) AND txn_id = \(key.txnID)
            """).first
        return try row?.decode(String?.self, "event_id").map { try EventID($0) }
    }

    public func release(_ key: BridgeSendKey) async throws {
        try await client.execute("""
            DELETE FROM sealbridge_bridge_sends WHERE sender = \(key.sender.rawValue) AND txn_id = \(key.txnID) AND event_id IS NULL
            """)
    }

    public func finish(_ key: BridgeSendKey, eventID: EventID) async throws {
        try await client.execute("""
            UPDATE sealbridge_bridge_sends SET event_id = \(eventID.rawValue), sent_at = now()
            WHERE sender = \(key.sender.rawValue) AND txn_id = \(key.txnID)
            """)
    }

    public func prune(sentBefore before: Date, batch: Int) async throws -> Int {
        try await client.execute("""
            DELETE FROM sealbridge_bridge_sends WHERE ctid IN (
                SELECT ctid FROM sealbridge_bridge_sends WHERE sent_at < \(before) LIMIT \(batch))
            """)
    }
}
