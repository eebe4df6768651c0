import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// The ``CryptoStore`` on PostgreSQL.
///
/// ``save(_:on:)`` writes through the caller's connection, so crypto changes commit in the same
/// database transaction as the appservice txn id; ``save(_:)`` opens a transaction of its own.
/// Writes go out as one pipeline: one round trip for a whole transaction's changes.
public struct PostgresCryptoStore: CryptoStore {
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public func account(userID: UserID) async throws -> StoredAccount? {
        guard let row = try await client.query(
            "SELECT device_id, pickle, device_keys_uploaded, fallback_rotated_at FROM sealbridge_crypto_accounts WHERE user_id = \(userID.rawValue)").first
        else { return nil }
        return StoredAccount(
            userID: userID, deviceID: try DeviceID(try row.decode(String.self, "device_id")),
            pickle: try row.decode(String.self, "pickle"), deviceKeysUploaded: try row.decode(Bool.self, "device_keys_uploaded"),
            fallbackRotatedAt: try row.decode(Date?.self, "fallback_rotated_at"))
    }

    public func localDevices(after: UserID?, limit: Int) async throws -> [DeviceRef] {
        try await client.query("""
            SELECT user_id, device_id FROM sealbridge_crypto_accounts WHERE user_id > \(after?.rawValue ?? "")
            ORDER BY user_id LIMIT \(limit)
            """).map { DeviceRef(userID: try UserID(try $0.decode(String.self, "user_id")), deviceID: try DeviceID(try $0.decode(String.self, "device_id"))) }
    }

    public func olmSessions(localUserID: UserID, localDeviceID: DeviceID, senderKey: String) async throws -> [StoredOlmSession] {
        try await client.query("""
            SELECT session_id, pickle, last_used FROM sealbridge_olm_sessions
            WHERE local_user_id = \(localUserID.rawValue) AND local_device_id = \(localDeviceID.rawValue) AND sender_key = \(senderKey)
            ORDER BY last_used DESC, session_id DESC
            """).map { row in
            StoredOlmSession(
                localUserID: localUserID, localDeviceID: localDeviceID, senderKey: senderKey,
                sessionID: try row.decode(String.self, "session_id"), pickle: try row.decode(String.self, "pickle"),
                lastUsed: try row.decode(Date.self, "last_used"))
        }
    }

    public func inboundGroupSession(roomID: RoomID, sessionID: String) async throws -> StoredInboundGroupSession? {
        guard let row = try await client.query("""
            SELECT sender_key, sender_user_id, first_known_index, pickle FROM sealbridge_inbound_group_sessions
            WHERE room_id = \(roomID.rawValue) AND session_id = \(sessionID)
            """).first
        else { return nil }
        return StoredInboundGroupSession(
            roomID: roomID, sessionID: sessionID, senderKey: try row.decode(String.self, "sender_key"),
            senderUserID: try UserID(try row.decode(String.self, "sender_user_id")),
            firstKnownIndex: UInt32(try row.decode(Int64.self, "first_known_index")), pickle: try row.decode(String.self, "pickle"))
    }

    public func replayEntries(_ keys: Set<ReplayLedger.Key>) async throws -> [ReplayLedger.Key: String] {
        guard !keys.isEmpty else { return [:] }
        let pairs = JSONValue.array(keys.map { [.string($0.sessionID), .integer(Int64($0.messageIndex))] }).serializedString()
        var entries: [ReplayLedger.Key: String] = [:]
        for row in try await client.query("""
            SELECT r.session_id, r.message_index, r.event_id FROM sealbridge_megolm_replay r
            JOIN jsonb_array_elements(\(PostgresJSONB(pairs))) AS k(pair)
              ON r.session_id = k.pair->>0 AND r.message_index = (k.pair->>1)::bigint
            """) {
            entries[ReplayLedger.Key(
                sessionID: try row.decode(String.self, "session_id"), messageIndex: UInt32(try row.decode(Int64.self, "message_index")))] =
                try row.decode(String.self, "event_id")
        }
        return entries
    }

    public func parkedEvents(sessionIDs: Set<String>) async throws -> [ParkedEvent] {
        var events: [ParkedEvent] = []
        for sessionID in sessionIDs.sorted() {
            let rows = try await client.query(
                "SELECT event::text AS event, room_id FROM sealbridge_parked_events WHERE session_id = \(sessionID) ORDER BY parked_at, event_id")
            for row in rows {
                events.append(ParkedEvent(
                    event: try JSONValue.parse(try row.decode(String.self, "event")), sessionID: sessionID,
                    roomID: try RoomID(try row.decode(String.self, "room_id"))))
            }
        }
        return events
    }

    public func save(_ changes: CryptoChanges) async throws {
        guard !changes.isEmpty else { return }
        try await client.withTransaction { try await save(changes, on: $0) }
    }

    /// Writes `changes` through `connection`, inside whatever transaction it has open.
    public func save(_ changes: CryptoChanges, on connection: PostgresConnection) async throws {
        var statements: [PostgresQuery] = []
        for account in changes.accounts {
            statements.append("""
                INSERT INTO sealbridge_crypto_accounts (user_id, device_id, pickle, device_keys_uploaded, fallback_rotated_at)
                VALUES (\(account.userID.rawValue), \(account.deviceID.rawValue), \(account.pickle), \(account.deviceKeysUploaded),
                        \(account.fallbackRotatedAt))
                ON CONFLICT (user_id) DO UPDATE SET device_id = EXCLUDED.device_id, pickle = EXCLUDED.pickle,
                    device_keys_uploaded = EXCLUDED.device_keys_uploaded, fallback_rotated_at = EXCLUDED.fallback_rotated_at
                """)
        }
        for session in changes.olmSessions {
            statements.append("""
                INSERT INTO sealbridge_olm_sessions (local_user_id, local_device_id, sender_key, session_id, pickle, last_used)
                VALUES (\(session.localUserID.rawValue), \(session.localDeviceID.rawValue), \(session.senderKey), \(session.sessionID),
                        \(session.pickle), \(session.lastUsed))
                ON CONFLICT (local_user_id, local_device_id, sender_key, session_id)
                DO UPDATE SET pickle = EXCLUDED.pickle, last_used = EXCLUDED.last_used
                """)
        }
        for session in changes.inboundGroupSessions {
            statements.append("""
                INSERT INTO sealbridge_inbound_group_sessions (room_id, session_id, sender_key, sender_user_id, first_known_index, pickle)
                VALUES (\(session.roomID.rawValue), \(session.sessionID), \(session.senderKey), \(session.senderUserID.rawValue),
                        \(Int64(session.firstKnownIndex)), \(session.pickle))
                ON CONFLICT (room_id, session_id) DO UPDATE SET first_known_index = EXCLUDED.first_known_index, pickle = EXCLUDED.pickle,
                    sender_key = EXCLUDED.sender_key, sender_user_id = EXCLUDED.sender_user_id
                WHERE EXCLUDED.first_known_index < sealbridge_inbound_group_sessions.first_known_index
                """)
        }
        for (key, eventID) in changes.replayEntries {
            statements.append("""
                INSERT INTO sealbridge_megolm_replay (session_id, message_index, event_id)
                VALUES (\(key.sessionID), \(Int64(key.messageIndex)), \(eventID)) ON CONFLICT DO NOTHING
                """)
        }
        for event in changes.parkedEvents {
            statements.append("""
                INSERT INTO sealbridge_parked_events (event_id, room_id, session_id, event)
                VALUES (\(event.eventID), \(event.roomID.rawValue), \(event.sessionID), \(PostgresJSONB(event.event.serializedString())))
                ON CONFLICT (event_id) DO NOTHING
                """)
        }
        for eventID in changes.releasedEvents.sorted() {
            statements.append("DELETE FROM sealbridge_parked_events WHERE event_id = \(eventID)")
        }
        statements += Self.roomStatements(changes)
        guard !statements.isEmpty else { return }
        try await connection.pipeline(statements)
    }
}
