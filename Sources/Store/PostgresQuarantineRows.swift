import Foundation
import Postgres

/// The appservice's quarantine (`sealbridge_quarantine`, appservice migrations): transactions set
/// aside sealed, with their txn ids committed. SQL only: when to quarantine, sealing and retrying
/// stay in `AppService.TransactionQuarantine`.
public enum PostgresQuarantineRows {
    /// One quarantined transaction as listed (without its body).
    public struct Row: Sendable, Equatable {
        public var id: Int64
        public var txnID: String
        public var error: String
        public var attempts: Int
        public var quarantinedAt: Date
        public var resolvedAt: Date?

        public init(id: Int64, txnID: String, error: String, attempts: Int, quarantinedAt: Date, resolvedAt: Date?) {
            self.id = id
            self.txnID = txnID
            self.error = error
            self.attempts = attempts
            self.quarantinedAt = quarantinedAt
            self.resolvedAt = resolvedAt
        }
    }

    /// A quarantined transaction's sealed body, read for a retry.
    public struct Body: Sendable {
        public var txnID: String
        public var sealed: [UInt8]
        public var resolvedAt: Date?
    }

    /// Commits `txnID` (digest nil: no body kept) and stores the sealed transaction, in one
    /// database transaction: the homeserver's next retry of it is a duplicate.
    /// - Returns: The quarantine id.
    public static func quarantine(
        txnID: String, digest: [UInt8]?, sealed: [UInt8], error: String, attempts: Int, client: PostgresClient
    ) async throws -> Int64 {
        try await client.withTransaction { connection -> Int64 in
            _ = try await PostgresTransactionRows.claim(txnID, digest: digest, on: connection)
            return try await connection.query("""
                INSERT INTO sealbridge_quarantine (txn_id, sealed, error, attempts) VALUES (\(txnID), \(sealed), \(error), \(attempts))
                RETURNING id
                """).first!.decode(Int64.self, "id")
        }
    }

    /// The most recent entries, newest first.
    public static func recent(limit: Int, client: PostgresClient) async throws -> [Row] {
        try await client.query("""
            SELECT id, txn_id, error, attempts, quarantined_at, resolved_at FROM sealbridge_quarantine ORDER BY id DESC LIMIT \(limit)
            """).map { row in
            Row(
                id: try row.decode(Int64.self, "id"), txnID: try row.decode(String.self, "txn_id"), error: try row.decode(String.self, "error"),
                attempts: try row.decode(Int.self, "attempts"), quarantinedAt: try row.decode(Date.self, "quarantined_at"),
                resolvedAt: try row.decode(Date?.self, "resolved_at"))
        }
    }

    /// Entry `id`'s body, locked on `connection` until its transaction ends (one retry at a time).
    public static func bodyForRetry(id: Int64, on connection: PostgresConnection) async throws -> Body? {
        guard let row = try await connection.query("SELECT txn_id, sealed, resolved_at FROM sealbridge_quarantine WHERE id = \(id) FOR UPDATE").first
        else { return nil }
        return Body(
            txnID: try row.decode(String.self, "txn_id"), sealed: try row.decode([UInt8].self, "sealed"),
            resolvedAt: try row.decode(Date?.self, "resolved_at"))
    }

    /// Marks entry `id` resolved by a retry, on the retry's connection.
    public static func markRetried(id: Int64, on connection: PostgresConnection) async throws {
        try await connection.execute("UPDATE sealbridge_quarantine SET resolved_at = now(), retried_at = now() WHERE id = \(id)")
    }

    /// Deletes up to `batch` entries resolved before `before`; unresolved ones are never deleted.
    /// - Returns: How many were deleted.
    public static func pruneResolved(before: Date, batch: Int, client: PostgresClient) async throws -> Int {
        try await client.execute("""
            DELETE FROM sealbridge_quarantine WHERE id IN (
                SELECT id FROM sealbridge_quarantine WHERE resolved_at < \(before) ORDER BY id LIMIT \(batch))
            """)
    }
}
