import Foundation
import MatrixModels

/// The bad-input corpus of transaction bodies (`Tests/Corpus/transactions`, see its README), shared by
/// the decoder's tests and the front door's, so every handler can be run over the same cases.
public enum TransactionCorpus {
    /// One body and what the daemon must answer and record for it.
    public struct Case: Sendable, CustomStringConvertible {
        public var name: String
        /// The exact bytes the homeserver sends.
        public var body: [UInt8]
        public var expected: Expectation

        public var description: String { name }
    }

    /// `NAME.expect.json`: the answer, and for a 200 what the transaction log must count.
    public struct Expectation: Sendable, Equatable {
        /// 200, or 400 for a body that is refused.
        public var status: Int
        /// For a 400: `M_NOT_JSON` or `M_BAD_JSON`.
        public var errcode: String?
        /// For a 200; a count the file leaves out is expected to be 0, and `skipped` to be empty.
        public var counts: Counts?
    }

    /// What the transaction log records for a transaction (the columns of `sealbridge_transaction_log`).
    public struct Counts: Sendable, Equatable, CustomStringConvertible {
        public static let names = [
            "events", "ephemeral", "to_device", "to_device_dropped", "device_lists_changed", "device_lists_left",
            "otk_count_devices", "fallback_devices",
        ]
        /// By column name; every name in ``names`` is present.
        public var values: [String: Int]
        /// Entries left out, by reason (`SkippedEntries.Reason` raw values).
        public var skipped: [String: Int]

        public init(values: [String: Int], skipped: [String: Int]) {
            self.values = Dictionary(uniqueKeysWithValues: Self.names.map { ($0, values[$0] ?? 0) })
            self.skipped = skipped.filter { $0.value != 0 }
        }

        /// What the log records for `transaction`, computed as `TransactionLog` does.
        public init(_ transaction: AppserviceTransaction) {
            self.init(
                values: [
                    "events": transaction.events.count, "ephemeral": transaction.ephemeral.count,
                    "to_device": transaction.toDevice.count, "to_device_dropped": transaction.droppedToDevice,
                    "device_lists_changed": transaction.deviceLists.changed.count,
                    "device_lists_left": transaction.deviceLists.left.count,
                    "otk_count_devices": transaction.oneTimeKeyCounts.values.reduce(0) { $0 + $1.count },
                    "fallback_devices": transaction.unusedFallbackKeyTypes.values.reduce(0) { $0 + $1.count },
                ],
                skipped: Dictionary(uniqueKeysWithValues: transaction.skipped.byReason.map { ($0.key.rawValue, $0.value) }))
        }

        public var description: String {
            let counts = Self.names.compactMap { values[$0] == 0 ? nil : "\($0)=\(values[$0]!)" }
            return (counts + skipped.sorted { $0.key < $1.key }.map { "skipped.\($0.key)=\($0.value)" }).joined(separator: " ")
        }
    }

    /// A corpus file that cannot be read as a case.
    public struct Invalid: Error, CustomStringConvertible {
        public var file: String
        public var problem: String
        public var description: String { "\(file): \(problem)" }
    }

    public static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Corpus/transactions")
    }

    /// Every case: the files, sorted by name, then the ones too large to keep in the repository.
    public static func cases() throws -> [Case] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".body") }.map { String($0.dropLast(".body".count)) }.sorted()
        var cases: [Case] = []
        for name in names {
            let body = try [UInt8](Data(contentsOf: directory.appendingPathComponent("\(name).body")))
            let expectFile = directory.appendingPathComponent("\(name).expect.json")
            let expected = try expectation(Data(contentsOf: expectFile), file: expectFile.lastPathComponent)
            cases.append(Case(name: name, body: body, expected: expected))
        }
        guard !cases.isEmpty else { throw Invalid(file: directory.path, problem: "no cases") }
        return cases + generated()
    }

    static func expectation(_ data: Data, file: String) throws -> Expectation {
        guard let object = (try? JSONValue.parse([UInt8](data)))?.objectValue else { throw Invalid(file: file, problem: "not a JSON object") }
        let known = Set(Counts.names + ["status", "errcode", "skipped", "comment"])
        if let unknown = object.keys.first(where: { !known.contains($0) }) { throw Invalid(file: file, problem: "unknown field \(unknown)") }
        guard let status = object["status"]?.integerValue, status == 200 || status == 400 else {
            throw Invalid(file: file, problem: "status must be 200 or 400")
        }
        if status == 400 {
            guard let errcode = object["errcode"]?.stringValue else { throw Invalid(file: file, problem: "a 400 needs an errcode") }
            return Expectation(status: 400, errcode: errcode, counts: nil)
        }
        var values: [String: Int] = [:]
        for name in Counts.names {
            if let value = object[name] {
                guard let count = value.integerValue else { throw Invalid(file: file, problem: "\(name) must be an integer") }
                values[name] = Int(count)
            }
        }
        var skipped: [String: Int] = [:]
        for (reason, count) in object["skipped"]?.objectValue ?? [:] {
            guard SkippedEntries.Reason(rawValue: reason) != nil, let count = count.integerValue else {
                throw Invalid(file: file, problem: "skipped.\(reason) is not a known reason with an integer count")
            }
            skipped[reason] = Int(count)
        }
        return Expectation(status: 200, errcode: nil, counts: Counts(values: values, skipped: skipped))
    }

    /// Cases generated here rather than kept as files, to keep the repository small.
    static func generated() -> [Case] {
        let event = #"{"type":"m.room.message","room_id":"!r:hs","sender":"@alice:hs","event_id":"$e","content":{"body":"hi"}}"#
        var events = Array(repeating: event, count: 10_000)
        events[5_000] = #"{"type":"m.room.message","content":{"body":"\udc00"}}"#
        let manyEvents = #"{"events":[\#(events.joined(separator: ","))]}"#
        let depth = 100_000
        let deep = #"{"events":[\#(event),{"type":"x","content":\#(String(repeating: "[", count: depth))\#(String(repeating: "]", count: depth))}]}"#
        return [
            Case(
                name: "generated-10000-events", body: Array(manyEvents.utf8),
                expected: Expectation(status: 200, counts: Counts(values: ["events": 9_999], skipped: ["invalid_utf8": 1]))),
            Case(
                name: "generated-nesting-100000", body: Array(deep.utf8),
                expected: Expectation(status: 200, counts: Counts(values: ["events": 1], skipped: ["too_deep": 1]))),
        ]
    }
}
