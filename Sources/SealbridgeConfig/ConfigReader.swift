import Foundation
import Yams

/// Walks a YAML tree by key path, collecting problems instead of stopping at the first.
///
/// Each section reads the keys it knows; whatever is left is reported as unknown, so a typo such as
/// `hs_tokne` is an error rather than a silently ignored line.
final class ConfigReader {
    private(set) var problems: [ConfigError.Problem] = []
    let environment: [String: String]
    /// Where relative `*_file` paths resolve: `$CREDENTIALS_DIRECTORY` if set, else the config file's folder.
    let fileBase: URL

    init(environment: [String: String], fileBase: URL) {
        self.environment = environment
        self.fileBase = fileBase
    }

    func problem(_ path: String, _ message: String) {
        problems.append(.init(path: path, message: message))
    }

    /// A mapping section; its keys outside `known` are reported as unknown.
    struct Section {
        let reader: ConfigReader
        let path: String
        let values: [String: Node]

        func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

        /// The raw scalar at `name`, nil when absent or null.
        func scalar(_ name: String) -> String? {
            guard let node = values[name] else { return nil }
            guard let scalar = node.scalar else {
                reader.problem(key(name), "must be a single value, not a list or mapping")
                return nil
            }
            if ["", "~", "null"].contains(scalar.string) && scalar.style == .plain { return nil }
            return scalar.string
        }

        func string(_ name: String, default fallback: String? = nil, required: Bool = false) -> String? {
            if let value = scalar(name) { return value }
            if required && fallback == nil { reader.problem(key(name), "missing") }
            return fallback
        }

        func int(_ name: String, default fallback: Int, range: ClosedRange<Int>) -> Int {
            guard let text = scalar(name) else { return fallback }
            guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
                reader.problem(key(name), "must be a whole number, got \"\(text)\"")
                return fallback
            }
            guard range.contains(value) else {
                reader.problem(key(name), "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
                return fallback
            }
            return value
        }

        func bool(_ name: String, default fallback: Bool) -> Bool {
            guard let text = scalar(name) else { return fallback }
            switch text.lowercased() {
            case "true", "yes", "on": return true
            case "false", "no", "off": return false
            default:
                reader.problem(key(name), "must be true or false, got \"\(text)\"")
                return fallback
            }
        }

        func strings(_ name: String) -> [String] {
            guard let node = values[name] else { return [] }
            guard let sequence = node.sequence else {
                reader.problem(key(name), "must be a list")
                return []
            }
            return sequence.enumerated().compactMap { index, item in
                guard let text = item.scalar?.string else {
                    reader.problem("\(key(name))[\(index)]", "must be a single value")
                    return nil
                }
                return text
            }
        }

        func section(_ name: String) -> Section {
            let child = key(name)
            guard let node = values[name] else { return Section(reader: reader, path: child, values: [:]) }
            return reader.section(node, path: child)
        }

        /// Reports keys present here that are not in `known`.
        func rejectUnknown(_ known: Set<String>) {
            for name in values.keys.sorted() where !known.contains(name) {
                reader.problem(key(name), "unknown key (check the spelling against Config/config.example.yaml)")
            }
        }

        /// A secret from exactly one of: the environment override, `name`, or `name_file`.
        ///
        /// Problems name the key, never the value.
        func secret(_ name: String, required: Bool, environmentName: String) -> String? {
            if let value = reader.environment[environmentName], !value.isEmpty { return value }
            let inline = scalar(name), file = scalar("\(name)_file")
            switch (inline, file) {
            case (.some, .some):
                reader.problem(key(name), "given both inline and as \(name)_file; keep one")
                return nil
            case (.some(let value), nil):
                return value
            case (nil, .some(let path)):
                return secretFile(path, key: key("\(name)_file"))
            case (nil, nil):
                if required { reader.problem(key(name), "missing (set \(name), \(name)_file or $\(environmentName))") }
                return nil
            }
        }

        /// The secret in the file at `path` (relative to the credentials directory), without trailing newlines.
        ///
        /// - Parameter key: The config key that named the file, for problems (which never show the value).
        func secretFile(_ path: String, key: String) -> String? {
            let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : reader.fileBase.appendingPathComponent(path)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                reader.problem(key, "cannot read \(url.path)")
                return nil
            }
            var value = String(decoding: data, as: UTF8.self)
            while value.last == "\n" || value.last == "\r" { value.removeLast() }
            if value.isEmpty { reader.problem(key, "\(url.path) is empty") }
            return value.isEmpty ? nil : value
        }
    }

    func section(_ node: Node, path: String) -> Section {
        // `bridge_api:` with only comments under it is YAML null: an empty section, all defaults.
        if let scalar = node.scalar, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
            return Section(reader: self, path: path, values: [:])
        }
        guard let mapping = node.mapping else {
            problem(path.isEmpty ? "(top level)" : path, "must be a mapping of keys to values")
            return Section(reader: self, path: path, values: [:])
        }
        var values: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { continue }
            values[name] = value
        }
        return Section(reader: self, path: path, values: values)
    }
}
