import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Rooms' encryption settings and members.
extension PostgresCryptoStore {
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

    static func roomStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
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
        return statements
    }
}
