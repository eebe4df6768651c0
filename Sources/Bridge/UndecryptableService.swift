import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Metrics
import ServiceLifecycle

/// Keeps undecryptable events from waiting in silence: asks the sender's devices for a missing key
/// after ``Settings/keyRequestAfter``, delivers parked events to the bridge logic
/// as undecryptable after ``Settings/surfaceAfter`` (a key that comes later delivers them again,
/// `late`), retries to-device payloads still waiting for their senders' devices, and forgets parked
/// events and waiting payloads past their retention.
public struct UndecryptableService: Service {
    public struct Settings: Sendable {
        /// How long an event waits for its key before the bridge logic hears it is undecryptable.
        public var surfaceAfter: TimeInterval
        /// How long a parked event is kept (and can still be decrypted late).
        public var parkedRetention: TimeInterval
        /// How long a to-device payload waits for its sender's devices.
        public var pendingRetention: TimeInterval
        /// Time between two rounds.
        public var interval: Duration
        /// How long an event waits before its key is asked for (``CryptoEngine/requestRoomKeys(waitingLongerThan:reaskAfter:limit:now:)``); nil: never.
        public var keyRequestAfter: TimeInterval?

        public init(
            surfaceAfter: TimeInterval = 60, parkedRetention: TimeInterval = 7 * 86_400, pendingRetention: TimeInterval = 86_400,
            interval: Duration = .seconds(5)
        ) {
            self.surfaceAfter = surfaceAfter
            self.parkedRetention = parkedRetention
            self.pendingRetention = pendingRetention
            self.interval = interval
        }
    }

    let engine: CryptoEngine
    let store: any CryptoStore
    let settings: Settings
    let onCommitted: (@Sendable (CryptoStep) async -> Void)?
    let logger: Logger
    let surfaced = Counter(label: "sealbridge_crypto_undecryptable_surfaced_total")
    let expired = Counter(label: "sealbridge_crypto_parked_expired_total")

    public init(
        engine: CryptoEngine, store: any CryptoStore, settings: Settings = Settings(),
        onCommitted: (@Sendable (CryptoStep) async -> Void)? = nil, logger: Logger
    ) {
        self.engine = engine
        self.store = store
        self.settings = settings
        self.onCommitted = onCommitted
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var rounds = 0
            while true {
                try await Task.sleep(for: settings.interval)
                await requestRound()
                await surfaceRound()
                // Sweeps and expiry once a minute (every twelfth round at the default interval).
                if rounds % 12 == 0 { await sweepRound() }
                rounds += 1
            }
        }
    }

    /// Surfaces what is due, in batches, until nothing is left.
    public func surfaceRound(now: Date = Date()) async {
        do {
            while true {
                let step = try await engine.surfaceUndecryptable(olderThan: settings.surfaceAfter, now: now)
                guard !step.roomEvents.isEmpty else { return }
                surfaced.increment(by: step.roomEvents.count)
                logger.notice("events still undecryptable after the wait were delivered as such", metadata: ["events": "\(step.roomEvents.count)"])
                await onCommitted?(step)
            }
        } catch {
            logger.warning("could not surface undecryptable events", metadata: ["error": "\(error)"])
        }
    }

    /// Asks for the keys of events that waited longer than ``Settings/keyRequestAfter``.
    public func requestRound(now: Date = Date()) async {
        guard let wait = settings.keyRequestAfter else { return }
        do {
            try await engine.requestRoomKeys(waitingLongerThan: wait, now: now)
        } catch {
            logger.warning("could not ask for missing room keys", metadata: ["error": "\(error)"])
        }
    }

    /// Retries the senders whose payloads still wait, and forgets what is past its retention.
    public func sweepRound(now: Date = Date()) async {
        do {
            for (sender, recipient) in try await store.pendingSenders(limit: 100) {
                let step = try await engine.resolvePendingSenders([sender], as: recipient)
                await onCommitted?(step)
            }
            let (parked, pending) = try await store.expire(
                parkedBefore: now.addingTimeInterval(-settings.parkedRetention), pendingBefore: now.addingTimeInterval(-settings.pendingRetention))
            if parked + pending > 0 {
                expired.increment(by: parked + pending)
                logger.notice("forgot events and to-device messages past their retention", metadata: [
                    "parked_events": "\(parked)", "pending_to_device": "\(pending)",
                ])
            }
        } catch {
            logger.warning("undecryptable sweep failed", metadata: ["error": "\(error)"])
        }
        await historyBundleRound(now: now)
    }

    /// Imports the history bundles still due (a download that failed for a passing reason), and
    /// forgets bundles and invites older than ``CryptoMachine/historyBundleWindow`` (docs/history-bundles.md).
    public func historyBundleRound(now: Date = Date()) async {
        do {
            for step in try await engine.importHistoryBundles() where !step.historyBundles.isEmpty { await onCommitted?(step) }
            _ = try await store.expireHistoryBundles(before: now.addingTimeInterval(-CryptoMachine.historyBundleWindow))
        } catch {
            logger.warning("history bundle sweep failed", metadata: ["error": "\(error)"])
        }
    }
}
