import MatrixModels
import Postgres

/// A local user's device as the `puppets` command lists it.
public struct LocalDeviceSummary: Sendable, Equatable {
    public var userID: UserID
    public var deviceID: DeviceID
    public var deviceKeysUploaded: Bool
}

extension PostgresCryptoStore {
    /// How many local users other than `bot` have a device.
    public func puppetCount(excluding bot: UserID) async throws -> Int {
        try await client.query("""
            SELECT count(*) AS n FROM sealbridge_crypto_accounts WHERE user_id <> \(bot.rawValue)
            """).first?.decode(Int.self, "n") ?? 0
    }

    /// A page of the local users other than `bot` with a device, by user id.
    public func puppets(excluding bot: UserID, offset: Int, limit: Int) async throws -> [LocalDeviceSummary] {
        try await client.query("""
            SELECT user_id, device_id, device_keys_uploaded FROM sealbridge_crypto_accounts WHERE user_id <> \(bot.rawValue)
            ORDER BY user_id LIMIT \(limit) OFFSET \(offset)
            """).map(Self.deviceSummary)
    }

    /// One local user's device; nil when it has none.
    public func deviceSummary(of user: UserID) async throws -> LocalDeviceSummary? {
        try await client.query("""
            SELECT user_id, device_id, device_keys_uploaded FROM sealbridge_crypto_accounts WHERE user_id = \(user.rawValue)
            """).first.map(Self.deviceSummary)
    }

    static func deviceSummary(_ row: PostgresRow) throws -> LocalDeviceSummary {
        LocalDeviceSummary(
            userID: try UserID(try row.decode(String.self, "user_id")), deviceID: try DeviceID(try row.decode(String.self, "device_id")),
            deviceKeysUploaded: try row.decode(Bool.self, "device_keys_uploaded"))
    }
}
