import Foundation
import Logging
import MatrixModels
import Postgres
import ServiceLifecycle

/// Wakes the replay as soon as something was journaled.
public actor JournalReplaySignal {
    private var waiter: CheckedContinuation<Void, Never>?
    private var pending = false

    public init() {}

    public func wake() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        } else {
            pending = true
        }
    }

    /// Returns at the next ``wake()`` (at once if one came since the last wait), after `timeout`, or
    /// when the waiting task is cancelled (shutdown).
    func wait(timeout: Duration) async {
        if pending {
            pending = false
            return
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.timeOut()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume()
                } else {
                    waiter = continuation
                }
            }
        } onCancel: {
            Task { await self.timeOut() }
        }
        timer.cancel()
    }

    private func timeOut() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        }
    }
}

/// Applies the journal to PostgreSQL, oldest entry first, each through the same processor as a live
/// transaction (idempotent on its txn id, poison handling included), and removes an entry only
/// after its commit. Runs at startup too: a daemon killed with a non-empty journal applies it when
/// it comes back, before anything newer.
public struct JournalReplayService: Service {
    let journal: TransactionJournal
    let processor: any TransactionProcessing
    let signal: JournalReplaySignal
    let logger: Logger

    public init(journal: TransactionJournal, processor: any TransactionProcessing, signal: JournalReplaySignal, logger: Logger) {
        self.journal = journal
        self.processor = processor
        self.signal = signal
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await drain()
                await signal.wait(timeout: .seconds(5))
            }
        }
    }

    /// Applies entries until the journal is empty or the database is unavailable.
    /// - Returns: How many entries were applied.
    @discardableResult
    public func drain() async -> Int {
        var applied = 0
        var delay = Duration.milliseconds(250)
        while !Task.isCancelled {
            let next: (sequence: UInt64, entry: Result<TransactionJournal.Entry, TransactionJournal.JournalError>)?
            do {
                next = try await journal.oldest()
            } catch {
                logger.error("cannot read the transaction journal", metadata: ["error": "\(error)"])
                return applied
            }
            guard let next else {
                if applied > 0 { logger.notice("transaction journal applied", metadata: ["entries": "\(applied)"]) }
                return applied
            }
            switch next.entry {
            case .failure(let error):
                logger.critical("a journal entry cannot be opened; moved to rejected/ for an operator", metadata: ["error": "\(error)"])
                try? await journal.setAside(next.sequence)
            case .success(let entry):
                let transaction: AppserviceTransaction
                do {
                    transaction = try AppserviceTransaction.decode(entry.body)
                } catch {
                    logger.critical("a journal entry no longer decodes; moved to rejected/", metadata: ["error": "\(error)"])
                    try? await journal.setAside(next.sequence)
                    continue
                }
                var entryLogger = logger
                entryLogger[metadataKey: "txn_id"] = "\(entry.txnID)"
                entryLogger[metadataKey: "journal_entry"] = "\(entry.sequence)"
                do {
                    let outcome = try await processor.process(txnID: entry.txnID, body: entry.body, transaction, logger: entryLogger)
                    try await journal.remove(next.sequence)
                    applied += 1
                    delay = .milliseconds(250)
                    entryLogger.info("journaled transaction applied", metadata: ["outcome": "\(outcome)"])
                } catch where isDatabaseUnavailable(error) {
                    return applied
                } catch {
                    // Counted by the processor; after its threshold it quarantines and returns.
                    entryLogger.warning("journaled transaction failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(30))
                }
            }
        }
        return applied
    }
}
