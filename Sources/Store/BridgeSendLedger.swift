import Foundation
import MatrixModels

/// Who a bridge API send is, for its idempotency record: the sender and the client's txn id.
public struct BridgeSendKey: Hashable, Sendable {
    public var sender: UserID
    public var txnID: String

    public init(sender: UserID, txnID: String) {
        self.sender = sender
        self.txnID = txnID
    }
}

/// The record that makes a retried bridge API send a no-op: a send is claimed before anything
/// leaves, and answered with its event id afterwards.
public protocol BridgeSendLedger: Sendable {
    /// Claims `key` for a send: true when this caller may send (no record, or a claim older than
    /// `staleAfter` that never got its event id — an attempt that crashed mid-send).
    func claim(_ key: BridgeSendKey, staleAfter: Duration) async throws -> Bool
    /// The event id a finished send of `key` got; nil while a claim is open or when there is none.
    func eventID(of key: BridgeSendKey) async throws -> EventID?
    /// Frees a claim whose send failed before anything left.
    func release(_ key: BridgeSendKey) async throws
    /// Records what the send got.
    func finish(_ key: BridgeSendKey, eventID: EventID) async throws
    /// Forgets up to `batch` finished sends older than `before` (housekeeping).
    /// - Returns: How many were forgotten.
    func prune(sentBefore before: Date, batch: Int) async throws -> Int
}
