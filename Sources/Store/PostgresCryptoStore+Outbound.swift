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
            statements.append("""
                DELETE FROM sealbridge_outbound_group_sessions WHERE room_id = \(owner.roomID.rawValue) AND sender_user_id = \(owner.senderUserID.rawValue)
                """)
        }
        for session in changes.outboundGroupSessions {
            // A new session id replaces the old session; its share records go with it.
            statements.append("""
                DELETE FROM sealbridge_outbound_group_sessions
                WHERE room_id = \(session.roomID.rawValue) AND sender_user_id = \(session.senderUserID.rawValue) AND session_id <> \(session.sessionID)
                """)
            statements.append("""
                INSERT INTO sealbridge_outbound_group_sessions (room_id, sender_user_id, sender_device_id, session_id, pickle, created_at)
                VALUES (\(session.roomID.rawValue), \(session.senderUserID.rawValue), \(session.senderDeviceID.rawValue), \(session.sessionID),
                        \(session.pickle), \(session.createdAt))
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
}
