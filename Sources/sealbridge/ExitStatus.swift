import ArgumentParser
import Foundation
import SealbridgeApp
import SealbridgeConfig

/// sysexits(3) codes, so systemd units and scripts can tell failures apart.
enum ExitStatus {
    static let unavailable = ExitCode(69)
    static let ioError = ExitCode(74)
    static let config = ExitCode(78)

    /// Prints `message` to standard error.
    static func report(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    /// Loads the configuration or exits with a message an operator can act on.
    static func loadConfiguration(_ path: String, requireTokens: Bool = true) throws -> SealbridgeConfiguration {
        do {
            return try SealbridgeConfiguration.load(path: path, requireTokens: requireTokens)
        } catch let error as ConfigFileError {
            report("sealbridge: cannot read configuration \(error)")
            throw error.reason.hasPrefix("not valid YAML") ? config : ioError
        } catch let error as ConfigError {
            report("sealbridge: \(error.problems.count) problem(s) in \(path):")
            for problem in error.problems { report("  \(problem)") }
            throw config
        }
    }

    /// Runs `body`, turning a ``DaemonError`` into a message and its exit status.
    static func reportingDaemonErrors(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as DaemonError {
            // Hummingbird's server finishes its graceful shutdown in an unstructured task that may
            // still log ("Server shutdown error: Already closed") after the service group returned;
            // let it land first, so that the reason is the last line an operator reads.
            try? await Task.sleep(for: .milliseconds(200))
            report("sealbridge: \(error.message)")
            switch error.code {
            case .databaseUnavailable, .homeserverUnavailable: throw unavailable
            case .migration: throw ExitCode.failure
            case .configuration: throw config
            // The operator must choose (restore or reset); restarting would change nothing.
            case .identity: throw config
            }
        }
    }
}
