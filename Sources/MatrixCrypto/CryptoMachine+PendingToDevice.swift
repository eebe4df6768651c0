import Foundation
import MatrixModels

extension CryptoMachine {
    /// Acts on the to-device payloads that waited for `senders`' device lists, now that they were
    /// queried (and committed), and decrypts the parked events whose keys they carried.
    ///
    /// A payload whose sender key is still in no device of its sender is refused for good when the
    /// sender's list is fresh (queried, not outdated): the device does not exist or is not theirs.
    /// If the list could not be fetched (the user is still untracked or outdated), it keeps waiting.
    public func processPendingToDevice(senders: Set<UserID>) async throws -> CryptoStep {
        let scratch = Scratch()
        var step = CryptoStep()
        let pending = try await store.pendingToDevice(senders: senders)
        guard !pending.isEmpty else { return step }
        let tracked = try await store.trackedUsers(Array(senders))
        for message in pending {
            var outcome = ToDeviceOutcome(sender: message.sender, recipient: message.recipient.userID, type: message.payload["type"]?.stringValue)
            let recipient = try await readableAccount(message.recipient.userID, into: scratch)
            do throws(DecryptionFailure) {
                guard let device = try await senderDevice(
                    of: message.payload, senderKey: message.senderKey, sender: message.sender, scratch: scratch)
                else {
                    guard tracked[message.sender] == false else { continue }
                    throw .unverifiedSender("no device of \(message.sender) has the curve25519 key the message came from")
                }
                guard let (record, account) = recipient, record.deviceID == message.recipient.deviceID else {
                    throw scratch.unreadableAccounts.contains(message.recipient.userID) ? .unreadableAccount(message.recipient.userID) : .notForThisDevice
                }
                try await act(
                    on: message.payload, sender: message.sender, senderKey: message.senderKey, senderDevice: device, recipient: record,
                    recipientEd25519: account.identityKeys.ed25519, scratch: scratch, changes: &step.changes)
            } catch {
                outcome.failure = error
            }
            if let failure = scratch.storeFailure { throw failure }
            step.changes.releasedToDevice.insert(message.id)
            step.toDevice.append(outcome)
        }
        try await decryptRoomEvents([], retrying: [], scratch: scratch, step: &step)
        step.keyConflicts = scratch.conflicts
        return step
    }

    /// The parked events that waited longer than `before` allows and were not surfaced yet, each
    /// with the reason it still cannot be decrypted: to deliver to the bridge logic as undecryptable.
    /// Their `surfaced` mark is in the changes; if a key comes later they are delivered again, `late`.
    public func surfaceParkedEvents(parkedBefore before: Date, limit: Int) async throws -> CryptoStep {
        let scratch = Scratch()
        var step = CryptoStep()
        for parked in try await store.parkedEventsToSurface(parkedBefore: before, limit: limit) {
            step.changes.surfacedEvents.insert(parked.eventID)
            guard let eventID = try? EventID(parked.eventID) else { continue }
            step.roomEvents.append(RoomEventOutcome(
                eventID: eventID, roomID: parked.roomID, sender: parked.sender,
                result: .failure(try await waitingReason(parked, scratch: scratch)), senderKey: nil,
                originServerTimestamp: parked.event["origin_server_ts"]?.integerValue,
                claimedDeviceID: parked.event["content"]?["device_id"]?.stringValue.flatMap { try? DeviceID($0) }?.rawValue))
        }
        return step
    }

    /// The events still waiting for their keys, newest first, with why (for the `utd` command).
    public func undecryptable(in roomID: RoomID?, limit: Int) async throws -> [(event: ParkedEvent, reason: DecryptionFailure)] {
        let scratch = Scratch()
        var found: [(event: ParkedEvent, reason: DecryptionFailure)] = []
        for parked in try await store.recentParkedEvents(roomID: roomID, limit: limit) {
            found.append((parked, try await waitingReason(parked, scratch: scratch)))
        }
        return found
    }

    /// Why a parked event still waits: its sender's withheld notice, a key known only from a later
    /// index, or no key from its sender at all.
    func waitingReason(_ parked: ParkedEvent, scratch: Scratch) async throws -> DecryptionFailure {
        guard let envelope = try? MegolmDecryption.Envelope(content: parked.event["content"] ?? .null) else {
            return .unknownSession(sessionID: parked.sessionID)
        }
        var reason: DecryptionFailure = .unknownSession(sessionID: parked.sessionID)
        let claims = try await claims(GroupSessionRef(roomID: parked.roomID, sessionID: parked.sessionID), scratch: scratch)
        if let claim = Self.claim(for: parked.sender, envelopeSenderKey: envelope.senderKey, among: claims) {
            reason = .unknownMessageIndex(sessionID: parked.sessionID, firstKnownIndex: claim.firstKnownIndex)
        }
        return try await parkReason(parked.roomID, envelope, sender: parked.sender, otherwise: reason, scratch: scratch)
    }
}
