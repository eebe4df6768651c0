import Foundation
import Logging
import MatrixModels
import Metrics
import Postgres

/// Keeps the database's outages from costing room keys.
///
/// A non-2xx answer makes the homeserver retry the transaction rebuilt from its event ids only: the
/// to-device messages (room keys), device-list changes and key counts it carried are lost. So when
/// the database is unavailable this holds the request, retrying, for up to ``holdFor`` (the
/// database may be restarting), then writes the transaction to the ``TransactionJournal`` and
/// answers 200; ``JournalReplayService`` applies the journal in order once the database is back.
/// While the journal holds anything, new transactions go behind it, so order is kept.
///
/// An error is answered only when even the journal cannot be written (disk full): counted as a
/// possible loss.
public struct JournalingTransactionProcessor: TransactionProcessing {
    let inner: any TransactionProcessing
    let journal: TransactionJournal
    let replay: JournalReplaySignal
    let holdFor: Duration
    let journaled = Counter(label: "sealbridge_appservice_transactions_journaled_total")
    let failed = Counter(label: "sealbridge_appservice_transactions_failed_total")

    public init(_ inner: any TransactionProcessing, journal: TransactionJournal, replay: JournalReplaySignal, holdFor: Duration) {
        self.inner = inner
        self.journal = journal
        self.replay = replay
        self.holdFor = holdFor
    }

    public func process(txnID: String, body: [UInt8], _ transaction: AppserviceTransaction, logger: Logger) async throws -> TransactionOutcome {
        if try await journal.count > 0 { return try await append(txnID: txnID, body: body, logger: logger, because: "earlier transactions are journaled") }
        let clock = ContinuousClock()
        let deadline = clock.now + holdFor
        let bounded = holdFor > .zero
        var delay = Duration.milliseconds(100)
        while true {
            do {
                // Each attempt is bounded by what is left of the hold: an attempt stuck connecting to a
                // database that went away would otherwise outlast it (the pool retries a connect for
                // its own timeout). An attempt cut short that did commit makes the journaled copy a
                // duplicate, which the replay answers without processing.
                guard let outcome = try await Self.within(bounded ? max(deadline - clock.now, .milliseconds(1)) : .zero, {
                    try await inner.process(txnID: txnID, body: body, transaction, logger: logger)
                }) else {
                    return try await append(txnID: txnID, body: body, logger: logger, because: "the database did not answer within the hold")
                }
                return outcome
            } catch where isDatabaseUnavailable(error) {
                let remaining = deadline - clock.now
                guard remaining > .zero else {
                    return try await append(txnID: txnID, body: body, logger: logger, because: "the database is unavailable: \(error)")
                }
                logger.warning("database unavailable; holding the transaction", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                try await Task.sleep(for: min(delay, remaining))
                delay = min(delay * 2, .seconds(2))
            } catch {
                failed.increment()
                throw error
            }
        }
    }

    /// Runs `body`, or stops waiting for it after `limit` (nil then): the attempt is cancelled and
    /// left to end in the background (a call blocked on a dead connection cannot be interrupted; it
    /// holds the crypto lock until it fails, and whatever it commits is idempotent on the txn id).
    /// With no limit (`hold_seconds: 0`) it simply runs.
    static func within(_ limit: Duration, _ body: @escaping @Sendable () async throws -> TransactionOutcome) async throws -> TransactionOutcome? {
        guard limit > .zero else { return try await body() }
        let attempt = Task { try await body() }
        let answer = FirstAnswer()
        return try await withCheckedThrowingContinuation { continuation in
            Task {
                do {
                    let outcome = try await attempt.value
                    await answer.give(.success(outcome), to: continuation)
                } catch {
                    await answer.give(.failure(error), to: continuation)
                }
            }
            Task {
                try? await Task.sleep(for: limit)
                if await answer.give(.success(nil), to: continuation) { attempt.cancel() }
            }
        }
    }

    func append(txnID: String, body: [UInt8], logger: Logger, because reason: String) async throws -> TransactionOutcome {
        do {
            try await journal.append(txnID: txnID, body: body)
        } catch {
            failed.increment()
            logger.critical("cannot journal a transaction; answering an error, which loses its to-device messages", metadata: ["error": "\(error)"])
            throw error
        }
        journaled.increment()
        logger.notice("transaction journaled; it will be applied when the database is back", metadata: ["reason": "\(reason)"])
        await replay.wake()
        return .journaled
    }
}

/// Resumes a continuation with the first answer given, once.
actor FirstAnswer {
    private var given = false

    /// - Returns: Whether this answer was the first.
    @discardableResult
    func give(_ result: Result<TransactionOutcome?, any Error>, to continuation: CheckedContinuation<TransactionOutcome?, any Error>) -> Bool {
        guard !given else { return false }
        given = true
        continuation.resume(with: result)
        return true
    }
}
