import ArgumentParser
import SealbridgeApp

/// The `sealbridge` command line: parses arguments and hands off to library code.
@main
struct Sealbridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sealbridge",
        abstract: "End-to-end encryption for Matrix application services.",
        discussion: """
            Sealbridge keeps Olm/Megolm state for an appservice bot and its puppets in PostgreSQL, \
            decrypts what the homeserver pushes and encrypts what the bridge sends.

            Exit codes: 0 success (doctor: nothing wrong), 1 doctor found a problem (rotate-pickle-key: rows left or not opening), 64 usage, 69 a dependency (database) unavailable, \
            74 a file could not be read or written, 78 configuration problems. \
            A second `run` against the same database waits as a standby until the first stops.
            """,
        version: SealbridgeInfo.version,
        subcommands: [
            RunCommand.self, GenerateRegistrationCommand.self, CheckConfigCommand.self, MigrateCommand.self, RecoveryKeyCommand.self,
            DoctorCommand.self, RotatePickleKeyCommand.self,
        ])
}

/// The `--config` option every subcommand takes.
struct ConfigOption: ParsableArguments {
    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Configuration file. Default: $SEALBRIDGE_CONFIG, else /etc/sealbridge/config.yaml.", valueName: "path"))
    var config: String?

    var path: String {
        config ?? ProcessInfo.processInfo.environment["SEALBRIDGE_CONFIG"] ?? "/etc/sealbridge/config.yaml"
    }
}

import Foundation
