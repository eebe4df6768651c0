import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// The ``CryptoStore`` on PostgreSQL.
///
/// ``save(_:on:)`` writes through the caller's connection, so crypto changes commit in the same
/// database transaction as the appservice txn id; ``save(_:)`` opens a transaction of its own.
/// Writes go out as one pipeline: one round trip for a whole transaction's changes. Reads and the
/// statements that write each concept live in the extension named for it (`+Olm`, `+GroupSessions`,
/// `+Parked`, `+Devices`, `+Rooms`, `+Outbound`, `+CrossSigning`, `+Identities`, `+HistoryBundles`).
public struct PostgresCryptoStore: CryptoStore {
    let client: PostgresClient
    /// Seals what is kept as raw bytes (parked events, pending to-device payloads).
    let cipher: StoreCipher
    /// Proves, in every write, that this instance owns the state; nil: no fencing (tests, tools).
    let fence: InstanceFence?

    public init(client: PostgresClient, cipher: StoreCipher, fence: InstanceFence? = nil) {
        self.client = client
        self.cipher = cipher
        self.fence = fence
    }

    public func account(userID: UserID) async throws -> StoredAccount? {
        guard let row = try await client.query(
            "SELECT device_id, pickle, device_keys_uploaded, fallback_rotated_at FROM sealbridge_crypto_accounts WHERE user_id = \(userID.rawValue)").first
        else { return nil }
        return StoredAccount(
            userID: userID, deviceID: try DeviceID(try row.decode(String.self, "device_id")),
            pickle: try row.decode(String.self, "pickle"), deviceKeysUploaded: try row.decode(Bool.self, "device_keys_uploaded"),
            fallbackRotatedAt: try row.decode(Date?.self, "fallback_rotated_at"))
    }

    public func accounts(userIDs: [UserID]) async throws -> [UserID: StoredAccount] {
        guard !userIDs.isEmpty else { return [:] }
        var found: [UserID: StoredAccount] = [:]
        for row in try await client.query("""
            SELECT user_id, device_id, pickle, device_keys_uploaded, fallback_rotated_at FROM sealbridge_crypto_accounts
            WHERE user_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(userIDs.map(\.rawValue))))))
            """)
        {
            let user = try UserID(try row.decode(String.self, "user_id"))
            found[user] = StoredAccount(
                userID: user, deviceID: try DeviceID(try row.decode(String.self, "device_id")),
                pickle: try row.decode(String.self, "pickle"), deviceKeysUploaded: try row.decode(Bool.self, "device_keys_uploaded"),
                fallbackRotatedAt: try row.decode(Date?.self, "fallback_rotated_at"))
        }
        return found
    }

    public func localDevices(after: UserID?, limit: Int) async throws -> [DeviceRef] {
        try await client.query("""
            SELECT user_id, device_id FROM sealbridge_crypto_accounts WHERE user_id > \(after?.rawValue ?? "")
            ORDER BY user_id LIMIT \(limit)
            """).map { DeviceRef(userID: try UserID(try $0.decode(String.self, "user_id")), deviceID: try DeviceID(try $0.decode(String.self, "device_id"))) }
    }

    public func accountStates(userIDs: [UserID]) async throws -> [UserID: LocalAccountState] {
        guard !userIDs.isEmpty else { return [:] }
        var found: [UserID: LocalAccountState] = [:]
        for row in try await client.query("""
            SELECT user_id, device_id, device_keys_uploaded, fallback_rotated_at FROM sealbridge_crypto_accounts
            WHERE user_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(userIDs.map(\.rawValue))))))
            """)
        {
            found[try UserID(try row.decode(String.self, "user_id"))] = LocalAccountState(
                deviceID: try DeviceID(try row.decode(String.self, "device_id")), deviceKeysUploaded: try row.decode(Bool.self, "device_keys_uploaded"),
                fallbackRotatedAt: try row.decode(Date?.self, "fallback_rotated_at"))
        }
        return found
    }

    public func localDeviceIDs(userIDs: [UserID]) async throws -> [UserID: DeviceID] {
        guard !userIDs.isEmpty else { return [:] }
        var found: [UserID: DeviceID] = [:]
        for row in try await client.query("""
            SELECT user_id, device_id FROM sealbridge_crypto_accounts
            WHERE user_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(userIDs.map(\.rawValue))))))
            """)
        {
            found[try UserID(try row.decode(String.self, "user_id"))] = try DeviceID(try row.decode(String.self, "device_id"))
        }
        return found
    }

    public func save(_ changes: CryptoChanges) async throws {
        guard !changes.isEmpty else { return }
        if let fence { _ = try fence.check() }
        try await client.withTransaction { try await save(changes, on: $0) }
    }

    /// Writes `changes` through `connection`, inside whatever transaction it has open.
    ///
    /// The statements are queued on the connection (``PostgresConnection/enqueue(_:)``): they go out
    /// with its next statement or with COMMIT, in one round trip, and a failure among them fails that
    /// call — so the transaction still commits all of them or none. Only the fence check is sent at once.
    /// With a fence, the first statement checks this instance's epoch (even for no changes: the
    /// transaction around it commits other state with it), and a stale epoch aborts everything.
    public func save(_ changes: CryptoChanges, on connection: PostgresConnection) async throws {
        // The epoch is proven at once (its row lock is then held until COMMIT, so a takeover waits for
        // this transaction); everything else is queued for the next round trip.
        if let fence { try await connection.execute(try fence.check()) }
        var statements: [PostgresQuery] = []
        for user in changes.discardedAccounts.sorted() {
            statements.append("DELETE FROM sealbridge_crypto_accounts WHERE user_id = \(user.rawValue)")
        }
        for account in changes.accounts {
            statements.append("""
                INSERT INTO sealbridge_crypto_accounts (user_id, device_id, pickle, device_keys_uploaded, fallback_rotated_at)
                VALUES (\(account.userID.rawValue), \(account.deviceID.rawValue), \(account.pickle), \(account.deviceKeysUploaded),
                        \(account.fallbackRotatedAt))
                ON CONFLICT (user_id) DO UPDATE SET device_id = EXCLUDED.device_id, pickle = EXCLUDED.pickle,
                    device_keys_uploaded = EXCLUDED.device_keys_uploaded, fallback_rotated_at = EXCLUDED.fallback_rotated_at
                """)
        }
        statements += Self.olmStatements(changes)
        statements += Self.groupSessionStatements(changes)
        statements += try parkedStatements(changes)
        statements += Self.deviceStatements(changes)
        statements += Self.identityStatements(changes)
        statements += Self.roomStatements(changes)
        statements += Self.outboundStatements(changes)
        statements += Self.crossSigningStatements(changes)
        statements += Self.keyRequestStatements(changes)
        statements += try historyBundleStatements(changes)
        try connection.enqueue(statements)
    }
}

/// The database unreachable, or this instance fenced out: the step waits, it does not fail a message.
extension PostgresError: StoreAvailabilityError {
    public var isStoreUnavailable: Bool { isUnavailable || isFencedOut }
}
