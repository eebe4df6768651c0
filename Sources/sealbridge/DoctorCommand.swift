import ArgumentParser
import Foundation
import SealbridgeApp

/// `sealbridge doctor`: runs every self-check once and says what to change.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the database, the homeserver, the registration and the to-device path; say what to fix.",
        discussion: """
            Read only; safe next to a running daemon. Checks: the database (reachable, migrations), the \
            homeserver (reachable, versions, the as_token), the registration file against the \
            configuration (tokens, url, namespaces, flags), and through the running daemon: the \
            homeserver's ping of the appservice, a to-device message from the bot to itself arriving in \
            a transaction (msc2409_to_device_messages_enabled), MSC3202 key counts, and the bot's keys \
            on the homeserver. Without a running daemon those are not run and doctor fails. \
            Exit status 0 when nothing is wrong, 1 otherwise. See docs/self-checks.md.
            """)

    @OptionGroup var options: ConfigOption

    @Option(help: ArgumentHelp("The registration file the homeserver loads. Default: self_checks.registration_file.", valueName: "path"))
    var registration: String?

    func run() async throws {
        let configuration = try ExitStatus.loadConfiguration(options.path)
        print("config OK: \(configuration.summary)")
        let findings = await Doctor.run(configuration: configuration, registrationFile: registration, print: { Swift.print($0) })
        let failed = findings.filter { $0.state == .failed }.count
        print(failed == 0 ? "doctor: nothing wrong" : "doctor: \(failed) problem(s)")
        if failed > 0 { throw ExitCode.failure }
    }
}
