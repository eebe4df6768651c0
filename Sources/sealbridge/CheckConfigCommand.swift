import ArgumentParser

/// `sealbridge check-config`: validates the configuration and prints a summary without secrets.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration and report every problem at once.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let configuration = try ExitStatus.loadConfiguration(options.path)
        print("config OK: \(configuration.summary)")
    }
}
