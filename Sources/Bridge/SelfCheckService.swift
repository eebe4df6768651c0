import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Runs the self-checks at startup and every `interval` (`self_checks` in the configuration), keeps
/// the last report for `status`, `/health` and `sealbridge doctor`, and exports each check as
/// `sealbridge_self_check_ok{check}` (1 passed or skipped, 0 failed).
public final class SelfCheckService: Service, Sendable {
    let runner: SelfCheckRunner
    let interval: Duration
    /// Wait before the first round, so the bot's device and the listener are up.
    let initialDelay: Duration
    let logger: Logger
    /// False while another instance owns the state (standby): its transactions go there, so a probe
    /// from here could not come back here; the periodic round waits.
    let isActive: @Sendable () -> Bool
    /// The next round's wait while the bot has no device yet (startup).
    static let retryWhenSkipped = Duration.seconds(10)
    private let state = Mutex<(last: SelfCheckReport?, running: Task<SelfCheckReport, Never>?)>((nil, nil))

    public init(
        runner: SelfCheckRunner, interval: Duration, initialDelay: Duration = .seconds(5), isActive: @escaping @Sendable () -> Bool = { true },
        logger: Logger
    ) {
        self.isActive = isActive
        self.runner = runner
        self.interval = interval
        self.initialDelay = initialDelay
        self.logger = logger
    }

    /// The last finished round; nil before the first.
    public var last: SelfCheckReport? { state.withLock { $0.last } }

    /// One line per failed check of the last round (the reasons `/health` gives for `degraded`).
    public var failures: [String] { last?.failures.map(\.line) ?? [] }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: self.initialDelay)
            while !Task.isCancelled {
                guard self.isActive() else {
                    try await Task.sleep(for: Self.retryWhenSkipped)
                    continue
                }
                let report = await self.runNow()
                // Before the bot's device is up there is nothing to probe with: look again soon.
                let early = report.results.contains { $0.name == .toDevice && $0.state == .skipped }
                try await Task.sleep(for: early ? min(self.interval, Self.retryWhenSkipped) : self.interval)
            }
        }
    }

    /// Runs a round now, or joins the one under way (`sealbridge doctor` asks through the daemon's endpoint).
    public func runNow() async -> SelfCheckReport {
        let task = state.withLock { state -> Task<SelfCheckReport, Never> in
            if let running = state.running { return running }
            let task = Task { await self.round() }
            state.running = task
            return task
        }
        return await task.value
    }

    private func round() async -> SelfCheckReport {
        let report = await runner.run()
        state.withLock { $0 = (report, nil) }
        for result in report.results {
            Gauge(label: "sealbridge_self_check_ok", dimensions: [("check", result.name.rawValue)]).record(result.state == .failed ? 0 : 1)
            switch result.state {
            case .failed:
                logger.error("self-check failed", metadata: ["check": "\(result.name.rawValue)", "detail": "\(result.detail)", "fix": "\(result.fix ?? "")"])
            case .ok, .skipped:
                logger.debug("self-check", metadata: ["check": "\(result.name.rawValue)", "state": "\(result.state.rawValue)", "detail": "\(result.detail)"])
            }
        }
        Gauge(label: "sealbridge_self_check_last_run_timestamp_seconds").record(report.finishedAt.timeIntervalSince1970)
        return report
    }
}
