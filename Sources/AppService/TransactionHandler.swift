import Logging
import MatrixModels
import Postgres

/// Does the work of one appservice transaction inside its database transaction.
///
/// Everything the handler writes through `connection` commits together with the txn id, or not at
/// all: if it throws, the homeserver gets an error, retries, and finds nothing half-applied.
public protocol TransactionHandler: Sendable {
    /// - Returns: Work that may only start once the changes are committed (key uploads, replies).
    func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger
    ) async throws -> AfterCommit
}

/// Work a handler hands back to run only after its transaction committed: sending what depends on
/// committed state (uploading keys generated in the step) must never happen for a rolled-back step.
public struct AfterCommit: Sendable {
    let actions: [@Sendable () async -> Void]

    public init(_ action: @escaping @Sendable () async -> Void) { actions = [action] }
    init(actions: [@Sendable () async -> Void]) { self.actions = actions }

    /// Nothing to do after the commit.
    public static let nothing = AfterCommit(actions: [])

    /// Both, in order.
    public func then(_ next: AfterCommit) -> AfterCommit { AfterCommit(actions: actions + next.actions) }

    public func run() async {
        for action in actions { await action() }
    }
}

/// Commits each transaction once: the txn id row and the handler's changes in one database transaction.
///
/// The txn id is inserted first. A concurrent duplicate blocks on that row until the first commits,
/// then sees the conflict and answers `duplicate`; if the first rolled back, the duplicate proceeds.
/// So a txn id is processed exactly once, across concurrent retries and restarts.
public struct PostgresTransactionProcessor: TransactionProcessing {
    let client: PostgresClient
    let handler: any TransactionHandler

    public init(client: PostgresClient, handler: any TransactionHandler) {
        self.client = client
        self.handler = handler
    }

    public func process(txnID: String, _ transaction: AppserviceTransaction, logger: Logger) async throws -> TransactionOutcome {
        let (outcome, afterCommit) = try await client.withTransaction { connection -> (TransactionOutcome, AfterCommit) in
            let claimed = try await connection.execute(
                "INSERT INTO sealbridge_appservice_transactions (txn_id) VALUES (\(txnID)) ON CONFLICT (txn_id) DO NOTHING")
            guard claimed == 1 else { return (.duplicate, .nothing) }
            return (.processed, try await handler.handle(transaction, txnID: txnID, connection: connection, logger: logger))
        }
        await afterCommit.run()
        return outcome
    }
}
