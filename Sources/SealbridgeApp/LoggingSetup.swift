import Logging
import SealbridgeConfig

/// Installs the process-wide log handler chosen in the configuration (once, at start).
enum LoggingSetup {
    static func bootstrap(_ configuration: SealbridgeConfiguration.Logging) {
        let level = Logger.Level(rawValue: configuration.level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                switch configuration.format {
                case .text: StreamLogHandler.standardError(label: label)
                case .json: JSONLogHandler(label: label)
                }
            handler.logLevel = level
            return handler
        }
    }
}
