import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Inbound Megolm sessions (one claim per owner), the replay ledger and withheld notices.
extension PostgresCryptoStore {
    public func inboundGroupSessions(roomID: RoomID, sessionID: String) async throws -> [StoredInboundGroupSession] {
        try await client.query("""
            SELECT sender_key, sender_user_id, sender_ed25519, first_known_index, pickle, forwarded, bundle_sender_user_id, bundle_sender_key
            FROM sealbridge_inbound_group_sessions
            WHERE room_id = \(roomID.rawValue) AND session_id = \(sessionID)
            ORDER BY first_known_index, sender_key
            """).map { row in
            var claim = StoredInboundGroupSession(
                roomID: roomID, sessionID: sessionID, senderKey: try row.decode(String.self, "sender_key"),
                senderUserID: try UserID(try row.decode(String.self, "sender_user_id")),
                senderEd25519: try row.decode(String.self, "sender_ed25519"),
                firstKnownIndex: UInt32(try row.decode(Int64.self, "first_known_index")), pickle: try row.decode(String.self, "pickle"))
            claim.forwarded = try row.decode(Bool.self, "forwarded")
            if let user = try row.decode(String?.self, "bundle_sender_user_id"), let key = try row.decode(String?.self, "bundle_sender_key") {
                claim.bundleSender = BundleSender(userID: try UserID(user), curve25519: key)
            }
            return claim
        }
    }

    public func replayEntries(_ keys: Set<ReplayLedger.Key>) async throws -> [ReplayLedger.Key: String] {
        guard !keys.isEmpty else { return [:] }
        var entries: [ReplayLedger.Key: String] = [:]
        for row in try await client.query(Self.replayEntriesQuery(keys)) {
            entries[ReplayLedger.Key(
                sessionID: try row.decode(String.self, "session_id"), messageIndex: UInt32(try row.decode(Int64.self, "message_index")))] =
                try row.decode(String.self, "event_id")
        }
        return entries
    }

    /// The stored entries for `keys`, and an empty event id for a key below its session's pruned floor:
    /// one index probe per key (LATERAL, kept apart by `LIMIT`). A join
    /// the planner may hash scans the whole ledger, which grows with every event ever decrypted (it
    /// chose that at 10,000 entries: 4.7 ms instead of 0.7 ms per transaction).
    static func replayEntriesQuery(_ keys: Set<ReplayLedger.Key>) -> PostgresQuery {
        let ordered = Array(keys)
        let sessions = PostgresTextArray(ordered.map(\.sessionID)), indices = PostgresTextArray(ordered.map { String($0.messageIndex) })
        // An index below its session's floor was pruned: it comes back with an empty event id, which no
        // event has, so the ledger refuses it as a replay.
        return """
            SELECT k.s AS session_id, k.i::bigint AS message_index, coalesce(r.event_id, '') AS event_id
            FROM unnest(\(sessions), \(indices)) AS k(s, i)
            LEFT JOIN LATERAL (
                SELECT event_id FROM sealbridge_megolm_replay
                WHERE session_id = k.s AND message_index = k.i::bigint
                LIMIT 1  -- at most one row (the primary key); also keeps the planner from flattening this into a join
            ) r ON true
            LEFT JOIN LATERAL (SELECT below FROM sealbridge_megolm_replay_floors WHERE session_id = k.s LIMIT 1) f ON true
            WHERE r.event_id IS NOT NULL OR k.i::bigint < f.below
            """
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
            // A claim never changes owner: only the same sender key, user and Ed25519 key may replace
            // the stored copy, from an earlier first known index or as the owner's own key where the
            // stored one was forwarded or bundled (StoredInboundGroupSession.supersedes).
            statements.append("""
                INSERT INTO sealbridge_inbound_group_sessions
                    (room_id, session_id, sender_key, sender_user_id, sender_ed25519, first_known_index, pickle, forwarded,
                     bundle_sender_user_id, bundle_sender_key)
                VALUES (\(session.roomID.rawValue), \(session.sessionID), \(session.senderKey), \(session.senderUserID.rawValue),
                        \(session.senderEd25519), \(Int64(session.firstKnownIndex)), \(session.pickle), \(session.forwarded),
                        \(session.bundleSender?.userID.rawValue), \(session.bundleSender?.curve25519))
                ON CONFLICT (room_id, session_id, sender_key) DO UPDATE SET first_known_index = EXCLUDED.first_known_index,
                    pickle = EXCLUDED.pickle, forwarded = EXCLUDED.forwarded,
                    bundle_sender_user_id = EXCLUDED.bundle_sender_user_id, bundle_sender_key = EXCLUDED.bundle_sender_key
                WHERE (EXCLUDED.first_known_index < sealbridge_inbound_group_sessions.first_known_index
                       OR (EXCLUDED.first_known_index = sealbridge_inbound_group_sessions.first_known_index
                           AND (sealbridge_inbound_group_sessions.forwarded OR sealbridge_inbound_group_sessions.bundle_sender_user_id IS NOT NULL)
                           AND NOT EXCLUDED.forwarded AND EXCLUDED.bundle_sender_user_id IS NULL))
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
