import ArgumentParser
import Foundation
import SealbridgeConfig

/// `sealbridge generate-registration`: writes the appservice registration for the homeserver.
struct GenerateRegistrationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-registration",
        abstract: "Write the appservice registration file the homeserver needs.",
        discussion: """
            Tokens missing from the configuration are generated. With --write-tokens they are written \
            back into the configuration file (replacing empty or CHANGE_ME values); otherwise they are \
            printed once to standard error for you to store.
            """)

    @OptionGroup var options: ConfigOption

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the registration here instead of standard output.", valueName: "path"))
    var output: String?

    @Flag(help: "Write generated tokens back into the configuration file.")
    var writeTokens = false

    func run() throws {
        let configuration = try ExitStatus.loadConfiguration(options.path, requireTokens: false)
        let registration = Registration.generate(from: configuration)
        if registration.generatedTokens {
            if writeTokens {
                try writeBack(registration, configuration)
            } else {
                ExitStatus.report("""
                    sealbridge: generated new tokens; put them in \(options.path) (or use --write-tokens):
                      as_token: "\(registration.asToken)"
                      hs_token: "\(registration.hsToken)"
                    """)
            }
        }
        if let output {
            do {
                try Data(registration.yaml.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: output)
            } catch {
                ExitStatus.report("sealbridge: cannot write \(output): \(error.localizedDescription)")
                throw ExitStatus.ioError
            }
            ExitStatus.report("sealbridge: wrote \(output)")
        } else {
            print(registration.yaml, terminator: "")
        }
    }

    /// Replaces empty or placeholder token lines in the configuration file, keeping everything else.
    func writeBack(_ registration: Registration, _ configuration: SealbridgeConfiguration) throws {
        guard var text = try? String(contentsOfFile: options.path, encoding: .utf8) else {
            ExitStatus.report("sealbridge: cannot read \(options.path) to write tokens")
            throw ExitStatus.ioError
        }
        for (name, value, existing) in [
            ("as_token", registration.asToken, configuration.appservice.asToken),
            ("hs_token", registration.hsToken, configuration.appservice.hsToken),
        ] where existing == nil {
            let pattern = try NSRegularExpression(pattern: "^([ \\t]*)\(name):[ \\t]*(\"\"|''|CHANGE_ME|\"CHANGE_ME\")?[ \\t]*$", options: .anchorsMatchLines)
            let range = NSRange(text.startIndex..., in: text)
            if pattern.firstMatch(in: text, range: range) != nil {
                text = pattern.stringByReplacingMatches(in: text, range: range, withTemplate: "$1\(name): \"\(value)\"")
            } else if let anchor = text.range(of: "\nappservice:\n") ?? (text.hasPrefix("appservice:\n") ? text.range(of: "appservice:\n") : nil) {
                text.insert(contentsOf: "  \(name): \"\(value)\"\n", at: anchor.upperBound)
            } else {
                ExitStatus.report("sealbridge: no appservice section in \(options.path) to write \(name) into")
                throw ExitStatus.config
            }
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: options.path), options: .atomic)
        } catch {
            ExitStatus.report("sealbridge: cannot write \(options.path): \(error.localizedDescription)")
            throw ExitStatus.ioError
        }
        ExitStatus.report("sealbridge: wrote new tokens into \(options.path)")
    }
}
