import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Outbound Megolm sessions of local senders and their share records.
extension PostgresCryptoStore {
    public func outboundGroupSessionWithoutShares(roomID: RoomID, senderUserID: UserID) async throws -> StoredOutboundGroupSession? {
        guard let row = try await client.query("""
            SELECT sender_device_id, session_id, pickle, created_at FROM sealbridge_outbound_group_sessions
            WHERE room_id = \(roomID.rawValue) AND sender_user_id = \(senderUserID.rawValue)
            """).first
        else { return nil }
        return StoredOutboundGroupSession(
            roomID: roomID, senderUserID: senderUserID, senderDeviceID: try DeviceID(try row.decode(String.self, "sender_device_id")),
            sessionID: try row.decode(String.self, "session_id"), pickle: try row.decode(String.self, "pickle"),
            createdAt: try row.decode(Date.self, "created_at"))
    }

    public func outboundGroupSession(roomID: RoomID, senderUserID: UserID) async throws -> StoredOutboundGroupSession? {
        guard var session = try await outboundGroupSessionWithoutShares(roomID: roomID, senderUserID: senderUserID) else { return nil }
        let sessionID = session.sessionID
        let shares = try await client.query("""
            SELECT user_id, device_id, curve25519, message_index, withheld_code, retry_after, failed_claims FROM sealbridge_outbound_shares
            WHERE session_id = \(sessionID) ORDER BY user_id, device_id
            """).map { share in
            OutboundShare(
                roomID: roomID, senderUserID: senderUserID, sessionID: sessionID, userID: try UserID(try share.decode(String.self, "user_id")),
                deviceID: try DeviceID(try share.decode(String.self, "device_id")), curve25519: try share.decode(String.self, "curve25519"),
                messageIndex: try share.decode(Int64?.self, "message_index").map { UInt32($0) },
                withheldCode: try share.decode(String?.self, "withheld_code"), retryAfter: try share.decode(Date?.self, "retry_after"),
                failedClaims: Int(try share.decode(Int64.self, "failed_claims")))
        }
        session.shares = shares
        return session
    }

    static func outboundStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        for owner in changes.discardedOutboundSessions {
            statements.append(retire(owner, except: nil))
        }
        for session in changes.outboundGroupSessions {
            // A new session id replaces the old session; its share records go with it (into the retired tables).
            statements.append(retire(OutboundSessionOwner(roomID: session.roomID, senderUserID: session.senderUserID), except: session.sessionID))
            // The first pickle stored is the session's earliest index: kept to answer key requests.
            statements.append("""
                INSERT INTO sealbridge_outbound_group_sessions (room_id, sender_user_id, sender_device_id, session_id, pickle, created_at, initial_pickle)
                VALUES (\(session.roomID.rawValue), \(session.senderUserID.rawValue), \(session.senderDeviceID.rawValue), \(session.sessionID),
                        \(session.pickle), \(session.createdAt), \(session.pickle))
                ON CONFLICT (room_id, sender_user_id) DO UPDATE SET pickle = EXCLUDED.pickle
                """)
        }
        for share in changes.outboundShares {
            // A share for a session discarded meanwhile is dropped, as in the memory store.
            statements.append("""
                INSERT INTO sealbridge_outbound_shares
                    (session_id, user_id, device_id, curve25519, message_index, withheld_code, retry_after, failed_claims)
                SELECT \(share.sessionID), \(share.userID.rawValue), \(share.deviceID.rawValue), \(share.curve25519),
                       \(share.messageIndex.map { Int64($0) }), \(share.withheldCode), \(share.retryAfter), \(Int64(share.failedClaims))
                WHERE EXISTS (SELECT 1 FROM sealbridge_outbound_group_sessions WHERE session_id = \(share.sessionID))
                ON CONFLICT (session_id, user_id, device_id) DO UPDATE SET curve25519 = EXCLUDED.curve25519,
                    message_index = EXCLUDED.message_index, withheld_code = EXCLUDED.withheld_code,
                    retry_after = EXCLUDED.retry_after, failed_claims = EXCLUDED.failed_claims
                """)
        }
        return statements
    }

    /// Deletes the outbound session of `owner` (unless its id is `except`) and, in the same statement,
    /// keeps it and the devices that were given its key in the retired tables: the share records
    /// cascade away with the session, and its recipients may still ask for the key.
    ///
    /// One statement, so the send path pays nothing more when there is nothing to replace (the
    /// shares are found through their index from an array of the retired ids, never scanned); the
    /// statement's snapshot still sees the shares that the cascade removes at its end.
    static func retire(_ owner: OutboundSessionOwner, except sessionID: String?) -> PostgresQuery {
        """
        WITH gone AS (
            DELETE FROM sealbridge_outbound_group_sessions
            WHERE room_id = \(owner.roomID.rawValue) AND sender_user_id = \(owner.senderUserID.rawValue)
              AND session_id IS DISTINCT FROM \(sessionID)
            RETURNING session_id, room_id, sender_user_id, sender_device_id, initial_pickle),
        kept AS (
            INSERT INTO sealbridge_retired_outbound_sessions (session_id, room_id, sender_user_id, sender_device_id, initial_pickle, retired_at)
            SELECT session_id, room_id, sender_user_id, sender_device_id, initial_pickle, now() FROM gone WHERE initial_pickle IS NOT NULL
            ON CONFLICT (session_id) DO NOTHING
            RETURNING session_id)
        INSERT INTO sealbridge_retired_outbound_shares (session_id, user_id, device_id, curve25519, message_index)
        SELECT s.session_id, s.user_id, s.device_id, s.curve25519, s.message_index
        FROM sealbridge_outbound_shares s
        WHERE s.session_id = ANY(ARRAY(SELECT session_id FROM kept)) AND s.message_index IS NOT NULL
        ON CONFLICT DO NOTHING
        """
    }

    public func sharedRoomKey(sessionID: String, recipient: DeviceRef) async throws -> SharedRoomKey? {
        let user = recipient.userID.rawValue, device = recipient.deviceID.rawValue
        guard let row = try await client.query("""
            SELECT g.room_id, g.sender_user_id, g.sender_device_id, g.initial_pickle, s.curve25519, s.message_index
            FROM sealbridge_outbound_group_sessions g LEFT JOIN sealbridge_outbound_shares s
              ON s.session_id = g.session_id AND s.user_id = \(user) AND s.device_id = \(device) AND s.message_index IS NOT NULL
            WHERE g.session_id = \(sessionID)
            UNION ALL
            SELECT r.room_id, r.sender_user_id, r.sender_device_id, r.initial_pickle, s.curve25519, s.message_index
            FROM sealbridge_retired_outbound_sessions r LEFT JOIN sealbridge_retired_outbound_shares s
              ON s.session_id = r.session_id AND s.user_id = \(user) AND s.device_id = \(device)
            WHERE r.session_id = \(sessionID)
            LIMIT 1
            """).first
        else { return nil }
        var share: SharedRoomKey.Share?
        if let curve = try row.decode(String?.self, "curve25519"), let index = try row.decode(Int64?.self, "message_index") {
            share = SharedRoomKey.Share(curve25519: curve, messageIndex: UInt32(clamping: index))
        }
        return SharedRoomKey(
            roomID: try RoomID(try row.decode(String.self, "room_id")), senderUserID: try UserID(try row.decode(String.self, "sender_user_id")),
            senderDeviceID: try DeviceID(try row.decode(String.self, "sender_device_id")), sessionID: sessionID,
            initialPickle: try row.decode(String?.self, "initial_pickle"), share: share)
    }
}
