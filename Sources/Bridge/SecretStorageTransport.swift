import HomeserverClient
import MatrixCrypto
import MatrixModels

/// What identity recovery asks of the homeserver: a local user's account data (where secret storage
/// lives) and the master key the homeserver publishes for that user.
///
/// ``HomeserverClient`` is the real one; tests give a fake that can lie.
public protocol SecretStorageTransport: Sendable {
    /// The content of account data `type`, or nil when there is none.
    func accountData(_ type: String, of userID: UserID) async throws -> JSONValue?
    func setAccountData(_ type: String, content: JSONValue, of userID: UserID) async throws
    /// The master key the homeserver serves for `userID` (`/keys/query` as that user), or nil.
    func publishedMasterKey(of userID: UserID) async throws -> String?
}

extension HomeserverClient: SecretStorageTransport {
    public func publishedMasterKey(of userID: UserID) async throws -> String? {
        try PublishedMasterKey.masterKey(of: userID, in: try await queryKeys([userID], as: userID))
    }
}

extension SecretStorageTransport {
    /// The id of the user's default secret storage key, or nil when there is no secret storage
    /// (no `m.secret_storage.default_key`, or one emptied to `{}`).
    public func defaultSecretStorageKeyID(of userID: UserID) async throws -> String? {
        guard let content = try await accountData(SecretStorage.defaultKeyType, of: userID), content != [:] else { return nil }
        return try SecretStorage.defaultKeyID(from: content)
    }

    /// Checks `recoveryKey` against the user's default secret storage key and opens the three
    /// cross-signing seeds kept under it.
    ///
    /// - Throws: ``SecretStorageError``: `missing` when there is no secret storage or a secret is
    ///   absent, `wrongRecoveryKey`, `authenticationFailed`, `malformed`; or a homeserver error.
    public func crossSigningSeeds(of userID: UserID, recoveryKey: RecoveryKey) async throws -> CrossSigningSeeds {
        guard let id = try await defaultSecretStorageKeyID(of: userID) else {
            throw SecretStorageError(.missing, "\(userID) has no secret storage (no \(SecretStorage.defaultKeyType) account data)")
        }
        guard let description = try await accountData(SecretStorage.keyDescriptionType(id), of: userID) else {
            throw SecretStorageError(.missing, "\(userID)'s default secret storage key \(id) has no description")
        }
        let key = try SecretStorageKey(id: id, recoveryKey: recoveryKey, description: description)
        func secret(_ name: String) async throws -> JSONValue {
            guard let content = try await accountData(name, of: userID) else {
                throw SecretStorageError(.missing, "\(userID)'s secret storage holds no \(name)")
            }
            return content
        }
        return try SecretStorage.openCrossSigningSeeds(
            master: try await secret(SecretStorage.masterSecret), selfSigning: try await secret(SecretStorage.selfSigningSecret),
            userSigning: try await secret(SecretStorage.userSigningSecret), key: key)
    }

    /// Writes `seeds` into the user's secret storage under `key` and makes it the default key, in the
    /// order ``SecretStorage/crossSigningAccountData(_:key:)`` gives.
    public func storeCrossSigningSeeds(_ seeds: CrossSigningSeeds, of userID: UserID, key: SecretStorageKey) async throws {
        for entry in SecretStorage.crossSigningAccountData(seeds, key: key) {
            try await setAccountData(entry.type, content: entry.content, of: userID)
        }
    }
}
