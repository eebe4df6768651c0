import Logging
import MatrixModels
import Metrics
import Postgres
import Primitives
import Store
import Synchronization

/// Commits each transaction once: the txn id row and the handler's changes in one database transaction.
///
/// The txn id is inserted first: it is the transaction's first statement, and the handler writes
/// nothing until its answer (it may compute meanwhile — the crypto step does, so the round trip costs
/// nothing). A concurrent duplicate blocks on that row until the first commits, then sees the
/// conflict and answers `duplicate`; if the first rolled back, the duplicate proceeds.
/// So a txn id is processed exactly once, across concurrent retries and restarts. A duplicate whose
/// body differs from the committed one is answered 200 as the spec says, but logged and counted.
///
/// A failure that is not the database being unavailable (a bug, a pickle that will not open, a
/// constraint) is retried by the homeserver; after ``TransactionQuarantine``'s threshold the
/// transaction is quarantined and answered 200, so one transaction can never stop the stream.
/// Database unavailability is thrown as it is: the journal in front of this decides what to do.
public struct PostgresTransactionProcessor: TransactionProcessing {
    let client: PostgresClient
    let handler: any TransactionHandler
    /// nil: every failure is thrown (tests of the bare processor).
    let quarantine: TransactionQuarantine?
    /// Whether this instance owns the crypto state; nil: always (tests).
    let fence: InstanceFence?
    let redelivered = Counter(label: "sealbridge_appservice_transactions_redelivered_total", dimensions: [("body", "different")])

    public init(
        client: PostgresClient, handler: any TransactionHandler, quarantine: TransactionQuarantine? = nil, fence: InstanceFence? = nil
    ) {
        self.client = client
        self.handler = handler
        self.quarantine = quarantine
        self.fence = fence
    }

    public func process(txnID: String, body: [UInt8], _ transaction: AppserviceTransaction, logger: Logger) async throws -> TransactionOutcome {
        let start = ContinuousClock.now
        let key = Self.storableID(txnID)
        let digest = SHA256.hash(body)
        if let fence { _ = try fence.check() }
        do {
            var handled = start
            let (outcome, afterCommit) = try await client.withTransaction { connection -> (TransactionOutcome, AfterCommit) in
                // The handler starts its step while the txn id's INSERT is on its way (the claim is
                // the first statement it awaits, and it writes nothing before the answer).
                let answer = Mutex<Bool?>(nil)
                let claim: @Sendable () async throws -> Bool = {
                    // Timed from its own start: the task may wait for a core to start while the step
                    // decrypts on all of them, and that wait costs the transaction nothing.
                    let sent = ContinuousClock.now
                    let claimed = try await PostgresTransactionRows.claim(key, digest: digest, on: connection)
                    TransactionPhase.claim.record(since: sent)
                    answer.withLock { $0 = claimed }
                    return claimed
                }
                let result = try await handler.handle(transaction, txnID: key, connection: connection, claimed: claim, logger: logger)
                // Only the claim's own answer decides: a handler that skipped it must not turn a
                // transaction into a 200 that nothing processed.
                switch (result, answer.withLock { $0 }) {
                case (.some, true?), (nil, false?): break
                default:
                    throw ClaimContractError(message: "the transaction handler returned without the txn id's claim it depends on")
                }
                guard let afterCommit = result else {
                    if let stored = try await PostgresTransactionRows.digest(of: key, on: connection), stored != digest {
                        redelivered.increment()
                        logger.warning(
                            "the homeserver sent a committed txn id again with another body; answered 200 without processing (a homeserver rebuilds a retry from event ids only, e.g. after our answer was lost)")
                    }
                    return (.duplicate, .nothing)
                }
                handled = .now
                return (.processed, afterCommit)
            }
            if outcome == .processed { TransactionPhase.commit.record(since: handled) }
            await quarantine?.succeeded(key)
            await afterCommit.run()
            return outcome
        } catch where isDatabaseUnavailable(error) {
            throw error
        } catch {
            guard let quarantine else { throw error }
            if let id = try await quarantine.failed(txnID: key, body: body, digest: digest, error: error, logger: logger) {
                return .quarantined(id: id)
            }
            throw error
        }
    }

    /// The txn id as stored: as sent when it is storable text of at most 255 bytes, else its SHA-256.
    static func storableID(_ txnID: String) -> String {
        guard !txnID.isStorableText || txnID.utf8.count > 255 else { return txnID }
        return "sha256:" + Hex.encode(SHA256.hash(Array(txnID.utf8)))
    }
}
