import Foundation
import MatrixModels

/// The outcome of one self-check (docs/self-checks.md).
public struct SelfCheckResult: Sendable, Equatable {
    public enum Name: String, Sendable, CaseIterable {
        /// The homeserver pushes to-device messages to the appservice (MSC2409/MSC4203).
        case toDevice = "to_device"
        /// Transactions carry one-time key counts and device lists (MSC3202).
        case keyCounts = "key_counts"
        /// The registration file has what this configuration needs.
        case registration
        /// The homeserver serves the bot's device with the stored account's identity keys.
        case botKeys = "bot_keys"
    }

    public enum State: String, Sendable {
        case ok, failed
        /// Could not be judged (nothing to compare yet, or not configured); never makes `/health` degraded.
        case skipped
    }

    public var name: Name
    public var state: State
    /// What was seen; never a secret.
    public var detail: String
    /// What to change, in which file; set when failed (and on some skipped checks).
    public var fix: String?

    public init(_ name: Name, _ state: State, _ detail: String, fix: String? = nil) {
        self.name = name
        self.state = state
        self.detail = detail
        self.fix = fix
    }

    /// `name: detail — fix: …`, one line.
    public var line: String { "\(name.rawValue): \(detail)" + (fix.map { " — fix: \($0)" } ?? "") }
}

/// One round of self-checks.
public struct SelfCheckReport: Sendable, Equatable {
    public var results: [SelfCheckResult]
    public var finishedAt: Date

    public init(results: [SelfCheckResult], finishedAt: Date) {
        self.results = results
        self.finishedAt = finishedAt
    }

    public var failures: [SelfCheckResult] { results.filter { $0.state == .failed } }

    /// The report as JSON (the `/_sealbridge/self-checks` answer `sealbridge doctor` reads).
    public var json: JSONValue {
        .object([
            "finished_at": .integer(Int64(finishedAt.timeIntervalSince1970)),
            "ok": .bool(failures.isEmpty),
            "checks": .array(results.map { result in
                var entry: [String: JSONValue] = [
                    "name": .string(result.name.rawValue), "state": .string(result.state.rawValue), "detail": .string(result.detail),
                ]
                if let fix = result.fix { entry["fix"] = .string(fix) }
                return .object(entry)
            }),
        ])
    }

    /// Reads ``json`` back; nil if it is not one.
    public init?(json: JSONValue) {
        guard let checks = json["checks"]?.arrayValue, let finished = json["finished_at"]?.integerValue else { return nil }
        var results: [SelfCheckResult] = []
        for check in checks {
            guard let name = check["name"]?.stringValue.flatMap(SelfCheckResult.Name.init(rawValue:)),
                let state = check["state"]?.stringValue.flatMap(SelfCheckResult.State.init(rawValue:)),
                let detail = check["detail"]?.stringValue
            else { return nil }
            results.append(SelfCheckResult(name, state, detail, fix: check["fix"]?.stringValue))
        }
        self.init(results: results, finishedAt: Date(timeIntervalSince1970: TimeInterval(finished)))
    }
}
