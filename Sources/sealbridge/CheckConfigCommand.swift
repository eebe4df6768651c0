import ArgumentParser
import SealbridgeApp

/// `sealbridge check-config`: validates the configuration and prints a summary without secrets.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration and report every problem at once.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let configuration = try ExitStatus.loadConfiguration(options.path)
        do {
            _ = try RecoveryKeySetup.configuredKey(configuration)
        } catch let error as DaemonError {
            ExitStatus.report("sealbridge: 1 problem(s) in \(options.path):")
            ExitStatus.report("  \(error.message)")
            throw ExitStatus.config
        }
        print("config OK: \(configuration.summary)")
    }
}
