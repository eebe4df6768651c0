import Foundation
import Store

/// Forgets the bridge API's send records (the (sender, txn id) → event id map that makes a retried send
/// a no-op) older than a day, for the housekeeping service: a client retrying a send does so within
/// seconds or minutes, and the table would otherwise grow with every message the bridge sends.
public struct BridgeSendRetention: Sendable {
    let sends: any BridgeSendLedger

    public init(sends: any BridgeSendLedger) {
        self.sends = sends
    }

    /// Deletes up to `batch` records sent before `before`.
    /// - Returns: How many were deleted.
    public func prune(sentBefore before: Date, batch: Int) async throws -> Int {
        try await sends.prune(sentBefore: before, batch: batch)
    }

    /// The housekeeping task (records older than a day).
    public var task: HousekeepingTask {
        HousekeepingTask(table: "sealbridge_bridge_sends") { batch in
            try await prune(sentBefore: Date().addingTimeInterval(-86_400), batch: batch)
        }
    }
}
