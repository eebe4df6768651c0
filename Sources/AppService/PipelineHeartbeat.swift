import Foundation

/// Which transactions are being processed and since when, so the systemd watchdog stops being fed
/// when the pipeline is stuck (a transaction in progress far longer than any hold or retry allows)
/// and systemd restarts the daemon instead of leaving every room silent.
public actor PipelineHeartbeat {
    private var inProgress: [UInt64: ContinuousClock.Instant] = [:]
    private var next: UInt64 = 0

    public init() {}

    func begin() -> UInt64 {
        next += 1
        inProgress[next] = ContinuousClock.now
        return next
    }

    func end(_ token: UInt64) {
        inProgress[token] = nil
        lastFinished = ContinuousClock.now
    }

    /// When the last transaction was answered; nil: none since start.
    public private(set) var lastFinished: ContinuousClock.Instant?

    /// How long the oldest transaction still in progress has been running; zero when none is.
    public var longestRunning: Duration {
        guard let oldest = inProgress.values.min() else { return .zero }
        return ContinuousClock.now - oldest
    }
}
