import ArgumentParser
import SealbridgeApp

/// `sealbridge run`: the daemon's main job.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the daemon until SIGTERM/SIGINT (migrates the database first).")

    @OptionGroup var options: ConfigOption

    @Flag(help: "Publish a new cross-signing identity for the bot even though the homeserver holds one this database does not (users will see \"identity changed\"). Only needed once, after losing the database without a recovery key.")
    var resetIdentity = false

    func run() async throws {
        let configuration = try ExitStatus.loadConfiguration(options.path)
        try await ExitStatus.reportingDaemonErrors { try await Daemon.run(configuration: configuration, resetIdentity: resetIdentity) }
    }
}

/// `sealbridge migrate`: applies database migrations and exits.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Apply pending database migrations and exit.")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try ExitStatus.loadConfiguration(options.path)
        try await ExitStatus.reportingDaemonErrors {
            let applied = try await Daemon.migrate(configuration: configuration)
            print(applied.isEmpty ? "database schema is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
        }
    }
}
