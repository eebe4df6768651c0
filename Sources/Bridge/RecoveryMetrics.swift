import Foundation
import MatrixCrypto
import Metrics

/// Undecryptable events and their recovery, for Prometheus (docs/key-requests.md): events delivered
/// undecryptable by reason, parked events decrypted later by the path their key took, and the time
/// from parking to decryption.
public enum RecoveryMetrics {
    /// Buckets (seconds) of ``recoverySeconds``: from a key a moment late to one that took a day.
    public static let recoveryBuckets: [Double] = [1, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86_400]
    public static let recoverySeconds = "sealbridge_crypto_recovery_seconds"

    /// What one step tells about undecryptable events and recoveries.
    public enum Observation: Equatable, Sendable {
        case undecryptable(reason: String)
        /// A parked event decrypted: by which path its key came, and after how long (when known).
        case recovered(path: String, after: TimeInterval?)
    }

    public static func record(_ step: CryptoStep, now: Date = Date()) {
        HistoryBundleMetrics.record(step)
        for observation in observations(step, now: now) {
            switch observation {
            case .undecryptable(let reason):
                Counter(label: "sealbridge_crypto_undecryptable_events_total", dimensions: [("reason", reason)]).increment()
            case .recovered(let path, let after):
                Counter(label: "sealbridge_crypto_recovered_events_total", dimensions: [("path", path)]).increment()
                if let after { Recorder(label: recoverySeconds, aggregate: true).record(after) }
            }
        }
    }

    /// The observations of `step`: every failed outcome by its bounded reason; every released
    /// (formerly parked) event that decrypted, by path (`bundle` when its key came in an MSC4268
    /// history bundle, `key_request` when it was a forwarded one we asked for, else `late_key`).
    public static func observations(_ step: CryptoStep, now: Date = Date()) -> [Observation] {
        step.roomEvents.compactMap { outcome in
            switch outcome.result {
            case .failure(let failure):
                return .undecryptable(reason: label(failure))
            case .success:
                guard step.changes.releasedEvents.contains(outcome.eventID.rawValue) else { return nil }
                let path = outcome.bundleSender != nil ? "bundle" : outcome.forwardedKey ? "key_request" : "late_key"
                return .recovered(path: path, after: outcome.parkedAt.map { max(0, now.timeIntervalSince($0)) })
            }
        }
    }

    /// The failure's reason with a bounded set of values: a withheld code is the sender's free
    /// choice, so only the spec's codes are kept apart.
    static func label(_ failure: DecryptionFailure) -> String {
        if case .withheld(let code, _) = failure {
            let known = ["m.blacklisted", "m.unverified", "m.unauthorised", "m.unavailable", "m.no_olm"]
            return "withheld:" + (known.contains(code) ? code : "other")
        }
        return failure.reason
    }
}
