import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// MSC4268 history bundle pointers waiting for their invite, and local users' inviters. The file
/// pointer holds the bundle's AES key: sealed, like parked events.
extension PostgresCryptoStore {
    static func historyBundleContext(_ id: String) -> String { "history bundle \(id)" }

    public func historyBundles(receivedBefore: Date, limit: Int) async throws -> [PendingHistoryBundle] {
        try await client.query("""
            SELECT id, recipient_user_id, recipient_device_id, room_id, sender_user_id, sender_device_id, sender_key, sender_ed25519,
                   sealed, received_at
            FROM sealbridge_history_bundles b
            WHERE received_at < \(receivedBefore) OR EXISTS (
                SELECT 1 FROM sealbridge_room_invites i WHERE i.room_id = b.room_id AND i.user_id = b.recipient_user_id)
            ORDER BY received_at, id LIMIT \(limit)
            """).map { row in
            let id = try row.decode(String.self, "id")
            let file = try JSONValue.parse(try cipher.open(try row.decode([UInt8].self, "sealed"), context: Self.historyBundleContext(id)))
            return PendingHistoryBundle(
                id: id,
                recipient: DeviceRef(
                    userID: try UserID(try row.decode(String.self, "recipient_user_id")),
                    deviceID: try DeviceID(try row.decode(String.self, "recipient_device_id"))),
                roomID: try RoomID(try row.decode(String.self, "room_id")), sender: try UserID(try row.decode(String.self, "sender_user_id")),
                senderDeviceID: try DeviceID(try row.decode(String.self, "sender_device_id")), senderKey: try row.decode(String.self, "sender_key"),
                senderEd25519: try row.decode(String.self, "sender_ed25519"), file: try EncryptedFile(json: file),
                receivedAt: try row.decode(Date.self, "received_at"))
        }
    }

    public func roomInvite(roomID: RoomID, userID: UserID) async throws -> RoomInvite? {
        guard let row = try await client.query("""
            SELECT inviter, invited_at FROM sealbridge_room_invites WHERE room_id = \(roomID.rawValue) AND user_id = \(userID.rawValue)
            """).first
        else { return nil }
        return RoomInvite(
            roomID: roomID, userID: userID, inviter: try UserID(try row.decode(String.self, "inviter")), invitedAt: try row.decode(Date.self, "invited_at"))
    }

    public func expireHistoryBundles(before: Date) async throws -> Int {
        // Fenced like every other write; small batches, so no long row locks against transactions.
        let bundles = try await fenced { connection in
            try await connection.execute("""
                DELETE FROM sealbridge_history_bundles WHERE id IN (
                    SELECT id FROM sealbridge_history_bundles WHERE received_at < \(before) LIMIT 1000)
                """)
        }
        let invites = try await fenced { connection in
            try await connection.execute("""
                DELETE FROM sealbridge_room_invites WHERE (room_id, user_id) IN (
                    SELECT room_id, user_id FROM sealbridge_room_invites WHERE invited_at < \(before) LIMIT 1000)
                """)
        }
        return bundles + invites
    }

    func historyBundleStatements(_ changes: CryptoChanges) throws -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        // One statement for the step's invites; the last invite of a user into a room wins.
        let invites = RoomMemberKey.lastOfEach(changes.roomInvites, key: { RoomMemberKey(roomID: $0.roomID, userID: $0.userID) })
        if !invites.isEmpty {
            let rooms = PostgresTextArray(invites.map(\.roomID.rawValue)), users = PostgresTextArray(invites.map(\.userID.rawValue))
            let inviters = PostgresTextArray(invites.map(\.inviter.rawValue))
            // Seconds since 1970 as text: PostgreSQL keeps microseconds, finer than the store's other times.
            let times = PostgresTextArray(invites.map { String($0.invitedAt.timeIntervalSince1970) })
            statements.append("""
                INSERT INTO sealbridge_room_invites (room_id, user_id, inviter, invited_at)
                SELECT r, u, i, to_timestamp(a::double precision) FROM unnest(\(rooms), \(users), \(inviters), \(times)) AS t(r, u, i, a)
                ON CONFLICT (room_id, user_id) DO UPDATE SET inviter = EXCLUDED.inviter, invited_at = EXCLUDED.invited_at
                """)
        }
        for id in changes.releasedHistoryBundles.sorted() {
            statements.append("DELETE FROM sealbridge_history_bundles WHERE id = \(id)")
        }
        for bundle in changes.historyBundles {
            let sealed = try cipher.seal(bundle.file.json.serialized(), context: Self.historyBundleContext(bundle.id))
            // A newer pointer from the same sender for the same room and recipient replaces the older.
            statements.append("""
                INSERT INTO sealbridge_history_bundles (id, recipient_user_id, recipient_device_id, room_id, sender_user_id, sender_device_id,
                    sender_key, sender_ed25519, sealed, received_at)
                VALUES (\(bundle.id), \(bundle.recipient.userID.rawValue), \(bundle.recipient.deviceID.rawValue), \(bundle.roomID.rawValue),
                        \(bundle.sender.rawValue), \(bundle.senderDeviceID.rawValue), \(bundle.senderKey), \(bundle.senderEd25519), \(sealed),
                        \(bundle.receivedAt))
                ON CONFLICT (recipient_user_id, room_id, sender_user_id) DO UPDATE SET id = EXCLUDED.id,
                    recipient_device_id = EXCLUDED.recipient_device_id, sender_device_id = EXCLUDED.sender_device_id,
                    sender_key = EXCLUDED.sender_key, sender_ed25519 = EXCLUDED.sender_ed25519, sealed = EXCLUDED.sealed,
                    received_at = EXCLUDED.received_at
                """)
        }
        return statements
    }
}
