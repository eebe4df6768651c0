import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Metrics
import ServiceLifecycle
import Synchronization

/// Publishes a cross-signing identity for every local user that lacks one (devices made before
/// cross-signing, or whose identity or device signature did not get through), at a steady pace so
/// that transactions keep flowing meanwhile.
///
/// Resumable by construction: its work list is read from the database (users whose identity is
/// missing, unpublished, or does not sign their current device), and each user's progress is
/// committed step by step (``CryptoEngine/ensureCrossSigning(_:onForeignIdentity:)``), so a restart
/// picks up where the last one stopped and never makes a second identity. After a pass it looks
/// again every ``rescanInterval`` for stragglers (failures, recreated devices).
public final class CrossSigningBackfillService: Service, Sendable {
    /// What `status` and `identity` show of the backfill.
    public struct Progress: Sendable, Equatable {
        public var running = false
        /// Users published (or found complete) and failed since start.
        public var published = 0
        public var failed = 0
        public var lastError: String?
        public var lastPassFinishedAt: Date?
    }

    let engine: CryptoEngine
    let store: any CryptoStore
    let interval: Duration
    let rescanInterval: Duration
    /// Left to its own startup path (the bot, whose refusal of a foreign identity stops the daemon).
    let skip: UserID?
    let policy: @Sendable (UserID) -> ForeignIdentityPolicy
    let logger: Logger
    private let state = Mutex(Progress())
    let publishedCounter = Counter(label: "sealbridge_cross_signing_backfill_published_total")
    let failedCounter = Counter(label: "sealbridge_cross_signing_backfill_failed_total")

    /// - Parameters:
    ///   - perSecond: Users handled per second at most (`encryption.cross_signing.backfill_per_second`).
    public init(
        engine: CryptoEngine, store: any CryptoStore, perSecond: Int, rescanInterval: Duration = .seconds(600), skip: UserID?,
        policy: @escaping @Sendable (UserID) -> ForeignIdentityPolicy, logger: Logger
    ) {
        self.engine = engine
        self.store = store
        self.interval = .nanoseconds(1_000_000_000 / Int64(max(1, perSecond)))
        self.rescanInterval = rescanInterval
        self.skip = skip
        self.policy = policy
        self.logger = logger
    }

    public var progress: Progress { state.withLock { $0 } }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.pass()
                try await Task.sleep(for: self.rescanInterval)
            }
        }
    }

    /// One walk over the work list, paced; errors of one user are logged and counted, not fatal.
    ///
    /// - Returns: How many users were published in this pass.
    @discardableResult
    public func pass() async -> Int {
        state.withLock { $0.running = true }
        defer { state.withLock { $0.running = false; $0.lastPassFinishedAt = Date() } }
        var cursor: UserID?
        var published = 0
        do {
            while !Task.isCancelled {
                let page = try await store.crossSigningBacklog(after: cursor, limit: 100)
                guard let last = page.last else { break }
                cursor = last
                for user in page where user != skip {
                    let started = ContinuousClock.now
                    do {
                        try await engine.ensureCrossSigning(user, onForeignIdentity: policy(user))
                        published += 1
                        publishedCounter.increment()
                        state.withLock { $0.published += 1 }
                    } catch {
                        failedCounter.increment()
                        state.withLock { $0.failed += 1; $0.lastError = "\(user): \(error)" }
                        logger.warning("could not publish a cross-signing identity", metadata: ["user": "\(user)", "error": "\(error)"])
                    }
                    try await Task.sleep(until: started + interval)
                }
            }
        } catch is CancellationError {
        } catch {
            state.withLock { $0.lastError = "\(error)" }
            logger.warning("cross-signing backfill interrupted; retrying later", metadata: ["error": "\(error)"])
        }
        if published > 0 { logger.notice("cross-signing backfill pass done", metadata: ["published": "\(published)"]) }
        return published
    }
}
