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
