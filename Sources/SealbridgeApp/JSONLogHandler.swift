import Foundation
import Logging
import MatrixModels

/// A swift-log handler that writes one JSON object per line to standard error.
///
/// For operators who ship journald output to a log pipeline: every line carries `ts`, `level`,
/// `label`, `msg` and the metadata (keys sorted) (txn id, counts) as fields. Callers never put tokens, keys or
/// plaintext into metadata; this handler does not try to guess which values are secret.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let output: @Sendable (String) -> Void

    public init(label: String, output: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: JSONValue] = [:]
        var metadata = self.metadata
        if let extra = event.metadata { metadata.merge(extra) { _, new in new } }
        for (key, value) in metadata { fields[key] = Self.json(value) }
        fields["ts"] = .string(Self.timestamp())
        fields["level"] = .string(event.level.rawValue)
        fields["label"] = .string(label)
        fields["msg"] = .string("\(event.message)")
        output(JSONValue.object(fields).serializedString() + "\n")
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let string): .string(string)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let dictionary): .object(dictionary.mapValues(json))
        }
    }

    /// Writes to file descriptor 2 in one call so concurrent lines do not interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
