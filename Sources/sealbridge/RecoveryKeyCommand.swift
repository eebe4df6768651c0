import ArgumentParser
import Foundation
import SealbridgeApp

/// `sealbridge recovery-key`: stores the bot's cross-signing keys in its secret storage and prints
/// the recovery key that restores them.
struct RecoveryKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recovery-key",
        abstract: "Keep the bot's cross-signing identity in secret storage; print its recovery key once.",
        discussion: """
            Reads the bot's cross-signing keys from the database (read only: safe while the daemon runs), \
            encrypts them into the bot's server-side secret storage (m.secret_storage.v1.aes-hmac-sha2) and \
            prints the recovery key on standard output, once. Give that key to `sealbridge run` as \
            encryption.recovery_key_file to restore the same identity into an empty database. \
            With --key-file the secrets are stored under a key you already hold and nothing is printed.
            """)

    @OptionGroup var options: ConfigOption

    @Flag(help: "Replace existing secret storage; the previous recovery key stops working.")
    var rotate = false

    @Option(help: ArgumentHelp("Use the recovery key in this file instead of making one (e.g. a systemd credential).", valueName: "path"))
    var keyFile: String?

    func run() async throws {
        let configuration = try ExitStatus.loadConfiguration(options.path)
        var keyText: String?
        if let keyFile {
            guard let data = FileManager.default.contents(atPath: keyFile) else {
                ExitStatus.report("sealbridge: cannot read \(keyFile)")
                throw ExitStatus.ioError
            }
            keyText = String(decoding: data, as: UTF8.self)
        }
        try await ExitStatus.reportingDaemonErrors {
            let outcome = try await RecoveryKeySetup.run(configuration: configuration, keyText: keyText, rotate: rotate)
            for note in outcome.notes { ExitStatus.report("sealbridge: \(note)") }
            ExitStatus.report("sealbridge: stored the bot's cross-signing keys (master key \(outcome.masterKey)) in secret storage key \(outcome.keyID)")
            if outcome.generated {
                ExitStatus.report("""
                    sealbridge: the recovery key follows, on standard output. It is shown this once and cannot be shown again.
                      Store it apart from the database and its backups (a password manager, or a systemd credential:
                      encryption.recovery_key_file). With it, an empty database restores the bot's identity; without it,
                      a lost database means a new identity and an "identity changed" warning for every user.
                    """)
                print(outcome.recoveryKey.displayString)
            }
        }
    }
}
