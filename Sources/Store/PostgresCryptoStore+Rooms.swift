import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Reads for device tracking, room state and sending.
extension PostgresCryptoStore {
    /// Binds a list of texts as one `jsonb` array parameter: `= ANY(ARRAY(SELECT jsonb_array_elements_text(…)))`.
    static func textArray(_ values: [String]) -> PostgresJSONB {
        PostgresJSONB(JSONValue.array(values.map { .string($0) }).serializedString())
    }

    public func devices(userIDs: [UserID]) async throws -> [UserID: [VerifiedDeviceKeys]] {
        guard !userIDs.isEmpty else { return [:] }
        var found: [UserID: [VerifiedDeviceKeys]] = [:]
        let rows = try await client.query("""
            SELECT user_id, device_id, curve25519, ed25519, dehydrated FROM sealbridge_devices
            WHERE user_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(userIDs.map(\.rawValue))))))
            ORDER BY user_id, device_id
            """)
        for row in rows {
            let user = try UserID(try row.decode(String.self, "user_id"))
            found[user, default: []].append(VerifiedDeviceKeys(
                userID: user, deviceID: try DeviceID(try row.decode(String.self, "device_id")),
                curve25519: try row.decode(String.self, "curve25519"), ed25519: try row.decode(String.self, "ed25519"),
                dehydrated: try row.decode(Bool.self, "dehydrated")))
        }
        return found
    }

    public func trackedUsers(_ userIDs: [UserID]) async throws -> [UserID: Bool] {
        guard !userIDs.isEmpty else { return [:] }
        var found: [UserID: Bool] = [:]
        for row in try await client.query("""
            SELECT user_id, outdated FROM sealbridge_tracked_users
            WHERE user_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(userIDs.map(\.rawValue))))))
            """) {
            found[try UserID(try row.decode(String.self, "user_id"))] = try row.decode(Bool.self, "outdated")
        }
        return found
    }

    public func room(_ roomID: RoomID) async throws -> RoomEncryption? {
        guard let row = try await client.query("""
            SELECT algorithm, rotation_period_ms, rotation_period_msgs, history_visibility FROM sealbridge_rooms
            WHERE room_id = \(roomID.rawValue)
            """).first
        else { return nil }
        return RoomEncryption(
            algorithm: try row.decode(String.self, "algorithm"), rotationPeriodMilliseconds: try row.decode(Int64?.self, "rotation_period_ms"),
            rotationPeriodMessages: try row.decode(Int64?.self, "rotation_period_msgs"),
            historyVisibility: try row.decode(String.self, "history_visibility"))
    }

    public func members(roomID: RoomID) async throws -> [UserID: String] {
        var members: [UserID: String] = [:]
        for row in try await client.query("SELECT user_id, membership FROM sealbridge_room_members WHERE room_id = \(roomID.rawValue)") {
            members[try UserID(try row.decode(String.self, "user_id"))] = try row.decode(String.self, "membership")
        }
        return members
    }

    public func presentRooms(userID: UserID) async throws -> [RoomID] {
        try await client.query("""
            SELECT room_id FROM sealbridge_room_members WHERE user_id = \(userID.rawValue) AND membership IN ('join', 'invite')
            ORDER BY room_id
            """).map { try RoomID(try $0.decode(String.self, "room_id")) }
    }

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
            SELECT user_id, device_id, curve25519, message_index, withheld_code FROM sealbridge_outbound_shares
            WHERE session_id = \(sessionID) ORDER BY user_id, device_id
            """).map { share in
            OutboundShare(
                roomID: roomID, senderUserID: senderUserID, sessionID: sessionID, userID: try UserID(try share.decode(String.self, "user_id")),
                deviceID: try DeviceID(try share.decode(String.self, "device_id")), curve25519: try share.decode(String.self, "curve25519"),
                messageIndex: try share.decode(Int64?.self, "message_index").map { UInt32($0) },
                withheldCode: try share.decode(String?.self, "withheld_code"))
        }
        session.shares = shares
        return session
    }

    public func olmSessions(localUserID: UserID, localDeviceID: DeviceID, remoteKeys: [String]) async throws -> [String: [StoredOlmSession]] {
        guard !remoteKeys.isEmpty else { return [:] }
        var found: [String: [StoredOlmSession]] = [:]
        for row in try await client.query("""
            SELECT sender_key, session_id, pickle, last_used FROM sealbridge_olm_sessions
            WHERE local_user_id = \(localUserID.rawValue) AND local_device_id = \(localDeviceID.rawValue)
              AND sender_key = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(remoteKeys)))))
            ORDER BY last_used DESC, session_id DESC
            """) {
            let key = try row.decode(String.self, "sender_key")
            found[key, default: []].append(StoredOlmSession(
                localUserID: localUserID, localDeviceID: localDeviceID, senderKey: key, sessionID: try row.decode(String.self, "session_id"),
                pickle: try row.decode(String.self, "pickle"), lastUsed: try row.decode(Date.self, "last_used")))
        }
        return found
    }

    public func withheldNotice(roomID: RoomID, sessionID: String) async throws -> WithheldNotice? {
        guard let row = try await client.query("""
            SELECT code, reason, sender_key FROM sealbridge_withheld_sessions WHERE room_id = \(roomID.rawValue) AND session_id = \(sessionID)
            """).first
        else { return nil }
        return WithheldNotice(
            roomID: roomID, sessionID: sessionID, code: try row.decode(String.self, "code"), reason: try row.decode(String?.self, "reason"),
            senderKey: try row.decode(String.self, "sender_key"))
    }

    public func lastOlmRecovery(localUserID: UserID, remoteKey: String) async throws -> Date? {
        try await client.query("""
            SELECT recovered_at FROM sealbridge_olm_recoveries WHERE local_user_id = \(localUserID.rawValue) AND remote_key = \(remoteKey)
            """).first.map { try $0.decode(Date.self, "recovered_at") }
    }

    /// The statements that write the device, room and sending parts of `changes`, in dependency order.
    static func roomStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        for user in changes.untrackedUsers.sorted() {
            statements.append("DELETE FROM sealbridge_tracked_users WHERE user_id = \(user.rawValue)")
        }
        for (user, outdated) in changes.trackedUsers.sorted(by: { $0.key < $1.key }) {
            statements.append("""
                INSERT INTO sealbridge_tracked_users (user_id, outdated) VALUES (\(user.rawValue), \(outdated))
                ON CONFLICT (user_id) DO UPDATE SET outdated = EXCLUDED.outdated
                """)
        }
        for (user, devices) in changes.deviceLists.sorted(by: { $0.key < $1.key }) {
            statements.append("DELETE FROM sealbridge_devices WHERE user_id = \(user.rawValue)")
            for device in devices {
                statements.append("""
                    INSERT INTO sealbridge_devices (user_id, device_id, curve25519, ed25519, dehydrated)
                    VALUES (\(user.rawValue), \(device.deviceID.rawValue), \(device.curve25519), \(device.ed25519), \(device.dehydrated))
                    """)
            }
        }
        for (room, settings) in changes.rooms.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            statements.append("""
                INSERT INTO sealbridge_rooms (room_id, algorithm, rotation_period_ms, rotation_period_msgs, history_visibility)
                VALUES (\(room.rawValue), \(settings.algorithm), \(settings.rotationPeriodMilliseconds), \(settings.rotationPeriodMessages),
                        \(settings.historyVisibility))
                ON CONFLICT (room_id) DO UPDATE SET algorithm = EXCLUDED.algorithm, rotation_period_ms = EXCLUDED.rotation_period_ms,
                    rotation_period_msgs = EXCLUDED.rotation_period_msgs, history_visibility = EXCLUDED.history_visibility
                """)
        }
        for member in changes.memberships {
            statements.append("""
                INSERT INTO sealbridge_room_members (room_id, user_id, membership)
                VALUES (\(member.roomID.rawValue), \(member.userID.rawValue), \(member.membership))
                ON CONFLICT (room_id, user_id) DO UPDATE SET membership = EXCLUDED.membership
                """)
        }
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
                INSERT INTO sealbridge_outbound_shares (session_id, user_id, device_id, curve25519, message_index, withheld_code)
                SELECT \(share.sessionID), \(share.userID.rawValue), \(share.deviceID.rawValue), \(share.curve25519),
                       \(share.messageIndex.map { Int64($0) }), \(share.withheldCode)
                WHERE EXISTS (SELECT 1 FROM sealbridge_outbound_group_sessions WHERE session_id = \(share.sessionID))
                ON CONFLICT (session_id, user_id, device_id) DO UPDATE SET curve25519 = EXCLUDED.curve25519,
                    message_index = EXCLUDED.message_index, withheld_code = EXCLUDED.withheld_code
                """)
        }
        for notice in changes.withheldNotices {
            statements.append("""
                INSERT INTO sealbridge_withheld_sessions (room_id, session_id, code, reason, sender_key)
                VALUES (\(notice.roomID.rawValue), \(notice.sessionID), \(notice.code), \(notice.reason), \(notice.senderKey))
                ON CONFLICT (room_id, session_id) DO UPDATE SET code = EXCLUDED.code, reason = EXCLUDED.reason, sender_key = EXCLUDED.sender_key
                """)
        }
        for recovery in changes.olmRecoveries {
            statements.append("""
                INSERT INTO sealbridge_olm_recoveries (local_user_id, remote_key, recovered_at)
                VALUES (\(recovery.localUserID.rawValue), \(recovery.remoteKey), \(recovery.at))
                ON CONFLICT (local_user_id, remote_key) DO UPDATE SET recovered_at = EXCLUDED.recovered_at
                """)
        }
        return statements
    }
}
