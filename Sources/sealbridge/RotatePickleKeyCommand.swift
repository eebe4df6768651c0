import ArgumentParser
import Foundation
import SealbridgeApp

/// `sealbridge rotate-pickle-key`: re-encrypts every pickle and sealed row under the new pickle key,
/// while the daemon runs (docs/rotation.md).
struct RotatePickleKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-pickle-key",
        abstract: "Re-encrypt every stored pickle and sealed row under the new pickle key, online.",
        discussion: """
            First set encryption.pickle_key_file to the new key, list the old key in \
            encryption.previous_pickle_key_files and restart the daemon. Then run this command with the same \
            configuration, while the daemon runs: it rewrites, table by table in short batches, every row still \
            under another key (the same content, under the new key), never overwriting what the daemon writes \
            meanwhile, and prints its progress. It can be stopped and run again: it goes on where it stopped. \
            When it reports 0 rows left, remove previous_pickle_key_files and restart the daemon. \
            --check opens every row with the configured keys and writes nothing. \
            Exit status: 0 when no row is left under another key (--check: every row opens), 1 otherwise.
            """)

    @OptionGroup var options: ConfigOption

    @Option(help: ArgumentHelp("The new pickle key (the one encryption.pickle_key_file names).", valueName: "path"))
    var newKeyFile: String?

    @Option(help: "Rows per batch (one short database transaction each).")
    var batchSize = 500

    @Option(help: "Milliseconds to wait between batches, to spread the load on a busy database.")
    var pauseMs = 0

    @Flag(help: "Only check that every row opens with the configured keys; write nothing.")
    var check = false

    func validate() throws {
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1...10000") }
        guard (0...60_000).contains(pauseMs) else { throw ValidationError("--pause-ms must be 0...60000") }
        guard check || newKeyFile != nil else { throw ValidationError("--new-key-file is required (or --check)") }
    }

    func run() async throws {
        let configuration = try ExitStatus.loadConfiguration(options.path)
        try await ExitStatus.reportingDaemonErrors {
            if check {
                let result = try await PickleKeyRotation.check(configuration: configuration, batchSize: batchSize) { ExitStatus.report("sealbridge: \($0)") }
                print("rows opened: \(result.opened), rows that do not open: \(result.failed)")
                if result.failed > 0 { throw ExitCode.failure }
                return
            }
            guard let newKeyFile, let data = FileManager.default.contents(atPath: newKeyFile) else {
                ExitStatus.report("sealbridge: cannot read \(newKeyFile ?? "")")
                throw ExitStatus.ioError
            }
            var newKey = String(decoding: data, as: UTF8.self)
            while newKey.last == "\n" || newKey.last == "\r" { newKey.removeLast() }
            let left = try await PickleKeyRotation.run(
                configuration: configuration, newKey: newKey, batchSize: batchSize, pause: .milliseconds(pauseMs)) { ExitStatus.report("sealbridge: \($0)") }
            print("rows left under other keys: \(left)")
            if left > 0 { throw ExitCode.failure }
        }
    }
}
