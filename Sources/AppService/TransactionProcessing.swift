import Logging
import MatrixModels

/// What happened to a transaction the homeserver pushed. Every case is answered 200.
public enum TransactionOutcome: Sendable, Equatable {
    /// Processed now and committed together with its txn id.
    case processed
    /// Committed earlier (possibly before a restart): answered 200 without processing again.
    case duplicate
    /// The database was unavailable: written to the local journal (sealed, fsync'd), to be applied
    /// in order as soon as the database is back.
    case journaled
    /// Processing failed for a reason retrying does not fix: kept sealed in the quarantine (this id)
    /// for an admin to retry after an upgrade.
    case quarantined(id: Int64)
}

/// Commits a decoded transaction exactly once per txn id.
///
/// The front door calls this after authentication and decoding; only when it returns does the homeserver
/// get its 200. An error means nothing was committed, so the homeserver's retry is safe — but a
/// retry carries only the events (Synapse rebuilds it from event ids), so an error loses the
/// to-device part: implementations answer errors only as a last resort.
public protocol TransactionProcessing: Sendable {
    /// - Parameter body: The raw body, as received: kept (sealed) when the transaction is journaled or quarantined.
    func process(txnID: String, body: [UInt8], _ transaction: AppserviceTransaction, logger: Logger) async throws -> TransactionOutcome
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

/// Seals what the front door keeps of a raw transaction (journal files, quarantine rows): a key derived
/// from the operator's secret, bound to `context`.
public protocol TransactionSealing: Sendable {
    func seal(_ bytes: [UInt8], context: String) throws -> [UInt8]
    func open(_ sealed: [UInt8], context: String) throws -> [UInt8]
}
