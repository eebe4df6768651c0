import Foundation
import Postgres

/// The appservice's record of transactions (`sealbridge_appservice_transactions` and
/// `sealbridge_transaction_log`, appservice migrations): SQL only. What a txn id means — processed
/// once, a duplicate answered 200, retention — stays in `AppService`.
public enum PostgresTransactionRows {
    /// What the log keeps of one processed transaction: how many entries of each kind it carried.
    public struct LogRow: Sendable {
        public var txnID: String
        public var events: Int
        public var ephemeral: Int
        public var toDevice: Int
        public var toDeviceDropped: Int
        public var deviceListsChanged: Int
        public var deviceListsLeft: Int
        public var oneTimeKeyCountDevices: Int
        public var fallbackDevices: Int
        /// The entries left out, by reason, as a JSON object.
        public var skipped: String

        public init(
            txnID: String, events: Int, ephemeral: Int, toDevice: Int, toDeviceDropped: Int, deviceListsChanged: Int, deviceListsLeft: Int,
            oneTimeKeyCountDevices: Int, fallbackDevices: Int, skipped: String
        ) {
            self.txnID = txnID
            self.events = events
            self.ephemeral = ephemeral
            self.toDevice = toDevice
            self.toDeviceDropped = toDeviceDropped
            self.deviceListsChanged = deviceListsChanged
            self.deviceListsLeft = deviceListsLeft
            self.oneTimeKeyCountDevices = oneTimeKeyCountDevices
            self.fallbackDevices = fallbackDevices
            self.skipped = skipped
        }
    }

    /// Inserts `txnID` (with its body's digest, nil when no body was kept) unless it is there.
    /// A concurrent claim of the same id waits on the row until the first commits or rolls back.
    /// - Returns: Whether this call inserted it (false: committed before, a duplicate).
    public static func claim(_ txnID: String, digest: [UInt8]?, on connection: PostgresConnection) async throws -> Bool {
        try await connection.execute("""
            INSERT INTO sealbridge_appservice_transactions (txn_id, body_sha256) VALUES (\(txnID), \(digest))
            ON CONFLICT (txn_id) DO NOTHING
            """) == 1
    }

    /// The body digest stored with committed `txnID`; nil when none was kept (or no such id).
    public static func digest(of txnID: String, on connection: PostgresConnection) async throws -> [UInt8]? {
        try await connection.query("SELECT body_sha256 FROM sealbridge_appservice_transactions WHERE txn_id = \(txnID)")
            .first?.decode([UInt8]?.self, "body_sha256")
    }

    /// Queues the log row of a claimed transaction: it goes out with the transaction's next statement
    /// (or COMMIT), not in a round trip of its own.
    public static func enqueueLog(_ row: LogRow, on connection: PostgresConnection) throws {
        try connection.enqueue(["""
            INSERT INTO sealbridge_transaction_log
                (txn_id, events, ephemeral, to_device, to_device_dropped, device_lists_changed, device_lists_left,
                 otk_count_devices, fallback_devices, skipped)
            VALUES (\(row.txnID), \(row.events), \(row.ephemeral), \(row.toDevice), \(row.toDeviceDropped), \(row.deviceListsChanged),
                    \(row.deviceListsLeft), \(row.oneTimeKeyCountDevices), \(row.fallbackDevices), \(PostgresJSONB(row.skipped)))
            """])
    }

    /// Deletes up to `batch` txn ids committed before `before`, oldest first (their log rows go with them).
    /// - Returns: How many were deleted.
    public static func pruneCommitted(before: Date, batch: Int, client: PostgresClient) async throws -> Int {
        try await client.execute("""
            DELETE FROM sealbridge_appservice_transactions WHERE txn_id IN (
                SELECT txn_id FROM sealbridge_appservice_transactions WHERE committed_at < \(before) ORDER BY committed_at LIMIT \(batch))
            """)
    }
}
