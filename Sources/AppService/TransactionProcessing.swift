import Logging
import MatrixModels

/// What happened to a transaction the homeserver pushed.
public enum TransactionOutcome: Sendable, Equatable {
    /// Processed now and committed together with its txn id.
    case processed
    /// Committed earlier (possibly before a restart): answered 200 without processing again.
    case duplicate
}

/// Commits a decoded transaction exactly once per txn id.
///
/// The front door calls this after authentication and decoding; only when it returns does the homeserver
/// get its 200. An error means nothing was committed, so the homeserver's retry is safe.
public protocol TransactionProcessing: Sendable {
    func process(txnID: String, _ transaction: AppserviceTransaction, logger: Logger) async throws -> TransactionOutcome
}

/// Answers the homeserver's `users/{userId}` and `rooms/{alias}` queries.
///
/// Returning `true` promises the user or alias now exists (the appservice created it).
public protocol AppServiceQueries: Sendable {
    func userExists(_ userID: UserID) async throws -> Bool
    func roomAliasExists(_ alias: RoomAlias) async throws -> Bool
}

/// Creates nothing on demand: every query is answered 404. Puppets are created by the bridge itself.
public struct NoOnDemandProvisioning: AppServiceQueries {
    public init() {}
    public func userExists(_ userID: UserID) async throws -> Bool { false }
    public func roomAliasExists(_ alias: RoomAlias) async throws -> Bool { false }
}
