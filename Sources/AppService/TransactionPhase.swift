import Metrics

/// Where a processed transaction's time goes, as the histogram
/// `sealbridge_transaction_phase_seconds{phase}`: an operator whose bridge lags can tell decryption
/// from the database, and the benchmark prints the same split per row (docs/benchmarks.md).
///
/// The phases follow one another (the homeserver waits for all of them before its 200), except
/// `claim`, which the crypto step overlaps (it starts while the txn id's INSERT is on its way, so
/// `crypto` includes the wait for it); a duplicate txn id records only `decode` and `claim`.
public enum TransactionPhase: String, CaseIterable, Sendable {
    /// Reading the body and decoding it (`AppserviceTransaction.decode`).
    case decode
    /// BEGIN and the txn id claimed: from the claim's sending to its answer being taken up. The
    /// crypto step runs meanwhile, so while it decrypts on every core this includes waiting for one
    /// (~1 ms in the benchmark on two cores), which costs the transaction nothing.
    case claim
    /// The crypto step under the lock, from after BEGIN: reads, decryption and every check, the wait
    /// for the claim's answer, the transaction log row and the changes queued for writing.
    case crypto
    /// The bridge API's deliveries built and sealed, while PostgreSQL writes what the step queued.
    case deliveries
    /// The outbox INSERT and COMMIT (the WAL flushed: fsync).
    case commit

    public static let label = "sealbridge_transaction_phase_seconds"
    /// Histogram buckets: the phases take from tens of microseconds to tens of milliseconds.
    public static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    /// Records the time since `start`; returns now, the next phase's start.
    @discardableResult
    public func record(since start: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let now = ContinuousClock.now
        let (seconds, attoseconds) = (now - start).components
        Self.timers[self]?.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        return now
    }

    /// Made once, after the daemon bootstrapped its metrics factory (at the first transaction).
    static let timers: [TransactionPhase: Timer] = Dictionary(uniqueKeysWithValues: allCases.map {
        ($0, Timer(label: label, dimensions: [("phase", $0.rawValue)]))
    })
}
