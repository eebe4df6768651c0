import Logging
import MatrixModels
import Metrics
import Postgres
import Store

/// The front door's own handler: records what each transaction carried, in the database and as metrics.
///
/// Entries the decoder left out are recorded too (`skipped`, by reason, in the row and in
/// `sealbridge_appservice_entries_skipped_total{reason}`): they are data the homeserver will not send
/// again, so an operator must be able to see them.
///
/// Until the crypto engine takes over this is what runs for every transaction; afterwards it stays
/// as the first step of the pipeline, so operators can see traffic per transaction.
public struct TransactionLog: TransactionHandler {
    let transactions = Counter(label: "sealbridge_appservice_transactions_total")
    let events = Counter(label: "sealbridge_appservice_events_total")
    let toDevice = Counter(label: "sealbridge_appservice_to_device_total")
    let droppedToDevice = Counter(label: "sealbridge_appservice_to_device_dropped_total")

    public init() {}

    public func handle(
        _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger
    ) async throws -> AfterCommit {
        let otkDevices = transaction.oneTimeKeyCounts.values.reduce(0) { $0 + $1.count }
        let fallbackDevices = transaction.unusedFallbackKeyTypes.values.reduce(0) { $0 + $1.count }
        let skipped = JSONValue.object(transaction.skipped.byReason.reduce(into: [:]) { $0[$1.key.rawValue] = .integer(Int64($1.value)) })
        // Queued: it goes out with the transaction's next statement (or COMMIT), not in a round trip of its own.
        try PostgresTransactionRows.enqueueLog(
            PostgresTransactionRows.LogRow(
                txnID: txnID, events: transaction.events.count, ephemeral: transaction.ephemeral.count, toDevice: transaction.toDevice.count,
                toDeviceDropped: transaction.droppedToDevice, deviceListsChanged: transaction.deviceLists.changed.count,
                deviceListsLeft: transaction.deviceLists.left.count, oneTimeKeyCountDevices: otkDevices, fallbackDevices: fallbackDevices,
                skipped: skipped.serializedString()),
            on: connection)
        transactions.increment()
        events.increment(by: transaction.events.count)
        toDevice.increment(by: transaction.toDevice.count)
        droppedToDevice.increment(by: transaction.droppedToDevice)
        for (reason, count) in transaction.skipped.byReason {
            Counter(label: "sealbridge_appservice_entries_skipped_total", dimensions: [("reason", reason.rawValue)]).increment(by: count)
        }
        if !transaction.skipped.isEmpty {
            logger.warning(
                "left out transaction entries that could not be read",
                metadata: ["skipped": "\(transaction.skipped)", "to_device_dropped": "\(transaction.droppedToDevice)"])
        }
        return .nothing
    }
}
