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
        return try Self.roomEncryption(row)
    }

    public func rooms(_ roomIDs: [RoomID]) async throws -> [RoomID: RoomEncryption] {
        guard !roomIDs.isEmpty else { return [:] }
        var found: [RoomID: RoomEncryption] = [:]
        for row in try await client.query("""
            SELECT room_id, algorithm, rotation_period_ms, rotation_period_msgs, history_visibility FROM sealbridge_rooms
            WHERE room_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(roomIDs.map(\.rawValue))))))
            """) {
            found[try RoomID(try row.decode(String.self, "room_id"))] = try Self.roomEncryption(row)
        }
        return found
    }

    static func roomEncryption(_ row: PostgresRow) throws -> RoomEncryption {
        RoomEncryption(
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

    public func presentRooms(userIDs: [UserID]) async throws -> [UserID: [RoomID]] {
        guard !userIDs.isEmpty else { return [:] }
        var found: [UserID: [RoomID]] = [:]
        for row in try await client.query("""
            SELECT user_id, room_id FROM sealbridge_room_members
            WHERE user_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(userIDs.map(\.rawValue)))))) AND membership IN ('join', 'invite')
            ORDER BY user_id, room_id
            """) {
            found[try UserID(try row.decode(String.self, "user_id")), default: []].append(try RoomID(try row.decode(String.self, "room_id")))
        }
        return found
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
        // One statement for the step's memberships (a portal room being set up brings a hundred): the
        // last change of each member wins, as one statement by change would leave it, and is the only
        // one sent (an upsert may not touch a row twice).
        let members = RoomMemberKey.lastOfEach(changes.memberships, key: { RoomMemberKey(roomID: $0.roomID, userID: $0.userID) })
        if !members.isEmpty {
            let rooms = PostgresTextArray(members.map(\.roomID.rawValue)), users = PostgresTextArray(members.map(\.userID.rawValue))
            let memberships = PostgresTextArray(members.map(\.membership))
            statements.append("""
                INSERT INTO sealbridge_room_members (room_id, user_id, membership)
                SELECT r, u, m FROM unnest(\(rooms), \(users), \(memberships)) AS t(r, u, m)
                ON CONFLICT (room_id, user_id) DO UPDATE SET membership = EXCLUDED.membership
                """)
        }
        return statements
    }
}

/// A member of a room: what a membership or an invite row is unique by.
struct RoomMemberKey: Hashable {
    var roomID: RoomID
    var userID: UserID

    /// The last of `items` for each key, in the order of those last ones.
    static func lastOfEach<Item>(_ items: [Item], key: (Item) -> RoomMemberKey) -> [Item] {
        var seen = Set<RoomMemberKey>()
        var kept: [Item] = []
        for item in items.reversed() where seen.insert(key(item)).inserted { kept.append(item) }
        return kept.reversed()
    }
}
