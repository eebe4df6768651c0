import Foundation
import Postgres
import Store

/// Forgets what the appservice kept of old transactions, in small batches: committed txn ids (with
/// their log rows and body digests) and quarantine entries that were resolved.
///
/// A txn id only guards against the homeserver sending the same transaction twice; Synapse retries a
/// transaction until it is answered 200 and never sends an answered one again, so ids older than the
/// retention (default 7 days) have done their job. Unresolved quarantine entries are never pruned: an
/// operator still has to look at them.
public struct TransactionRetention: Sendable {
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Deletes up to `batch` transactions committed before `before` (their log rows go with them).
    /// - Returns: How many were deleted.
    public func pruneTransactions(committedBefore before: Date, batch: Int) async throws -> Int {
        try await PostgresTransactionRows.pruneCommitted(before: before, batch: batch, client: client)
    }

    /// Deletes up to `batch` quarantine entries resolved before `before`.
    public func pruneResolvedQuarantine(resolvedBefore before: Date, batch: Int) async throws -> Int {
        try await PostgresQuarantineRows.pruneResolved(before: before, batch: batch, client: client)
    }
}
