import Foundation
import Postgres

/// The bridge API outbox's rows (`sealbridge_outbox`, bridge migrations 21–22) and its hand-out mark
/// (`sealbridge_outbox_state`): SQL only. Sealing, the order of deliveries and the long-poll logic
/// stay in `Bridge.Outbox`; the rows hold only sealed bytes.
public struct PostgresOutboxRows: Sendable {
    /// One queued delivery, still sealed.
    public struct Row: Sendable {
        public var id: Int64
        public var eventID: String
        public var sealed: [UInt8]
    }

    /// One delivery to queue.
    public struct NewRow: Sendable {
        public var roomID: String
        public var eventID: String
        public var late: Bool
        public var sealed: [UInt8]

        public init(roomID: String, eventID: String, late: Bool, sealed: [UInt8]) {
            self.roomID = roomID
            self.eventID = eventID
            self.late = late
            self.sealed = sealed
        }
    }

    /// PostgreSQL takes at most 65,535 parameters per statement; a row binds 4.
    static let rowsPerStatement = 10_000

    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Queues `rows` on `connection` (inside its transaction), to go out with its COMMIT
    /// (``PostgresConnection/enqueue(_:)``): one multi-row INSERT per 10,000, ids in the given order.
    /// A row whose `(event_id, late)` is queued already is skipped.
    public func enqueueInsert(_ rows: [NewRow], on connection: PostgresConnection) throws {
        for start in stride(from: 0, to: rows.count, by: Self.rowsPerStatement) {
            let part = rows[start..<min(start + Self.rowsPerStatement, rows.count)]
            var values: [String] = [], binds: [PostgresBind] = []
            values.reserveCapacity(part.count)
            binds.reserveCapacity(part.count * 4)
            for row in part {
                binds += [row.roomID.postgresBind, row.eventID.postgresBind, row.late.postgresBind, row.sealed.postgresBind]
                values.append("($\(binds.count - 3), $\(binds.count - 2), $\(binds.count - 1), $\(binds.count))")
            }
            try connection.enqueue([PostgresQuery(unsafeSQL: """
                INSERT INTO sealbridge_outbox (room_id, event_id, late, sealed) VALUES \(values.joined(separator: ", "))
                ON CONFLICT (event_id, late) DO NOTHING
                """, binds: binds)])
        }
    }

    /// Up to `limit` rows after `cursor`, oldest first.
    public func rows(after cursor: Int64, limit: Int) async throws -> [Row] {
        try await client.query("""
            SELECT id, event_id, sealed FROM sealbridge_outbox WHERE id > \(cursor) ORDER BY id LIMIT \(limit)
            """).map { Row(id: try $0.decode(Int64.self, "id"), eventID: try $0.decode(String.self, "event_id"), sealed: try $0.decode([UInt8].self, "sealed")) }
    }

    /// Deletes every row up to and including `cursor`.
    /// - Returns: How many were deleted.
    @discardableResult
    public func delete(through cursor: Int64) async throws -> Int {
        try await client.execute("DELETE FROM sealbridge_outbox WHERE id <= \(cursor)")
    }

    /// Raises the stored highest id handed out to `id` (never lowers it).
    public func recordHandedOut(through id: Int64) async throws {
        try await client.execute("UPDATE sealbridge_outbox_state SET handed_out = greatest(handed_out, \(id)) WHERE id = 1")
    }

    /// The stored highest id handed out; 0 before the first.
    public func handedOut() async throws -> Int64 {
        try await client.query("SELECT handed_out FROM sealbridge_outbox_state WHERE id = 1").first?.decode(Int64.self, "handed_out") ?? 0
    }

    /// Rows waiting.
    public func count() async throws -> Int64 {
        try await client.query("SELECT count(*) AS n FROM sealbridge_outbox").first?.decode(Int64.self, "n") ?? 0
    }
}
