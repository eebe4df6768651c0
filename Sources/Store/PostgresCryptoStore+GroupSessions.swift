import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Inbound Megolm sessions (one claim per owner), the replay ledger and withheld notices.
extension PostgresCryptoStore {
    public func inboundGroupSessions(roomID: RoomID, sessionID: String) async throws -> [StoredInboundGroupSession] {
        try await client.query("""
            SELECT sender_key, sender_user_id, sender_ed25519, first_known_index, pickle, forwarded FROM sealbridge_inbound_group_sessions
            WHERE room_id = \(roomID.rawValue) AND session_id = \(sessionID)
            ORDER BY first_known_index, sender_key
            """).map { row in
            var claim = StoredInboundGroupSession(
                roomID: roomID, sessionID: sessionID, senderKey: try row.decode(String.self, "sender_key"),
                senderUserID: try UserID(try row.decode(String.self, "sender_user_id")),
                senderEd25519: try row.decode(String.self, "sender_ed25519"),
                firstKnownIndex: UInt32(try row.decode(Int64.self, "first_known_index")), pickle: try row.decode(String.self, "pickle"))
            claim.forwarded = try row.decode(Bool.self, "forwarded")
            return claim
        }
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

    public func withheldNotices(roomID: RoomID, sessionID: String) async throws -> [WithheldNotice] {
        try await client.query("""
            SELECT code, reason, sender_user_id, sender_key FROM sealbridge_withheld_sessions
            WHERE room_id = \(roomID.rawValue) AND session_id = \(sessionID) AND sender_user_id <> ''
            ORDER BY sender_user_id, sender_key
            """).map { row in
            WithheldNotice(
                roomID: roomID, sessionID: sessionID, code: try row.decode(String.self, "code"), reason: try row.decode(String?.self, "reason"),
                senderUserID: try UserID(try row.decode(String.self, "sender_user_id")), senderKey: try row.decode(String.self, "sender_key"))
        }
    }

    static func groupSessionStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        for session in changes.inboundGroupSessions {
            // A claim never changes owner: only the same sender key, user and Ed25519 key, with an
            // earlier first known index, may replace the stored copy.
            statements.append("""
                INSERT INTO sealbridge_inbound_group_sessions
                    (room_id, session_id, sender_key, sender_user_id, sender_ed25519, first_known_index, pickle, forwarded)
                VALUES (\(session.roomID.rawValue), \(session.sessionID), \(session.senderKey), \(session.senderUserID.rawValue),
                        \(session.senderEd25519), \(Int64(session.firstKnownIndex)), \(session.pickle), \(session.forwarded))
                ON CONFLICT (room_id, session_id, sender_key) DO UPDATE SET first_known_index = EXCLUDED.first_known_index,
                    pickle = EXCLUDED.pickle, forwarded = EXCLUDED.forwarded
                WHERE EXCLUDED.first_known_index < sealbridge_inbound_group_sessions.first_known_index
                  AND EXCLUDED.sender_user_id = sealbridge_inbound_group_sessions.sender_user_id
                  AND EXCLUDED.sender_ed25519 = sealbridge_inbound_group_sessions.sender_ed25519
                """)
        }
        if !changes.replayEntries.isEmpty {
            // One statement for a transaction's entries (a statement each cost more than the decryption).
            let entries = Array(changes.replayEntries)
            let sessions = PostgresTextArray(entries.map(\.key.sessionID)), events = PostgresTextArray(entries.map(\.value))
            let indices = PostgresTextArray(entries.map { String($0.key.messageIndex) })
            statements.append("""
                INSERT INTO sealbridge_megolm_replay (session_id, message_index, event_id)
                SELECT s, i::bigint, e FROM unnest(\(sessions), \(indices), \(events)) AS r(s, i, e)
                ON CONFLICT DO NOTHING
                """)
        }
        for notice in changes.withheldNotices {
            statements.append("""
                INSERT INTO sealbridge_withheld_sessions (room_id, session_id, code, reason, sender_user_id, sender_key)
                VALUES (\(notice.roomID.rawValue), \(notice.sessionID), \(notice.code), \(notice.reason), \(notice.senderUserID.rawValue),
                        \(notice.senderKey))
                ON CONFLICT (room_id, session_id, sender_user_id, sender_key)
                DO UPDATE SET code = EXCLUDED.code, reason = EXCLUDED.reason, received_at = now()
                """)
        }
        return statements
    }
}
