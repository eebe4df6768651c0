import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Remote users' cross-signing identities: the pinned master key, the current keys, the devices they
/// sign and an admin's vouch (migration 17).
extension PostgresCryptoStore {
    public func userIdentities(_ userIDs: [UserID]) async throws -> [UserID: StoredUserIdentity] {
        guard !userIDs.isEmpty else { return [:] }
        var found: [UserID: StoredUserIdentity] = [:]
        for row in try await client.query("""
            SELECT user_id, pinned_master_key, master_key, self_signing_key, user_signing_key, cross_signed_devices, vouched_master_key,
                   signed_by_user_signing_key
            FROM sealbridge_user_identities
            WHERE user_id = ANY(ARRAY(SELECT jsonb_array_elements_text(\(Self.textArray(userIDs.map(\.rawValue))))))
            """) {
            let user = try UserID(try row.decode(String.self, "user_id"))
            found[user] = StoredUserIdentity(
                userID: user, pinnedMasterKey: try row.decode(String.self, "pinned_master_key"),
                masterKey: try row.decode(String?.self, "master_key"), selfSigningKey: try row.decode(String?.self, "self_signing_key"),
                userSigningKey: try row.decode(String?.self, "user_signing_key"),
                crossSignedDevices: try Self.deviceKeys(try row.decode(PostgresJSONB.self, "cross_signed_devices")),
                vouchedMasterKey: try row.decode(String?.self, "vouched_master_key"),
                signedByUserSigningKey: try row.decode(String?.self, "signed_by_user_signing_key"))
        }
        return found
    }

    static func identityStatements(_ changes: CryptoChanges) -> [PostgresQuery] {
        changes.userIdentities.sorted(by: { $0.key < $1.key }).map { user, identity in
            let devices = JSONValue.object(Dictionary(uniqueKeysWithValues: identity.crossSignedDevices.map { ($0.key.rawValue, JSONValue.string($0.value)) }))
            return """
                INSERT INTO sealbridge_user_identities (user_id, pinned_master_key, master_key, self_signing_key, user_signing_key,
                    cross_signed_devices, vouched_master_key, signed_by_user_signing_key, updated_at)
                VALUES (\(user.rawValue), \(identity.pinnedMasterKey), \(identity.masterKey), \(identity.selfSigningKey),
                        \(identity.userSigningKey), \(PostgresJSONB(devices.serializedString())), \(identity.vouchedMasterKey),
                        \(identity.signedByUserSigningKey), now())
                ON CONFLICT (user_id) DO UPDATE SET pinned_master_key = EXCLUDED.pinned_master_key, master_key = EXCLUDED.master_key,
                    self_signing_key = EXCLUDED.self_signing_key, user_signing_key = EXCLUDED.user_signing_key,
                    cross_signed_devices = EXCLUDED.cross_signed_devices, vouched_master_key = EXCLUDED.vouched_master_key,
                    signed_by_user_signing_key = EXCLUDED.signed_by_user_signing_key, updated_at = now()
                """
        }
    }

    /// `{device id: Ed25519 key}` as stored; a row that does not parse is a damaged store.
    static func deviceKeys(_ stored: PostgresJSONB) throws -> [DeviceID: String] {
        guard let object = try JSONValue.parse(stored.json).objectValue else {
            throw CryptoError(code: .storeCorrupted, message: "cross_signed_devices is not an object")
        }
        var devices: [DeviceID: String] = [:]
        for (id, key) in object {
            guard let key = key.stringValue else { throw CryptoError(code: .storeCorrupted, message: "cross_signed_devices holds a non-string key") }
            devices[try DeviceID(id)] = key
        }
        return devices
    }
}
