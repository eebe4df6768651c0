import AppService
import Logging
import MatrixCrypto
import MatrixModels
import Metrics
import Postgres
import Store

/// Runs the crypto machine on each appservice transaction, inside its database transaction: the
/// Olm and Megolm state it changed, parked events and replay entries commit with the txn id or not
/// at all. Nothing here waits on the network: key uploads, wedged-session recoveries and the device
/// lists of unknown to-device senders go to ``CryptoFollowUps`` after the commit.
///
/// Must run under ``CryptoEngine/lock`` (``SerializedTransactionProcessor``), so no send works
/// from a ratchet this transaction is about to replace.
public struct CryptoTransactionHandler: TransactionHandler {
    let engine: CryptoEngine
    let store: PostgresCryptoStore
    let followUps: CryptoFollowUps
    /// Receives invites and messages after the commit (the bot); nil: nobody listens.
    let activity: (@Sendable ([RoomActivity]) -> Void)?
    let isLocal: @Sendable (UserID) -> Bool
    let undecryptable: UndecryptableLog?
    /// Where deliveries for the bridge logic are queued, and who counts as local; nil: no bridge API.
    let outbox: (Outbox, LocalUsers)?
    /// Keeps the reported one-time key counts for `status`; nil: not kept.
    let keyGauge: OneTimeKeyGauge?
    let log = TransactionLog()
    let report = CryptoStepReport()

    public init(
        engine: CryptoEngine, store: PostgresCryptoStore, followUps: CryptoFollowUps, undecryptable: UndecryptableLog? = nil,
        isLocal: @escaping @Sendable (UserID) -> Bool = { _ in false }, outbox: (Outbox, LocalUsers)? = nil,
        keyGauge: OneTimeKeyGauge? = nil, activity: (@Sendable ([RoomActivity]) -> Void)? = nil
    ) {
        self.keyGauge = keyGauge
        self.outbox = outbox
        self.engine = engine
        self.store = store
        self.followUps = followUps
        self.undecryptable = undecryptable
        self.isLocal = isLocal
        self.activity = activity
    }

    public func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger
    ) async throws -> AfterCommit {
        let start = ContinuousClock.now
        return try await write(try await engine.machine.process(transaction), of: transaction, txnID: txnID, connection: connection, start: start, logger: logger)
    }

    /// Runs the crypto step while the txn id's claim is on its way, then writes only if the claim
    /// succeeded. Dropping the step of a duplicate leaves nothing behind: the machine's Olm objects
    /// live only inside the call, its changes only in the step, and what it caches between calls is
    /// what the store holds (``CryptoMachine``); key requests are answered only after a commit.
    public func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, claimed: @escaping @Sendable () async throws -> Bool,
        logger: Logger
    ) async throws -> AfterCommit? {
        let start = ContinuousClock.now
        async let isClaimed = claimed()
        let processed: Result<CryptoStep, any Error>
        do {
            processed = .success(try await engine.machine.process(transaction))
        } catch {
            processed = .failure(error)
        }
        // The claim is answered before anything else: a duplicate is a duplicate even when its step
        // failed (the original committed; nothing is to be retried), and its connection is never
        // left with a statement in flight.
        guard try await isClaimed else { return nil }
        return try await write(try processed.get(), of: transaction, txnID: txnID, connection: connection, start: start, logger: logger)
    }

    /// Writes a claimed transaction's step on `connection` and queues its deliveries; returns what
    /// runs after the commit.
    private func write(
        _ step: CryptoStep, of transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, start: ContinuousClock.Instant,
        logger: Logger
    ) async throws -> AfterCommit {
        let logged = try await log.handle(transaction, txnID: txnID, connection: connection, logger: logger)
        try await store.save(step.changes, on: connection)
        let crypto = TransactionPhase.crypto.record(since: start)
        report.record(step, logger: logger)
        if let (outbox, users) = outbox {
            // PostgreSQL writes what is queued (replay entries, sessions, the log row) on one core
            // while the deliveries are built and sealed on the others, instead of after them.
            async let written: Void = connection.sendQueued()
            let sealed = try await outbox.sealed(Delivery.collect(transaction, step: step, users: users))
            try await written
            try outbox.enqueue(sealed, on: connection)
            TransactionPhase.deliveries.record(since: crypto)
        }
        let failures = step.roomEvents.filter { if case .failure = $0.result { true } else { false } }.count
        if failures > 0, let undecryptable { await undecryptable.record(failures) }
        let uploads = step.uploads, wedged = step.wedged, keyRequests = step.keyRequests, followUps = followUps
        let released = step.changes.releasedEvents.isEmpty ? [] : Set(step.changes.inboundGroupSessions.map(\.sessionID))
        let activities = activity == nil ? [] : RoomActivity.collect(transaction, step: step, isLocal: isLocal)
        let activity = activity, outbox = outbox?.0, keyGauge = keyGauge
        let counts = transaction.oneTimeKeyCounts
        // A local recipient of the waiting payloads asks for their senders' devices.
        let pending = step.changes.pendingToDevice
        // Senders whose key-sharing device is not in their stored device list (a new device, whose
        // room key came with MSC4147 sender_device_keys) were judged unknown_device: the trust anchor
        // (the bot) fetches their devices, so their next events are judged on what they publish.
        let unjudged = Set(step.roomEvents.filter { $0.trust == .unknownDevice && !isLocal($0.sender) }.map(\.sender))
        let anchor = unjudged.isEmpty ? nil : await engine.machine.trustAnchor
        // A history bundle pointer, or a local user's invite its bundle may have waited for.
        let bundles = !step.changes.historyBundles.isEmpty || !step.changes.roomInvites.isEmpty
        return logged.then(AfterCommit {
            for upload in uploads { followUps.enqueue(.upload(upload)) }
            for session in wedged { followUps.enqueue(.recover(session)) }
            for request in keyRequests { followUps.enqueue(.answerKeyRequest(request)) }
            // Parked events released: their keys came; a request we sent for them is withdrawn.
            if !released.isEmpty { followUps.enqueue(.settleKeyRequests(released)) }
            if let requester = pending.first?.recipient.userID {
                followUps.enqueue(.resolveSenders(Set(pending.map(\.sender)), requester: requester))
            }
            if let anchor { followUps.enqueue(.resolveSenders(unjudged, requester: anchor)) }
            if bundles { followUps.enqueue(.importHistoryBundles) }
            if !activities.isEmpty { activity?(activities) }
            await outbox?.signal.notify()
            if !counts.isEmpty { await keyGauge?.record(counts) }
        })
    }
}

/// Counts and logs what a crypto step did; never the plaintext or any key.
public struct CryptoStepReport: Sendable {
    let decrypted = Counter(label: "sealbridge_crypto_room_events_decrypted_total")
    let parked = Counter(label: "sealbridge_crypto_room_events_parked_total")
    let toDeviceFailures = Counter(label: "sealbridge_crypto_to_device_failures_total")
    let toDevicePending = Counter(label: "sealbridge_crypto_to_device_pending_total")
    let conflicts = Counter(label: "sealbridge_crypto_room_key_conflicts_total")

    public init() {}

    public func record(_ step: CryptoStep, logger: Logger) {
        RecoveryMetrics.record(step)
        for outcome in step.roomEvents {
            switch outcome.result {
            case .success: decrypted.increment()
            case .failure(let failure):
                logger.warning("room event not decrypted", metadata: [
                    "event_id": "\(outcome.eventID)", "room_id": "\(outcome.roomID)", "reason": "\(failure.reason)",
                ])
            }
        }
        parked.increment(by: step.parked.count)
        for outcome in step.toDevice {
            if outcome.pending { toDevicePending.increment() }
            guard let failure = outcome.failure else { continue }
            toDeviceFailures.increment()
            logger.warning("to-device message not decrypted", metadata: [
                "sender": "\(outcome.sender)", "recipient": "\(outcome.recipient)", "reason": "\(failure)",
            ])
        }
        for conflict in step.keyConflicts {
            conflicts.increment()
            logger.warning("a room key claims a session another sender already shared; the stored claim is kept", metadata: [
                "room_id": "\(conflict.roomID)", "session_id": "\(conflict.sessionID)", "first_sender": "\(conflict.existingSender)",
                "new_sender": "\(conflict.newSender)", "refused": "\(conflict.refused)",
            ])
        }
        if !step.parked.isEmpty {
            logger.info("room events waiting for their keys", metadata: ["parked": "\(step.parked.count)"])
        }
        if !step.unknownSenders.isEmpty {
            logger.info("to-device messages waiting for their senders' device lists", metadata: ["senders": "\(step.unknownSenders.count)"])
        }
    }
}

/// Processes each transaction under the crypto lock, through the commit.
public struct SerializedTransactionProcessor: TransactionProcessing {
    let inner: any TransactionProcessing
    let lock: AsyncLock

    public init(_ inner: any TransactionProcessing, lock: AsyncLock) {
        self.inner = inner
        self.lock = lock
    }

    public func process(txnID: String, body: [UInt8], _ transaction: AppserviceTransaction, logger: Logger) async throws -> TransactionOutcome {
        try await lock.withLock { try await inner.process(txnID: txnID, body: body, transaction, logger: logger) }
    }
}
