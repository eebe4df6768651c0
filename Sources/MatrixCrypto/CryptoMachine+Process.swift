import MatrixModels
import Olm

extension CryptoMachine {
    /// Runs a transaction's crypto inputs in the order the design fixes: to-device first (room keys
    /// arrive), then device-list changes, then key counts, then room events in timeline order (state
    /// changes membership and settings; `m.room.encrypted` is decrypted, or parked until its key arrives).
    ///
    /// Events parked by earlier steps are retried when a room key for their session arrives in this one.
    /// Nothing here waits on the network: to-device payloads whose sender is unknown wait in
    /// ``CryptoChanges/pendingToDevice`` and are named in ``CryptoStep/unknownSenders``.
    /// - Parameter parked: Extra parked events to retry; the store's own are found by session id.
    public func process(_ transaction: AppserviceTransaction, parked: [ParkedEvent] = []) async throws -> CryptoStep {
        let scratch = Scratch()
        var step = CryptoStep()
        try await readRecipientsAhead(of: transaction.toDevice, scratch: scratch)
        for event in transaction.toDevice {
            step.toDevice.append(try await receiveToDevice(event, scratch: scratch, step: &step))
            if let failure = scratch.storeFailure { throw failure }
        }
        try await receiveDeviceListChanges(transaction.deviceLists, scratch: scratch, changes: &step.changes)
        step.uploads = try await replenishKeys(
            counts: transaction.oneTimeKeyCounts, unusedFallbackTypes: transaction.unusedFallbackKeyTypes, scratch: scratch)
        try await decryptRoomEvents(transaction.events, retrying: parked, scratch: scratch, step: &step)
        try flushAccounts(scratch, into: &step.changes)
        step.changes.replayEntries.merge(scratch.ledger.added) { first, _ in first }
        step.keyConflicts = scratch.conflicts
        processedSteps += 1
        return step
    }

    /// Follows room state and decrypts (or parks) the encrypted events among `events`, after retrying
    /// the parked events whose session got a key in this step (and `retrying`).
    func decryptRoomEvents(_ events: [JSONValue], retrying parked: [ParkedEvent], scratch: Scratch, step: inout CryptoStep) async throws {
        let newSessions = Set(step.changes.inboundGroupSessions.map(\.sessionID))
        let waiting = newSessions.isEmpty ? [] : try await store.parkedEvents(sessionIDs: newSessions)
        let retried = Dictionary((waiting + parked).map { ($0.eventID, $0) }, uniquingKeysWith: { first, _ in first })
        scratch.prepared = [:]  // positions in this call's `events` only
        // The message index sits in the clear in each ciphertext's header: fetch every replay entry
        // the step can hit in one query, instead of one per event.
        var replayKeys = Set<ReplayLedger.Key>()
        for event in (waiting + parked).map(\.event) + events where event["type"]?.stringValue == "m.room.encrypted" {
            if let sessionID = event["content"]?["session_id"]?.stringValue, KeyFormat.isSessionID(sessionID),
                let ciphertext = event["content"]?["ciphertext"]?.stringValue, let index = MegolmDecryption.messageIndex(of: ciphertext)
            {
                replayKeys.insert(ReplayLedger.Key(sessionID: sessionID, messageIndex: index))
            }
        }
        try await prefetch(replayKeys: replayKeys, sendersOf: (waiting + parked).map(\.event) + events, scratch: scratch) {
            try await decryptInParallel(events, scratch: scratch)
        }
        // Parked events are all encrypted: only the new ones can carry room state.
        try await prefetchRoomState(RoomStateReads(events), scratch: scratch)
        var seen = Set<String>()
        let retriedEvents = (waiting + parked).map(\.event)
        for (position, event) in (retriedEvents + events).enumerated() {
            if event["state_key"] != nil {
                try await receiveRoomState(event, scratch: scratch, changes: &step.changes)
                continue
            }
            guard event["type"]?.stringValue == "m.room.encrypted" else { continue }
            let eventID = event["event_id"]?.stringValue ?? ""
            guard seen.insert(eventID).inserted else { continue }
            let prepared = position >= retriedEvents.count ? scratch.prepared[position - retriedEvents.count] : nil
            switch try await decryptRoomEvent(event, prepared: prepared, scratch: scratch) {
            case .outcome(var outcome):
                if let earlier = retried[eventID] {
                    step.changes.releasedEvents.insert(eventID)
                    outcome.late = earlier.surfaced
                    outcome.parkedAt = earlier.parkedAt
                }
                step.roomEvents.append(outcome)
            case .park(let parkedEvent):
                step.parked.append(parkedEvent)
                if retried[eventID] == nil { step.changes.parkedEvents.append(parkedEvent) }
            case .skip: break
            }
        }
    }
}
