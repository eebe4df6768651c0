import AppService
import Bridge
import Logging
import MatrixCrypto
import Postgres
import SealbridgeConfig

/// How a pushed transaction travels: journal (while the database is away) → crypto lock →
/// PostgreSQL commit with the txn id, quarantine after repeated failures; and the service that
/// applies the journal. The daemon and the front-door tests build it the same way.
public struct TransactionPipeline: Sendable {
    /// What the HTTP route calls.
    public let front: any TransactionProcessing
    /// What the journal replay and quarantine retries call: past the journal, under the lock.
    public let committed: any TransactionProcessing
    public let journal: TransactionJournal?
    public let replay: JournalReplayService?
    public let heartbeat = PipelineHeartbeat()
    /// Whether this instance owns the crypto state (for `/health`); nil: always.
    public let fence: InstanceFence?
    /// Records bodies over `max_body_size` (answered 200 unprocessed); nil without a quarantine.
    public let oversized: (@Sendable (_ txnID: String, _ size: Int) async throws -> Void)?

    /// - Parameters:
    ///   - cipher: Seals journal entries; nil (encryption off, no pickle key) leaves the journal out:
    ///     a transaction that meets an unavailable database is then answered with an error.
    ///   - lock: The crypto engine's lock, held by each transaction through its commit.
    ///   - quarantine: Where repeatedly failing transactions go; nil: they are answered with an error.
    ///   - fence: Whether this instance owns the crypto state; transactions wait while it does not.
    public init(
        configuration: SealbridgeConfiguration, client: PostgresClient, handler: any TransactionHandler, cipher: StoreCipher?,
        lock: AsyncLock?, quarantine: TransactionQuarantine?, fence: InstanceFence? = nil, logger: Logger
    ) {
        self.fence = fence
        let sealing = cipher.map { CipherSealing(cipher: $0) }
        let limit = configuration.appservice.maxBodySize
        if let quarantine {
            oversized = { @Sendable (txnID: String, size: Int) async throws in
                try await quarantine.oversized(txnID: txnID, size: size, limit: limit)
            }
        } else {
            oversized = nil
        }
        var processor: any TransactionProcessing = PostgresTransactionProcessor(
            client: client, handler: handler, quarantine: quarantine, fence: fence)
        if let lock { processor = SerializedTransactionProcessor(processor, lock: lock) }
        committed = processor
        if let sealing {
            let journal = TransactionJournal(directory: configuration.appservice.journalPath, sealing: sealing)
            let signal = JournalReplaySignal()
            self.journal = journal
            replay = JournalReplayService(journal: journal, processor: processor, signal: signal, logger: logger)
            front = JournalingTransactionProcessor(
                processor, journal: journal, replay: signal, holdFor: .seconds(configuration.appservice.holdSeconds))
        } else {
            journal = nil
            replay = nil
            front = processor
        }
    }
}

/// ``TransactionSealing`` with the store cipher's AES-256-GCM key.
struct CipherSealing: TransactionSealing {
    let cipher: StoreCipher

    func seal(_ bytes: [UInt8], context: String) throws -> [UInt8] { try cipher.seal(bytes, context: context) }
    func open(_ sealed: [UInt8], context: String) throws -> [UInt8] { try cipher.open(sealed, context: context) }
}
