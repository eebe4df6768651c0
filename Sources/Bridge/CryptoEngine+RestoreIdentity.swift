import Logging
import MatrixCrypto
import MatrixModels

/// What ``CryptoEngine/restoreIdentity(of:from:recoveryKey:resetIdentity:)`` found and did.
public enum IdentityRestoreOutcome: Sendable, Equatable {
    /// The database holds the user's identity; nothing was asked of the homeserver.
    case inDatabase
    /// The homeserver has no identity for the user: a new one may be made.
    case noneOnHomeserver
    /// The identity was restored from secret storage: the same master key the homeserver serves.
    case restored(masterKey: String)
    /// The homeserver has an identity the database lacks and the operator asked for a new one
    /// (`--reset-identity`): the caller makes it, replacing `masterKey` (peers will see the change).
    case resetRequested(replacing: String)
}

/// Why the daemon will not make or restore an identity without the operator: the database lost the
/// identity the homeserver still serves, and there is no usable recovery key.
public struct IdentityRestoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The secret storage problem behind the refusal, if one (wrong key, missing storage, …).
    public var cause: SecretStorageError?
    public var description: String { message }
}

extension CryptoEngine {
    /// Makes sure a lost database does not silently become a new cross-signing identity.
    ///
    /// Contract: call once at startup, before anything may create `userID`'s identity (its device,
    /// the identity creation, the backfill). When the database has no identity for `userID` but the
    /// homeserver serves a master key, the identity is restored from secret storage with
    /// `recoveryKey`: the seeds are opened, checked to make exactly that master key, and committed
    /// (fenced, under the crypto lock); nothing new is uploaded by this call.
    ///
    /// - Parameters:
    ///   - userID: The bot (puppets have no secret storage).
    ///   - homeserver: Account data and the published master key.
    ///   - recoveryKey: From `encryption.recovery_key(_file)`, if configured.
    ///   - resetIdentity: The operator's `--reset-identity`: without a usable key, answer
    ///     ``IdentityRestoreOutcome/resetRequested(replacing:)`` instead of refusing.
    /// - Returns: What was found and done; the caller makes a new identity only for
    ///   `noneOnHomeserver` and `resetRequested`.
    /// - Throws: ``IdentityRestoreError`` when the operator must act (give the recovery key, or
    ///   `--reset-identity`); homeserver and store errors as they come (retry those).
    public func restoreIdentity(
        of userID: UserID, from homeserver: any SecretStorageTransport, recoveryKey: RecoveryKey?, resetIdentity: Bool
    ) async throws -> IdentityRestoreOutcome {
        if try await store.crossSigningIdentity(userID: userID) != nil { return .inDatabase }
        guard let published = try await homeserver.publishedMasterKey(of: userID) else { return .noneOnHomeserver }

        let problem: SecretStorageError
        if let recoveryKey {
            do {
                var seeds = try await homeserver.crossSigningSeeds(of: userID, recoveryKey: recoveryKey)
                defer { seeds.wipe() }
                let restored = try await step { () -> (CryptoChanges, Bool) in
                    // Another task may have stored an identity meanwhile; never overwrite one.
                    if try await store.crossSigningIdentity(userID: userID) != nil { return (CryptoChanges(), false) }
                    return (try await machine.importCrossSigningIdentity(userID: userID, seeds: seeds, expectedMaster: published), true)
                }
                if restored { logger.notice("restored the cross-signing identity from secret storage", metadata: ["user": "\(userID)", "master_key": "\(published)"]) }
                return restored ? .restored(masterKey: published) : .inDatabase
            } catch let error as SecretStorageError {
                problem = error
            } catch let error as CryptoError where error.code == .invalidCrossSigning {
                problem = SecretStorageError(
                    .malformed,
                    "secret storage holds another identity than the master key the homeserver serves (\(published)); was the identity reset without running `sealbridge recovery-key --rotate`?")
            }
        } else {
            problem = SecretStorageError(.missing, "no recovery key is configured")
        }
        if resetIdentity {
            logger.warning("--reset-identity: making a new cross-signing identity; every user will see that this identity changed", metadata: [
                "user": "\(userID)", "replacing": "\(published)", "reason": "\(problem.message)",
            ])
            return .resetRequested(replacing: published)
        }
        throw IdentityRestoreError(
            message: """
                the database holds no cross-signing identity for \(userID), but the homeserver serves one (master key \(published)) \
                and it cannot be restored: \(problem.message). Either set encryption.recovery_key_file to the recovery key that \
                `sealbridge recovery-key` printed, or start once with `sealbridge run --reset-identity` to make a new identity \
                (every user will then see a warning that \(userID)'s identity changed)
                """,
            cause: problem)
    }
}
