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

    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Queues `rows` on `connection` (inside its transaction), to go out with its COMMIT
    /// (``PostgresConnection/enqueue(_:)``): one INSERT of four array binds, however many rows, ids
    /// in the given order (a VALUES list of four binds a row took ~0.24 ms longer per 100 rows to
    /// build, parse and plan). A row whose `(event_id, late)` is queued already is skipped.
    public func enqueueInsert(_ rows: [NewRow], on connection: PostgresConnection) throws {
        guard !rows.isEmpty else { return }
        let rooms = PostgresTextArray(rows.map(\.roomID)), events = PostgresTextArray(rows.map(\.eventID))
        let late = PostgresTextArray(rows.map { $0.late ? "t" : "f" }), sealed = PostgresByteaArray(rows.map(\.sealed))
        // WITH ORDINALITY ... ORDER BY n: ids are drawn in the rows' order.
        try connection.enqueue(["""
            INSERT INTO sealbridge_outbox (room_id, event_id, late, sealed)
            SELECT r, e, l::boolean, s FROM unnest(\(rooms), \(events), \(late), \(sealed)) WITH ORDINALITY AS t(r, e, l, s, n) ORDER BY n
            ON CONFLICT (event_id, late) DO NOTHING
            """])
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
