import Foundation
import Logging
import MatrixModels
import Metrics
import Postgres
import Store

/// Transactions that fail for a reason retrying cannot fix, kept aside so the stream goes on.
///
/// Counts the failed attempts per txn id (in memory: a restart starts counting again). On the
/// ``threshold``-th failure the transaction is stored sealed, its txn id committed with it (the
/// homeserver's next retry is a duplicate), and it is answered 200; admins are told
/// (``onQuarantine``) and can list it and retry it after an upgrade (``retry(id:handler:logger:)``).
///
/// What is kept is the body of the first failed attempt: the homeserver rebuilds every retry from
/// event ids only, so the first body is the only one that still carries the to-device messages.
public actor TransactionQuarantine {
    /// One quarantined transaction, as listed and as told to the admins.
    public typealias Entry = PostgresQuarantineRows.Row

    let client: PostgresClient
    let sealing: any TransactionSealing
    public let threshold: Int
    /// Told of each quarantined transaction (the bot writes to the management room). Run in a task
    /// of its own, never awaited: the quarantine happens while the transaction holds the crypto lock,
    /// and telling the admins means sending (network, and the same lock for an encrypted room).
    let onQuarantine: @Sendable (Entry) async -> Void
    private var attempts: [String: (count: Int, firstBody: [UInt8], firstDigest: [UInt8])] = [:]
    let quarantined = Counter(label: "sealbridge_appservice_transactions_quarantined_total")

    public init(
        client: PostgresClient, sealing: any TransactionSealing, threshold: Int = 3, onQuarantine: @escaping @Sendable (Entry) async -> Void = { _ in }
    ) {
        self.client = client
        self.sealing = sealing
        self.threshold = max(1, threshold)
        self.onQuarantine = onQuarantine
    }

    public static func context(_ id: String) -> String { "quarantined transaction \(id)" }

    func succeeded(_ txnID: String) {
        attempts[txnID] = nil
    }

    /// Records a failed attempt; on the threshold-th, quarantines the transaction.
    ///
    /// - Returns: The quarantine id, or nil while the homeserver should still retry.
    func failed(txnID: String, body: [UInt8], digest: [UInt8], error: any Error, logger: Logger) async throws -> Int64? {
        var entry = attempts[txnID] ?? (0, body, digest)
        entry.count += 1
        attempts[txnID] = entry
        // Keep the memory bounded if many different transactions fail.
        if attempts.count > 1000, let oldest = attempts.keys.first(where: { $0 != txnID }) { attempts[oldest] = nil }
        let message = "\(error)".storableText(maxLength: 2000)
        logger.error("transaction failed", metadata: ["attempt": "\(entry.count)", "of": "\(threshold)", "error": "\(message)"])
        guard entry.count >= threshold else { return nil }
        let sealed = try sealing.seal(entry.firstBody, context: Self.context(txnID))
        let id = try await PostgresQuarantineRows.quarantine(
            txnID: txnID, digest: entry.firstDigest, sealed: sealed, error: message, attempts: entry.count, client: client)
        attempts[txnID] = nil
        quarantined.increment()
        logger.critical(
            "transaction quarantined after repeated failures; answered 200 so the stream goes on. Admins: `quarantine` lists it, `quarantine retry ID` runs it again",
            metadata: ["quarantine_id": "\(id)"])
        tell(Entry(id: id, txnID: txnID, error: message, attempts: entry.count, quarantinedAt: Date(), resolvedAt: nil))
        return id
    }

    /// Records a transaction answered 200 without processing because its body was over the limit:
    /// its txn id is committed (the homeserver moves on), the admins are told, and `quarantine` lists
    /// it. Its body is not kept (`quarantine retry` cannot run it).
    public func oversized(txnID: String, size: Int, limit: Int) async throws {
        let key = PostgresTransactionProcessor.storableID(txnID)
        let message = "body of \(size) bytes is over appservice.max_body_size (\(limit)); not processed and not kept"
        let sealed = try sealing.seal([], context: Self.context(key))
        let id = try await PostgresQuarantineRows.quarantine(txnID: key, digest: nil, sealed: sealed, error: message, attempts: 1, client: client)
        quarantined.increment()
        tell(Entry(id: id, txnID: key, error: message, attempts: 1, quarantinedAt: Date(), resolvedAt: nil))
    }

    /// Tells the admins after the caller is done (see ``onQuarantine``).
    private func tell(_ entry: Entry) {
        let onQuarantine = onQuarantine
        Task { await onQuarantine(entry) }
    }

    /// The most recent entries, newest first.
    public nonisolated func list(limit: Int = 20) async throws -> [Entry] {
        try await PostgresQuarantineRows.recent(limit: limit, client: client)
    }

    /// Runs a quarantined transaction again through `handler`, in one database transaction that also
    /// marks it resolved; the caller holds the crypto lock, as for any transaction.
    ///
    /// - Throws: What the handler throws (the entry stays unresolved), or ``QuarantineError``.
    public nonisolated func retry(id: Int64, handler: any TransactionHandler, logger: Logger) async throws {
        let afterCommit = try await client.withTransaction { connection -> AfterCommit in
            guard let row = try await PostgresQuarantineRows.bodyForRetry(id: id, on: connection) else {
                throw QuarantineError(message: "no quarantined transaction \(id)")
            }
            guard row.resolvedAt == nil else { throw QuarantineError(message: "transaction \(id) was already retried successfully") }
            let txnID = row.txnID
            let body = try sealing.open(row.sealed, context: Self.context(txnID))
            guard !body.isEmpty else { throw QuarantineError(message: "transaction \(id) was too large to keep; it cannot be run again") }
            let transaction: AppserviceTransaction
            do {
                transaction = try AppserviceTransaction.decode(body)
            } catch {
                throw QuarantineError(message: "transaction \(id) no longer decodes: \(error)")
            }
            let afterCommit = try await handler.handle(transaction, txnID: txnID, connection: connection, logger: logger)
            try await PostgresQuarantineRows.markRetried(id: id, on: connection)
            return afterCommit
        }
        await afterCommit.run()
    }
}

/// Why a quarantine command could not be done.
public struct QuarantineError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
