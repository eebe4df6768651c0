import Logging
import MatrixModels
import Postgres

/// Does the work of one appservice transaction inside its database transaction.
///
/// Everything the handler writes through `connection` commits together with the txn id, or not at
/// all: if it throws, nothing is half-applied.
public protocol TransactionHandler: Sendable {
    /// - Returns: Work that may only start once the changes are committed (key uploads, replies).
    func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger
    ) async throws -> AfterCommit

    /// The same, for a transaction whose txn id is still being claimed on `connection` (a round trip
    /// to PostgreSQL): `claimed` answers whether the transaction is this call's to process (false: its
    /// txn id was committed before, a duplicate). A handler may meanwhile do work that needs no
    /// connection and leaves nothing behind if dropped (the crypto step: nothing of it lasts until it
    /// commits), so the claim's round trip costs the transaction nothing; it must write nothing on
    /// `connection` before `claimed` said true.
    /// - Returns: nil when the claim failed: nothing was written.
    func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, claimed: @escaping @Sendable () async throws -> Bool,
        logger: Logger
    ) async throws -> AfterCommit?
}

/// A handler returned without the claim's answer that its result depends on (a result without
/// `claimed` having said true, or nil without it having said false): a bug. The transaction rolls
/// back and the homeserver retries it (then the quarantine), instead of its being answered 200 as a
/// duplicate that was never processed.
public struct ClaimContractError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension TransactionHandler {
    /// Waits for the claim, then handles: for handlers with nothing to do before it.
    public func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, claimed: @escaping @Sendable () async throws -> Bool,
        logger: Logger
    ) async throws -> AfterCommit? {
        guard try await claimed() else { return nil }
        return try await handle(transaction, txnID: txnID, connection: connection, logger: logger)
    }
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
