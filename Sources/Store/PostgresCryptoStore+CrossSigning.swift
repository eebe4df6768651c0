import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Local users' own cross-signing identities.
extension PostgresCryptoStore {
    public func crossSigningIdentity(userID: UserID) async throws -> StoredCrossSigningIdentity? {
        guard let row = try await client.query("""
            SELECT master_key, self_signing_key, user_signing_key, sealed_seeds, published, signed_device_id
            FROM sealbridge_cross_signing_identities WHERE user_id = \(userID.rawValue)
            """).first
        else { return nil }
        return StoredCrossSigningIdentity(
            userID: userID,
            keys: CrossSigningPublicKeys(
                master: try row.decode(String.self, "master_key"), selfSigning: try row.decode(String.self, "self_signing_key"),
                userSigning: try row.decode(String.self, "user_signing_key")),
            sealedSeeds: try row.decode([UInt8].self, "sealed_seeds"), published: try row.decode(Bool.self, "published"),
            signedDeviceID: try row.decode(String?.self, "signed_device_id").map { try DeviceID($0) })
    }

    public func crossSigningBacklog(after: UserID?, limit: Int) async throws -> [UserID] {
        try await client.query("""
            SELECT a.user_id FROM sealbridge_crypto_accounts a
            LEFT JOIN sealbridge_cross_signing_identities i ON i.user_id = a.user_id
            WHERE a.user_id > \(after?.rawValue ?? "")
              AND (i.user_id IS NULL OR NOT i.published OR i.signed_device_id IS DISTINCT FROM a.device_id)
            ORDER BY a.user_id LIMIT \(limit)
            """).map { try UserID(try $0.decode(String.self, "user_id")) }
    }

    public func crossSigningProgress() async throws -> CrossSigningProgress {
        guard let row = try await client.query("""
            SELECT count(*) AS devices,
                   count(*) FILTER (WHERE i.published AND i.signed_device_id = a.device_id) AS complete
            FROM sealbridge_crypto_accounts a LEFT JOIN sealbridge_cross_signing_identities i ON i.user_id = a.user_id
            """).first
        else { return CrossSigningProgress(devices: 0, complete: 0) }
        return CrossSigningProgress(devices: Int(try row.decode(Int64.self, "devices")), complete: Int(try row.decode(Int64.self, "complete")))
    }

    static func crossSigningStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        changes.crossSigningIdentities.map { identity in
            """
            INSERT INTO sealbridge_cross_signing_identities
                (user_id, master_key, self_signing_key, user_signing_key, sealed_seeds, published, signed_device_id, updated_at)
            VALUES (\(identity.userID.rawValue), \(identity.keys.master), \(identity.keys.selfSigning), \(identity.keys.userSigning),
                    \(identity.sealedSeeds), \(identity.published), \(identity.signedDeviceID?.rawValue), now())
            ON CONFLICT (user_id) DO UPDATE SET master_key = EXCLUDED.master_key, self_signing_key = EXCLUDED.self_signing_key,
                user_signing_key = EXCLUDED.user_signing_key, sealed_seeds = EXCLUDED.sealed_seeds, published = EXCLUDED.published,
                signed_device_id = EXCLUDED.signed_device_id, updated_at = now()
            """
        }
    }
}
