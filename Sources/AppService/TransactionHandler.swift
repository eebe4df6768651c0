import Logging
import MatrixModels
import Postgres

/// Does the work of one appservice transaction inside its database transaction.
///
/// Everything the handler writes through `connection` commits together with the txn id, or not at
/// all: if it throws, the homeserver gets an error, retries, and finds nothing half-applied.
public protocol TransactionHandler: Sendable {
    func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger
    ) async throws
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
        try await client.withTransaction { connection in
            let claimed = try await connection.execute(
                "INSERT INTO sealbridge_appservice_transactions (txn_id) VALUES (\(txnID)) ON CONFLICT (txn_id) DO NOTHING")
            guard claimed == 1 else { return .duplicate }
            try await handler.handle(transaction, txnID: txnID, connection: connection, logger: logger)
            return .processed
        }
    }
}
