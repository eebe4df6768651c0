import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store

/// The durable queue of deliveries to the bridge logic, in PostgreSQL.
///
/// Rows are written inside the appservice transaction's database transaction, so an event is queued
/// exactly when its transaction commits: never lost on a crash, never queued twice on a retry
/// (`(event_id, late)` is unique: an event surfaced as undecryptable is delivered once more, `late`,
/// when its key comes). Consumers read in id order (commit order, as transactions are serialized,
/// hence in order per room) and acknowledge a cursor; rows stay until acknowledged, so delivery is
/// at-least-once. Each row holds plaintext and is sealed (AES-256-GCM, key derived from `pickle_key`,
/// bound to its event id), so a database dump alone reveals no message.
public struct Outbox: Sendable {
    public struct Entry: Sendable {
        public var id: Int64
        public var event: JSONValue

        /// The event as consumers receive it: with its `delivery_id` (docs/bridge-api.md).
        public var delivery: JSONValue {
            guard case .object(var fields) = event else { return event }
            fields["delivery_id"] = .string(String(id))
            return .object(fields)
        }
    }

    let rows: PostgresOutboxRows
    let cipher: StoreCipher
    public let signal: OutboxSignal

    public init(client: PostgresClient, cipher: StoreCipher, signal: OutboxSignal = OutboxSignal()) {
        self.rows = PostgresOutboxRows(client: client)
        self.cipher = cipher
        self.signal = signal
    }

    /// Queues `deliveries` on the caller's connection (inside its transaction), in delivery order (ids
    /// follow it), to go out with the transaction's COMMIT: a transaction's events cost one statement.
    public func append(_ deliveries: [Delivery], on connection: PostgresConnection) async throws {
        try enqueue(await sealed(deliveries), on: connection)
    }

    /// Deliveries sealed, ready for ``enqueue(_:on:)``: the part of ``append(_:on:)`` that needs no
    /// connection, so a caller can let the database work meanwhile.
    public func sealed(_ deliveries: [Delivery]) async throws -> SealedDeliveries {
        guard !deliveries.isEmpty else { return SealedDeliveries(rows: []) }
        let sealed = try await seal(deliveries[...])
        return SealedDeliveries(rows: zip(deliveries, sealed).map { delivery, sealed in
            PostgresOutboxRows.NewRow(roomID: delivery.roomID.rawValue, eventID: delivery.eventID.rawValue, late: delivery.late, sealed: sealed)
        })
    }

    /// Queues sealed deliveries on the caller's connection, as ``append(_:on:)`` does.
    public func enqueue(_ sealed: SealedDeliveries, on connection: PostgresConnection) throws {
        guard !sealed.rows.isEmpty else { return }
        try rows.enqueueInsert(sealed.rows, on: connection)
    }

    /// Each delivery's JSON, sealed: spread over the cores when there are many (serializing and
    /// sealing a transaction's deliveries one by one would hold up its 200 for as long).
    func seal(_ deliveries: ArraySlice<Delivery>) async throws -> [[UInt8]] {
        let cipher = cipher
        @Sendable func seal(_ part: ArraySlice<Delivery>) throws -> [[UInt8]] {
            try part.map { try cipher.seal($0.json.serialized(), context: Self.context($0.eventID.rawValue)) }
        }
        let parts = min(CryptoMachine.cores, deliveries.count / Self.parallelThreshold)
        guard parts >= 2 else { return try seal(deliveries) }
        let size = (deliveries.count + parts - 1) / parts
        let starts = Array(stride(from: deliveries.startIndex, to: deliveries.endIndex, by: size))
        return try await withThrowingTaskGroup(of: (Int, [[UInt8]]).self) { group in
            for (index, start) in starts.enumerated().dropFirst() {
                let part = deliveries[start..<min(start + size, deliveries.endIndex)]
                group.addTask { (index, try seal(part)) }
            }
            // The first part on the caller's thread, which would otherwise only wait (a task started
            // for it reached a core ~0.1 ms late).
            var sealed = Array(repeating: [[UInt8]](), count: starts.count)
            sealed[0] = try seal(deliveries[starts[0]..<min(starts[0] + size, deliveries.endIndex)])
            for try await (index, part) in group { sealed[index] = part }
            return sealed.flatMap { $0 }
        }
    }

    /// Deliveries per task below which sealing stays on the caller's thread.
    static let parallelThreshold = 16

    /// Up to `limit` deliveries after `cursor`, oldest first.
    public func entries(after cursor: Int64, limit: Int) async throws -> [Entry] {
        try await rows.rows(after: cursor, limit: limit).map { row in
            Entry(id: row.id, event: try JSONValue.parse(try cipher.open(row.sealed, context: Self.context(row.eventID))))
        }
    }

    /// Like ``entries(after:limit:)``, but waits up to `timeout` for the first one to be committed.
    public func next(after cursor: Int64, limit: Int, timeout: Duration) async throws -> [Entry] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            try Task.checkCancellation()
            let seen = await signal.current
            let found = try await entries(after: cursor, limit: limit)
            let remaining = deadline - clock.now
            if !found.isEmpty || remaining <= .zero { return found }
            await signal.wait(since: seen, timeout: remaining)
        }
    }

    /// Forgets every delivery up to and including `cursor`: the consumer has them.
    @discardableResult
    public func acknowledge(through cursor: Int64) async throws -> Int {
        try await rows.delete(through: cursor)
    }

    /// One long-poll: acknowledges what the consumer says it has — but never past what was ever handed
    /// out, so a wrong or stale `since` cannot delete deliveries nobody received — then waits for
    /// what follows.
    ///
    /// The highest delivery id handed out is stored (`sealbridge_outbox_state`), so a consumer's
    /// acknowledgement still counts after a restart: what it acknowledged never comes again. Only
    /// deliveries it did not acknowledge come again (at least once).
    public func poll(since: Int64, limit: Int, timeout: Duration) async throws -> (entries: [Entry], acknowledged: Int64) {
        let acknowledged = min(since, try await handedOut())
        if acknowledged > 0 { try await acknowledge(through: acknowledged) }
        let entries = try await next(after: acknowledged, limit: limit, timeout: timeout)
        if let last = entries.last {
            try await rows.recordHandedOut(through: last.id)
            await signal.handOut(through: last.id)
        }
        return (entries, acknowledged)
    }

    /// The highest delivery id ever handed out by a long-poll: this process's, or the stored one.
    func handedOut() async throws -> Int64 {
        let known = await signal.handedOut
        if known > 0 { return known }
        let stored = try await rows.handedOut()
        await signal.handOut(through: stored)
        return stored
    }

    /// Deliveries waiting, for `status`.
    public func pendingCount() async throws -> Int64 {
        try await rows.count()
    }

    static func context(_ eventID: String) -> String { "outbox \(eventID)" }
}

/// A transaction's deliveries, sealed and not yet queued (``Outbox/sealed(_:)``).
public struct SealedDeliveries: Sendable {
    let rows: [PostgresOutboxRows.NewRow]
}
