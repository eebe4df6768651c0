/// Every problem found in a configuration, reported together so an operator fixes them in one pass.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// One problem at one key, e.g. `appservice.hs_token: missing`.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// Dotted key path, e.g. `database.pool_size`.
        public var path: String
        /// What is wrong; never contains a secret's value.
        public var message: String
        public var description: String { "\(path): \(message)" }
    }

    public var problems: [Problem]

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// The configuration file could not be read at all (missing, unreadable, not YAML).
public struct ConfigFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}
