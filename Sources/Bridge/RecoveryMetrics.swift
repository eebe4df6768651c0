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

    public static func record(_ step: CryptoStep, now: Date = Date()) {
        for outcome in step.roomEvents {
            switch outcome.result {
            case .failure(let failure):
                Counter(label: "sealbridge_crypto_undecryptable_events_total", dimensions: [("reason", label(failure))]).increment()
            case .success:
                guard step.changes.releasedEvents.contains(outcome.eventID.rawValue) else { continue }
                // MSC4268 history bundles (issue 14 point 4) will add path="bundle".
                Counter(label: "sealbridge_crypto_recovered_events_total", dimensions: [("path", outcome.forwardedKey ? "key_request" : "late_key")])
                    .increment()
                if let parkedAt = outcome.parkedAt {
                    Recorder(label: recoverySeconds, aggregate: true).record(max(0, now.timeIntervalSince(parkedAt)))
                }
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
