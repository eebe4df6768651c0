import AppService
import Foundation
import HomeserverClient
import Logging
import MatrixModels
import ServiceLifecycle

/// Makes the homeserver resume pushing transactions at once after Sealbridge was away.
///
/// While the appservice does not answer (the daemon stopped, restarting, or refusing during an
/// outage), Synapse marks it down and retries with a backoff that doubles up to 512 s — so a daemon
/// back after a minute may wait minutes more for its first transaction, every room silent meanwhile.
/// Synapse's appservice ping (`POST /_matrix/client/v1/appservice/{id}/ping`, MSC2659) reaches us
/// and, when it succeeds, makes Synapse retry its pending transactions immediately
/// (`force_retry`, checked in Synapse 1.163's source). This service pings once the listener is up,
/// and again whenever no transaction was answered for a while (a ping when Synapse is not backing
/// off is a no-op for it). It never holds a lock or a database transaction.
public struct HomeserverNudgeService: Service {
    let homeserver: HomeserverClient
    let appserviceID: String
    let heartbeat: PipelineHeartbeat
    let ready: ServerReadySignal
    /// Quiet time after which the homeserver is pinged again.
    let quietAfter: Duration
    let logger: Logger

    public init(
        homeserver: HomeserverClient, appserviceID: String, heartbeat: PipelineHeartbeat, ready: ServerReadySignal,
        quietAfter: Duration = .seconds(60), logger: Logger
    ) {
        self.homeserver = homeserver
        self.appserviceID = appserviceID
        self.heartbeat = heartbeat
        self.ready = ready
        self.quietAfter = quietAfter
        self.logger = logger
    }

    /// Ends as soon as the daemon shuts down, whatever it is waiting for: the listener coming up, or a
    /// ping (Synapse answers it only after calling us back, and we are closing: waiting for it held a
    /// SIGTERM for longer than systemd and the tests allow).
    public func run() async throws {
        await cancelWhenGracefulShutdown { await ready.wait() }
        var failing = false
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let last = await heartbeat.lastFinished
            if last.map({ ContinuousClock.now - $0 >= quietAfter }) ?? true {
                do {
                    try await cancelWhenGracefulShutdown { try await ping() }
                    if failing { logger.notice("the homeserver reaches the appservice again (ping)") }
                    failing = false
                } catch {
                    if Task.isShuttingDownGracefully || Task.isCancelled { return }
                    if !failing {
                        logger.warning("the homeserver could not ping the appservice; it may be holding transactions back", metadata: ["error": "\(error)"])
                    }
                    failing = true
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: quietAfter) }
        }
    }

    func ping() async throws {
        _ = try await homeserver.request(
            .POST, "/_matrix/client/v1/appservice/\(HomeserverClient.encode(appserviceID))/ping",
            body: ["transaction_id": .string("sealbridge-nudge-\(UInt64(Date().timeIntervalSince1970 * 1000))")])
    }
}

/// Set once the appservice listener accepts connections (a ping before that would fail).
public actor ServerReadySignal {
    private var isReady = false
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0

    public init() {}

    public func set() {
        isReady = true
        for waiter in waiters.values { waiter.resume() }
        waiters.removeAll()
    }

    /// Returns once the listener is up, or as soon as the calling task is cancelled (a daemon stopped
    /// before its listener came up must not wait for it forever); check `Task.isCancelled` after.
    public func wait() async {
        if isReady || Task.isCancelled { return }
        let id = nextWaiter
        nextWaiter += 1
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // A cancellation that came first finds no waiter to release: it is seen here instead.
                if Task.isCancelled { continuation.resume() } else { waiters[id] = continuation }
            }
        } onCancel: {
            Task { await self.release(id) }
        }
    }

    private func release(_ id: UInt64) {
        waiters.removeValue(forKey: id)?.resume()
    }
}
