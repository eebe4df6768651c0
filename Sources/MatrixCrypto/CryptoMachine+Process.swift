import MatrixModels
import Olm

extension CryptoMachine {
    /// Runs a transaction's crypto inputs in the order the design fixes: to-device first (room keys
    /// arrive), then device-list changes, then key counts, then room events in timeline order (state
    /// changes membership and settings; `m.room.encrypted` is decrypted, or parked until its key arrives).
    ///
    /// Events parked by earlier steps are retried when a room key for their session arrives in this one.
    /// - Parameter parked: Extra parked events to retry; the store's own are found by session id.
    public func process(_ transaction: AppserviceTransaction, parked: [ParkedEvent] = []) async throws -> CryptoStep {
        let scratch = Scratch()
        var step = CryptoStep()
        for event in transaction.toDevice {
            step.toDevice.append(try await receiveToDevice(event, scratch: scratch, changes: &step.changes, wedged: &step.wedged))
        }
        try await receiveDeviceListChanges(transaction.deviceLists, scratch: scratch, changes: &step.changes)
        step.uploads = try await replenishKeys(
            counts: transaction.oneTimeKeyCounts, unusedFallbackTypes: transaction.unusedFallbackKeyTypes, scratch: scratch)
        let newSessions = Set(step.changes.inboundGroupSessions.map(\.sessionID))
        let waiting = newSessions.isEmpty ? [] : try await store.parkedEvents(sessionIDs: newSessions)
        let retried = Set((waiting + parked).map(\.eventID))
        // The message index sits in the clear in each ciphertext's header: fetch every replay entry
        // the transaction can hit in one query, instead of one per event.
        var replayKeys = Set<ReplayLedger.Key>()
        for event in (waiting + parked).map(\.event) + transaction.events where event["type"]?.stringValue == "m.room.encrypted" {
            if let sessionID = event["content"]?["session_id"]?.stringValue, let ciphertext = event["content"]?["ciphertext"]?.stringValue,
                let index = MegolmDecryption.messageIndex(of: ciphertext)
            {
                replayKeys.insert(ReplayLedger.Key(sessionID: sessionID, messageIndex: index))
            }
        }
        try await loadReplayEntries(replayKeys, scratch: scratch)
        try await decryptInParallel(transaction.events, scratch: scratch)
        var seen = Set<String>()
        for event in (waiting + parked).map(\.event) + transaction.events {
            if event["state_key"] != nil {
                try await receiveRoomState(event, scratch: scratch, changes: &step.changes)
                continue
            }
            guard event["type"]?.stringValue == "m.room.encrypted" else { continue }
            let eventID = event["event_id"]?.stringValue ?? ""
            guard seen.insert(eventID).inserted else { continue }
            switch try await decryptRoomEvent(event, scratch: scratch) {
            case .outcome(let outcome):
                step.roomEvents.append(outcome)
                if retried.contains(eventID) { step.changes.releasedEvents.insert(eventID) }
            case .park(let parkedEvent):
                step.parked.append(parkedEvent)
                if !retried.contains(eventID) { step.changes.parkedEvents.append(parkedEvent) }
            case .skip: break
            }
        }
        try flushAccounts(scratch, into: &step.changes)
        step.changes.replayEntries.merge(scratch.ledger.added) { first, _ in first }
        return step
    }
}
