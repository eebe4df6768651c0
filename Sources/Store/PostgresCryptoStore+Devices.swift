import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Tracked users and their verified devices, and the recipients version that tells a send whether
/// anything that could add a recipient was committed.
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

    public func recipientsVersion() async throws -> Int64 {
        try await client.query("SELECT recipients_version FROM sealbridge_crypto_state WHERE id = 1").first?.decode(Int64.self, "recipients_version") ?? 0
    }

    /// Device tracking statements, and the recipients version bump when `changes` could add a recipient.
    static func deviceStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        var statements: [PostgresQuery] = []
        // One statement each for the users forgotten and the users tracked in the step, however many.
        if !changes.untrackedUsers.isEmpty {
            let users = PostgresTextArray(changes.untrackedUsers.sorted().map(\.rawValue))
            statements.append("DELETE FROM sealbridge_tracked_users WHERE user_id = ANY(\(users))")
        }
        if !changes.trackedUsers.isEmpty {
            let tracked = changes.trackedUsers.sorted(by: { $0.key < $1.key })
            let users = PostgresTextArray(tracked.map(\.key.rawValue)), outdated = PostgresTextArray(tracked.map { String($0.value) })
            statements.append("""
                INSERT INTO sealbridge_tracked_users (user_id, outdated)
                SELECT u, o::boolean FROM unnest(\(users), \(outdated)) AS t(u, o)
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
        if changes.changesRecipients {
            statements.append("UPDATE sealbridge_crypto_state SET recipients_version = recipients_version + 1 WHERE id = 1")
        }
        return statements
    }
}
