import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Room events parked for their key, and to-device payloads pending their sender's keys: both kept
/// as sealed bytes, since they are whatever JSON a user sent (NULs included) and may carry plaintext
/// or room keys.
extension PostgresCryptoStore {
    static func parkedContext(_ eventID: String) -> String { "parked \(eventID)" }
    static func pendingContext(_ id: String) -> String { "pending to-device \(id)" }

    public func parkedEvents(sessionIDs: Set<String>) async throws -> [ParkedEvent] {
        guard !sessionIDs.isEmpty else { return [] }
        return try await client.query("""
            SELECT event_id, room_id, session_id, sender, sender_key, sealed, event::text AS legacy, parked_at, surfaced_at
            FROM sealbridge_parked_events
            WHERE session_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(sessionIDs.sorted())))))
            ORDER BY parked_at, event_id
            """).map(parkedEvent)
    }

    public func parkedEventsToSurface(parkedBefore: Date, limit: Int) async throws -> [ParkedEvent] {
        try await client.query("""
            SELECT event_id, room_id, session_id, sender, sender_key, sealed, event::text AS legacy, parked_at, surfaced_at
            FROM sealbridge_parked_events
            WHERE surfaced_at IS NULL AND parked_at < \(parkedBefore)
            ORDER BY parked_at, event_id LIMIT \(limit)
            """).map(parkedEvent)
    }

    public func recentParkedEvents(roomID: RoomID?, limit: Int) async throws -> [ParkedEvent] {
        try await client.query("""
            SELECT event_id, room_id, session_id, sender, sender_key, sealed, event::text AS legacy, parked_at, surfaced_at
            FROM sealbridge_parked_events
            WHERE \(roomID?.rawValue) IS NULL OR room_id = \(roomID?.rawValue)
            ORDER BY parked_at DESC, event_id DESC LIMIT \(limit)
            """).map(parkedEvent)
    }

    /// Reads one parked row: sealed bytes, or the `jsonb` column of rows parked before migration 14.
    func parkedEvent(_ row: PostgresRow) throws -> ParkedEvent {
        let eventID = try row.decode(String.self, "event_id")
        let event: JSONValue
        if let sealed = try row.decode([UInt8]?.self, "sealed") {
            event = try JSONValue.parse(try cipher.open(sealed, context: Self.parkedContext(eventID)))
        } else {
            event = try JSONValue.parse(try row.decode(String.self, "legacy"))
        }
        let sender = try row.decode(String?.self, "sender") ?? event["sender"]?.stringValue ?? ""
        return ParkedEvent(
            event: event, sessionID: try row.decode(String.self, "session_id"), roomID: try RoomID(try row.decode(String.self, "room_id")),
            sender: try UserID(sender), senderKey: try row.decode(String?.self, "sender_key"),
            parkedAt: try row.decode(Date.self, "parked_at"), surfaced: try row.decode(Date?.self, "surfaced_at") != nil)
    }

    public func pendingToDevice(senders: Set<UserID>) async throws -> [PendingToDevice] {
        guard !senders.isEmpty else { return [] }
        return try await client.query("""
            SELECT id, recipient_user_id, recipient_device_id, sender, sender_key, sealed, received_at FROM sealbridge_pending_to_device
            WHERE sender = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(senders.map(\.rawValue).sorted())))))
            ORDER BY received_at, id
            """).map { row in
            let id = try row.decode(String.self, "id")
            return PendingToDevice(
                id: id,
                recipient: DeviceRef(
                    userID: try UserID(try row.decode(String.self, "recipient_user_id")),
                    deviceID: try DeviceID(try row.decode(String.self, "recipient_device_id"))),
                sender: try UserID(try row.decode(String.self, "sender")), senderKey: try row.decode(String.self, "sender_key"),
                payload: try JSONValue.parse(try cipher.open(try row.decode([UInt8].self, "sealed"), context: Self.pendingContext(id))),
                receivedAt: try row.decode(Date.self, "received_at"))
        }
    }

    public func pendingSenders(limit: Int) async throws -> [(sender: UserID, recipient: UserID)] {
        try await client.query("""
            SELECT sender, min(recipient_user_id) AS recipient, min(received_at) AS first FROM sealbridge_pending_to_device
            GROUP BY sender ORDER BY first, sender LIMIT \(limit)
            """).map { (try UserID(try $0.decode(String.self, "sender")), try UserID(try $0.decode(String.self, "recipient"))) }
    }

    public func expire(parkedBefore: Date, pendingBefore: Date) async throws -> (parked: Int, pending: Int) {
        // Small batches, so housekeeping never holds many row locks against the transactions.
        let parked = try await client.execute("""
            DELETE FROM sealbridge_parked_events WHERE event_id IN (
                SELECT event_id FROM sealbridge_parked_events WHERE parked_at < \(parkedBefore) LIMIT 1000)
            """)
        let pending = try await client.execute("""
            DELETE FROM sealbridge_pending_to_device WHERE id IN (
                SELECT id FROM sealbridge_pending_to_device WHERE received_at < \(pendingBefore) LIMIT 1000)
            """)
        return (parked, pending)
    }

    func parkedStatements(_ changes: CryptoChanges) throws -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        for event in changes.parkedEvents {
            let sealed = try cipher.seal(event.event.serialized(), context: Self.parkedContext(event.eventID))
            statements.append("""
                INSERT INTO sealbridge_parked_events (event_id, room_id, session_id, sender, sender_key, sealed)
                VALUES (\(event.eventID), \(event.roomID.rawValue), \(event.sessionID), \(event.sender.rawValue), \(event.senderKey), \(sealed))
                ON CONFLICT (event_id) DO NOTHING
                """)
        }
        for eventID in changes.surfacedEvents.sorted() {
            statements.append("UPDATE sealbridge_parked_events SET surfaced_at = now() WHERE event_id = \(eventID) AND surfaced_at IS NULL")
        }
        for eventID in changes.releasedEvents.sorted() {
            statements.append("DELETE FROM sealbridge_parked_events WHERE event_id = \(eventID)")
        }
        for message in changes.pendingToDevice {
            let sealed = try cipher.seal(message.payload.serialized(), context: Self.pendingContext(message.id))
            statements.append("""
                INSERT INTO sealbridge_pending_to_device (id, recipient_user_id, recipient_device_id, sender, sender_key, sealed, received_at)
                VALUES (\(message.id), \(message.recipient.userID.rawValue), \(message.recipient.deviceID.rawValue), \(message.sender.rawValue),
                        \(message.senderKey), \(sealed), \(message.receivedAt))
                ON CONFLICT (id) DO NOTHING
                """)
        }
        for id in changes.releasedToDevice.sorted() {
            statements.append("DELETE FROM sealbridge_pending_to_device WHERE id = \(id)")
        }
        return statements
    }
}
