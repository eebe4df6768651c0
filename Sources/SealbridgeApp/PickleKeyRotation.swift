import AppService
import Bridge
import Foundation
import Logging
import MatrixCrypto
import Postgres
import SealbridgeConfig
import Store

/// `sealbridge rotate-pickle-key`: moves every pickle and sealed row to the configured pickle key,
/// online, so that an earlier key can be dropped (docs/rotation.md).
///
/// The target must be the key the configuration writes with (`encryption.pickle_key[_file]`), and
/// the daemon must have been restarted with it: otherwise the daemon could not read the rewritten
/// rows, or would keep writing under the old key. The command checks both (the configuration, and
/// the key id the last started daemon registered) and refuses with the steps to follow.
public enum PickleKeyRotation {
    /// Every column that holds a pickle or sealed bytes, in every module.
    public static let columns: [EncryptedColumn] = PostgresCryptoStore.encryptedColumns + Outbox.encryptedColumns + [
        EncryptedColumn(
            table: "sealbridge_quarantine", column: "sealed", key: [.init("id", type: "bigint")], contextColumns: ["txn_id"],
            content: .sealed { TransactionQuarantine.context($0[0]) })
    ]

    /// The first migration that has ``StoreKeyRegistry``'s table.
    static let registryVersion = 33

    /// Re-encrypts every row not yet under `newKey`.
    ///
    /// - Parameters:
    ///   - newKey: The key the operator means to rotate to (`--new-key-file`); must be the configured one.
    ///   - pause: Waited between batches, to spread the load on a busy database.
    ///   - report: Receives one line per batch and per table (never a key or a value).
    /// - Returns: How many rows are left under another key (0: the earlier keys can be dropped).
    /// - Throws: ``DaemonError``: `configuration` when the key or the daemon is not ready for it;
    ///   `databaseUnavailable`.
    public static func run(
        configuration: SealbridgeConfiguration, newKey: String, batchSize: Int, pause: Duration = .zero,
        report: @Sendable (String) -> Void
    ) async throws -> Int {
        let cipher = try configuredCipher(configuration)
        let target: StoreCipher
        do {
            target = try StoreCipher(secret: newKey)
        } catch {
            throw DaemonError(code: .configuration, message: "--new-key-file: \(error.message)")
        }
        guard target.keyID == cipher.keyID else {
            throw DaemonError(code: .configuration, message: """
                --new-key-file holds key id \(target.keyID), but this configuration writes with key id \(cipher.keyID). \
                First set encryption.pickle_key_file to the new key, list the old one in encryption.previous_pickle_key_files, \
                restart the daemon (it then writes under the new key and reads both), and run this command with that configuration.
                """)
        }
        return try await withDatabase(configuration) { client in
            let registry = StoreKeyRegistry(client: client)
            if let writer = try await registry.latestWriter(), writer != cipher.keyID {
                throw DaemonError(code: .configuration, message: """
                    the daemon last started writing under key id \(writer), not \(cipher.keyID): restart it with this configuration \
                    (encryption.pickle_key_file: the new key; previous_pickle_key_files: the old ones) before rotating, \
                    or the rows it writes meanwhile stay under the old key
                    """)
            }
            try await registry.registerRotation(cipher)
            let started = try await registry.now()
            let rotation = StoreKeyRotation(client: client, cipher: cipher)
            var failed = 0
            for column in columns {
                let before = try await rotation.progress(column)
                var done = before.total - before.left, cursor: [String]? = nil, changed = 0
                report("\(column.name): \(done)/\(before.total) under key \(cipher.keyID)")
                guard before.left > 0 else { continue }
                repeat {
                    let batch = try await rotation.batch(column, after: cursor, limit: batchSize)
                    done += batch.rewritten
                    failed += batch.failed
                    changed += batch.changed
                    cursor = batch.cursor
                    report("\(column.name): \(done)/\(before.total)")
                    if cursor != nil && pause > .zero { try await Task.sleep(for: pause) }
                } while cursor != nil
                if changed > 0 { report("\(column.name): \(changed) rows changed by the daemon meanwhile (already under the new key)") }
            }
            var left = 0
            for column in columns {
                let progress = try await rotation.progress(column)
                if progress.left > 0 { report("\(column.name): \(progress.left) rows left under other keys") }
                left += progress.left
            }
            if failed > 0 { report("\(failed) rows did not open with any configured key and were left as they are (`--check` lists the tables)") }
            if left == 0 {
                let retired = try await registry.retire(except: cipher.keyID, unless: started)
                if !retired.isEmpty { report("no row is under key ids \(retired.joined(separator: ", ")) any more") }
            }
            let journaled = journalEntries(configuration.appservice.journalPath)
            if journaled > 0 {
                report("""
                    the journal (\(configuration.appservice.journalPath)) holds \(journaled) entries, sealed under whichever key was \
                    current: keep previous_pickle_key_files until the daemon has applied them (the directory is empty)
                    """)
            }
            return left
        }
    }

    /// Opens every row with the configured keys, writing nothing (`--check`).
    ///
    /// - Returns: Per column, how many rows opened and how many did not.
    public static func check(
        configuration: SealbridgeConfiguration, batchSize: Int, report: @Sendable (String) -> Void
    ) async throws -> (opened: Int, failed: Int) {
        let cipher = try configuredCipher(configuration)
        return try await withDatabase(configuration) { client in
            let rotation = StoreKeyRotation(client: client, cipher: cipher)
            var opened = 0, failed = 0
            for column in columns {
                let result = try await rotation.verify(column, batchSize: batchSize)
                let progress = try await rotation.progress(column)
                report("\(column.name): \(result.opened) open, \(result.failed) do not; \(progress.left) not under key \(cipher.keyID)")
                opened += result.opened
                failed += result.failed
            }
            return (opened, failed)
        }
    }

    /// At startup: refuses when a key id listed in the database is not configured, then records the
    /// key this daemon writes under.
    static func checkKeyring(_ cipher: StoreCipher, client: PostgresClient, logger: Logger) async throws {
        let registry = StoreKeyRegistry(client: client)
        let missing = try await registry.missing(from: cipher)
        guard missing.isEmpty else {
            throw DaemonError(code: .configuration, message: "\(missingKeys(missing, cipher: cipher)): \(missingKeysFix)")
        }
        try await registry.registerWriter(cipher)
        logger.notice("store keys", metadata: ["writes_under": "\(cipher.keyID)", "also_reads": "\(cipher.keyIDs.dropFirst().joined(separator: ","))"])
    }

    /// What a start refuses, and doctor reports, when the database lists key ids the keyring lacks.
    static func missingKeys(_ missing: [String], cipher: StoreCipher) -> String {
        "rows are stored under pickle key id \(missing.joined(separator: ", ")), which this configuration does not hold (it has \(cipher.keyIDs.joined(separator: ", ")))"
    }

    static let missingKeysFix = "add that key's file to encryption.previous_pickle_key_files (docs/rotation.md)"

    /// Transactions journaled while the database was unavailable and not applied yet (files are
    /// not rewritten: the daemon applies and deletes them, reading them with the keyring).
    static func journalEntries(_ path: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".txn") }.count
    }

    static func configuredCipher(_ configuration: SealbridgeConfiguration) throws -> StoreCipher {
        guard configuration.encryption.enabled else {
            throw DaemonError(code: .configuration, message: "encryption.enabled is false: nothing is stored under a pickle key")
        }
        do {
            return try StoreCipher(secret: configuration.encryption.pickleKey ?? "", previous: configuration.encryption.previousPickleKeys)
        } catch {
            throw DaemonError(code: .configuration, message: "encryption.pickle_key: \(error.message)")
        }
    }

    static func withDatabase<T>(_ configuration: SealbridgeConfiguration, _ body: (PostgresClient) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: PostgresConfiguration(connectionString: configuration.database.uri, poolSize: 2))
        do {
            let applied = try await Migrator.appliedVersions(on: client)
            guard applied.contains(registryVersion) else {
                throw DaemonError(code: .configuration, message: "the database is not migrated to version \(registryVersion): run `sealbridge migrate` first")
            }
            let result = try await body(client)
            await client.close()
            return result
        } catch let error as PostgresError where error.code == .connectionFailed {
            await client.close()
            throw DaemonError(code: .databaseUnavailable, message: error.message)
        } catch {
            await client.close()
            throw error
        }
    }
}
