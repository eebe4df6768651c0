import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Outstanding `m.room_key_request`s of local devices (one per room and session).
extension PostgresCryptoStore {
    public func outgoingKeyRequests(sessionIDs: Set<String>) async throws -> [OutgoingKeyRequest] {
        guard !sessionIDs.isEmpty else { return [] }
        return try await client.query("""
            SELECT room_id, session_id, request_id, sender_user_id, sender_key, requester_user_id, requester_device_id,
                   recipients::text AS recipients, requested_at
            FROM sealbridge_key_requests
            WHERE session_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(sessionIDs.sorted())))))
            ORDER BY room_id, session_id
            """).map { row in
            let recipients = try JSONValue.parse(Array(try row.decode(String.self, "recipients").utf8)).arrayValue ?? []
            return OutgoingKeyRequest(
                roomID: try RoomID(try row.decode(String.self, "room_id")), sessionID: try row.decode(String.self, "session_id"),
                requestID: try row.decode(String.self, "request_id"), senderUserID: try UserID(try row.decode(String.self, "sender_user_id")),
                senderKey: try row.decode(String?.self, "sender_key"),
                requester: DeviceRef(
                    userID: try UserID(try row.decode(String.self, "requester_user_id")),
                    deviceID: try DeviceID(try row.decode(String.self, "requester_device_id"))),
                recipients: try recipients.compactMap { pair in
                    guard let user = pair[0]?.stringValue, let device = pair[1]?.stringValue else { return nil }
                    return DeviceRef(userID: try UserID(user), deviceID: try DeviceID(device))
                },
                requestedAt: try row.decode(Date.self, "requested_at"))
        }
    }

    public func keyRequestsDue(parkedBefore: Date, askedBefore: Date, excluding: Set<String>, limit: Int) async throws -> [ParkedEvent] {
        try await client.query("""
            SELECT * FROM (
                SELECT DISTINCT ON (p.room_id, p.session_id)
                       p.event_id, p.room_id, p.session_id, p.sender, p.sender_key, p.sealed, p.event::text AS legacy, p.parked_at, p.surfaced_at
                FROM sealbridge_parked_events p
                LEFT JOIN sealbridge_key_requests r ON r.room_id = p.room_id AND r.session_id = p.session_id
                WHERE p.parked_at < \(parkedBefore) AND (r.requested_at IS NULL OR r.requested_at < \(askedBefore))
                  AND NOT EXISTS (SELECT 1 FROM sealbridge_crypto_accounts a WHERE a.user_id = p.sender)
                  AND NOT (p.session_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(excluding.sorted()))))))
                ORDER BY p.room_id, p.session_id, p.parked_at, p.event_id) due
            ORDER BY parked_at, event_id LIMIT \(limit)
            """).map(parkedEvent)
    }

    /// Deletes up to `batch` key requests made before `before` (their events expired meanwhile).
    public func pruneKeyRequests(requestedBefore before: Date, batch: Int) async throws -> Int {
        if let fence { _ = try fence.check() }
        return try await client.withTransaction { connection in
            if let fence { _ = try await connection.execute(try fence.check()) }
            return try await connection.execute("""
                DELETE FROM sealbridge_key_requests WHERE ctid IN (
                    SELECT ctid FROM sealbridge_key_requests WHERE requested_at < \(before) LIMIT \(batch))
                """)
        }
    }

    static func keyRequestStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        for request in changes.keyRequests {
            let recipients = JSONValue.array(request.recipients.map { [.string($0.userID.rawValue), .string($0.deviceID.rawValue)] })
            statements.append("""
                INSERT INTO sealbridge_key_requests
                    (room_id, session_id, request_id, sender_user_id, sender_key, requester_user_id, requester_device_id, recipients, requested_at)
                VALUES (\(request.roomID.rawValue), \(request.sessionID), \(request.requestID), \(request.senderUserID.rawValue), \(request.senderKey),
                        \(request.requester.userID.rawValue), \(request.requester.deviceID.rawValue), \(PostgresJSONB(recipients.serializedString())),
                        \(request.requestedAt))
                ON CONFLICT (room_id, session_id) DO UPDATE SET request_id = EXCLUDED.request_id, sender_user_id = EXCLUDED.sender_user_id,
                    sender_key = EXCLUDED.sender_key, requester_user_id = EXCLUDED.requester_user_id,
                    requester_device_id = EXCLUDED.requester_device_id, recipients = EXCLUDED.recipients, requested_at = EXCLUDED.requested_at
                """)
        }
        for request in changes.settledKeyRequests {
            statements.append("""
                DELETE FROM sealbridge_key_requests
                WHERE room_id = \(request.roomID.rawValue) AND session_id = \(request.sessionID) AND request_id = \(request.requestID)
                """)
        }
        return statements
    }
}
