import MatrixModels
import Olm

extension CryptoMachine {
    /// Runs a transaction's crypto inputs in the order the design fixes: to-device first (room keys
    /// arrive), then key counts, then room events (decrypt, or park until the key arrives).
    ///
    /// - Parameter parked: Events parked by earlier steps whose keys may now be here.
    public func process(_ transaction: AppserviceTransaction, parked: [ParkedEvent] = []) async throws -> CryptoStep {
        let scratch = Scratch()
        var step = CryptoStep()
        for event in transaction.toDevice {
            step.toDevice.append(try await receiveToDevice(event, scratch: scratch, changes: &step.changes))
        }
        step.uploads = try await replenishKeys(
            counts: transaction.oneTimeKeyCounts, unusedFallbackTypes: transaction.unusedFallbackKeyTypes, scratch: scratch)
        for event in parked.map(\.event) + transaction.events where event["type"]?.stringValue == "m.room.encrypted" {
            switch try await decryptRoomEvent(event, scratch: scratch) {
            case .outcome(let outcome): step.roomEvents.append(outcome)
            case .park(let parkedEvent): step.parked.append(parkedEvent)
            case .skip: break
            }
        }
        try flushAccounts(scratch, into: &step.changes)
        for (_, ledger) in scratch.ledgers { step.changes.replayEntries.merge(ledger.added) { first, _ in first } }
        return step
    }
}
