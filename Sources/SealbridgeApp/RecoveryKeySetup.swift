import Bridge
import Foundation
import HomeserverClient
import MatrixCrypto
import MatrixModels
import Postgres
import SealbridgeConfig
import Store

/// `sealbridge recovery-key`: keeps the bot's cross-signing seeds in its server-side secret storage,
/// so a lost database does not cost the bot its identity.
///
/// Safe beside a running daemon: it only reads the database (the sealed seeds, never crypto state
/// it could fork) and writes the bot's account data on the homeserver, which the daemon does not
/// write. No fencing epoch or instance lock is taken.
public enum RecoveryKeySetup {
    /// What was written.
    public struct Outcome: Sendable {
        /// The key the secrets are now stored under.
        public var recoveryKey: RecoveryKey
        /// Whether the key is new (print it) or came from the operator's file.
        public var generated: Bool
        /// The secret storage key id in the bot's account data.
        public var keyID: String
        /// The bot's master key, whose seeds were stored.
        public var masterKey: String
        /// Worth telling the operator (not errors).
        public var notes: [String]
    }

    /// Stores the bot's cross-signing seeds in its secret storage.
    ///
    /// - Parameters:
    ///   - keyText: A recovery key the operator already has (`--key-file`); nil makes a new one.
    ///   - rotate: Replace existing secret storage (the previous recovery key stops opening it).
    /// - Throws: ``DaemonError``: `configuration` when there is nothing to store yet, storage exists
    ///   without `rotate`, or the key text is not a recovery key; `databaseUnavailable`;
    ///   `homeserverUnavailable`.
    public static func run(configuration: SealbridgeConfiguration, keyText: String?, rotate: Bool) async throws -> Outcome {
        guard configuration.encryption.enabled, configuration.encryption.crossSigning.enabled else {
            throw DaemonError(
                code: .configuration,
                message: "encryption.cross_signing.enabled is false (or encryption is off): the bot has no cross-signing identity to keep")
        }
        let cipher: StoreCipher
        do {
            cipher = try StoreCipher(secret: configuration.encryption.pickleKey ?? "", previous: configuration.encryption.previousPickleKeys)
        } catch {
            throw DaemonError(code: .configuration, message: "encryption.pickle_key: \(error.message)")
        }
        var given: RecoveryKey?
        if let keyText {
            do {
                given = try RecoveryKey(keyText)
            } catch {
                throw DaemonError(code: .configuration, message: "--key-file: \(error.message)")
            }
        }
        let bot: UserID
        do {
            bot = try UserID(configuration.botUserID)
        } catch {
            throw DaemonError(code: .configuration, message: "the bot's user id: \(error)")
        }
        let client = PostgresClient(configuration: PostgresConfiguration(connectionString: configuration.database.uri, poolSize: 2))
        let seeds: CrossSigningSeeds?
        do {
            let machine = CryptoMachine(store: PostgresCryptoStore(client: client, cipher: cipher), cipher: cipher)
            seeds = try await machine.crossSigningSeeds(of: bot)
            await client.close()
        } catch let error as PostgresError where error.code == .connectionFailed {
            await client.close()
            throw DaemonError(code: .databaseUnavailable, message: error.message)
        } catch {
            await client.close()
            throw DaemonError(code: .configuration, message: "cannot read the bot's cross-signing identity from the database: \(error)")
        }
        guard var seeds else {
            throw DaemonError(
                code: .configuration,
                message: "the database holds no cross-signing identity for \(bot) yet: start the daemon once (it makes and publishes one), then run this again")
        }
        defer { seeds.wipe() }
        let keys: CrossSigningPublicKeys
        do {
            keys = try seeds.publicKeys()
        } catch {
            throw DaemonError(code: .configuration, message: "the stored cross-signing seeds are unusable: \(error.message)")
        }

        let homeserver = HomeserverClient(baseURL: configuration.homeserver.url, asToken: configuration.appservice.asToken ?? "")
        return try await homeserverStep(bot) {
            var notes: [String] = []
            let published = try await homeserver.publishedMasterKey(of: bot)
            if let published, published != keys.master {
                throw DaemonError(
                    code: .configuration,
                    message: "the homeserver serves another master key for \(bot) (\(published)) than the database holds (\(keys.master)); not storing an identity nobody sees")
            }
            if published == nil { notes.append("the homeserver does not serve \(bot)'s master key yet; the daemon publishes it") }

            var key: SecretStorageKey?
            if let existing = try await homeserver.defaultSecretStorageKeyID(of: bot) {
                // The operator's own key for the existing storage: write the secrets again under it
                // (after an identity reset, say). Anything else needs --rotate.
                if let given, let description = try await homeserver.accountData(SecretStorage.keyDescriptionType(existing), of: bot),
                    let same = try? SecretStorageKey(id: existing, recoveryKey: given, description: description)
                {
                    key = same
                    notes.append("secret storage key \(existing) already exists and the given recovery key opens it: its secrets were written again")
                } else if !rotate {
                    throw DaemonError(
                        code: .configuration,
                        message: "\(bot) already has secret storage (key \(existing)); run with --rotate to replace it (the previous recovery key will no longer restore the identity)")
                } else {
                    notes.append("replaced secret storage key \(existing): the previous recovery key no longer restores the identity")
                }
            }
            let chosen = key ?? given.map { SecretStorageKey.generate(recoveryKey: $0) } ?? SecretStorageKey.generate()
            try await homeserver.storeCrossSigningSeeds(seeds, of: bot, key: chosen)
            // Read it back as a restore would: what was written must open with the key.
            var check = try await homeserver.crossSigningSeeds(of: bot, recoveryKey: chosen.recoveryKey)
            defer { check.wipe() }
            guard check == seeds else {
                throw DaemonError(code: .configuration, message: "secret storage read back different seeds than were written; run again")
            }
            return Outcome(recoveryKey: chosen.recoveryKey, generated: given == nil, keyID: chosen.id, masterKey: keys.master, notes: notes)
        }
    }

    /// Reads `encryption.recovery_key(_file)` as a recovery key, so a typo is found by `check-config`
    /// and at startup rather than on the day the database is lost.
    ///
    /// - Returns: The key, or nil when none is configured.
    /// - Throws: ``DaemonError`` `configuration` naming the check that failed, never the key.
    public static func configuredKey(_ configuration: SealbridgeConfiguration) throws -> RecoveryKey? {
        guard let text = configuration.encryption.recoveryKey else { return nil }
        do {
            return try RecoveryKey(text)
        } catch {
            throw DaemonError(code: .configuration, message: "encryption.recovery_key(_file): \(error.message)")
        }
    }

    /// Maps homeserver and secret storage failures to ``DaemonError``s an operator can act on.
    static func homeserverStep<T>(_ bot: UserID, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DaemonError {
            throw error
        } catch let error as HomeserverError where error.status == 0 || error.status >= 500 {
            throw DaemonError(code: .homeserverUnavailable, message: "the homeserver did not answer: \(error)")
        } catch let error as HomeserverError {
            throw DaemonError(code: .configuration, message: "the homeserver refused: \(error) (is the registration loaded and as_token right?)")
        } catch let error as SecretStorageError {
            throw DaemonError(code: .configuration, message: "\(bot)'s secret storage: \(error.message)")
        } catch {
            throw DaemonError(code: .configuration, message: "\(error)")
        }
    }
}
