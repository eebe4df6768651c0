import Foundation
import MatrixModels
import Olm

extension CryptoMachine {
    /// Plans an `m.room_key_request` for the session a parked event waits for.
    ///
    /// The asking device is a local user joined to the room (the trust anchor, the bot, when it is
    /// there). Only the sender's devices are asked — the one with the event's sender key when the
    /// event names it — never a device of anyone else, and never a dehydrated one; each device is
    /// asked for at most ``CryptoSettings/keyRequestsPerDevicePerMinute`` sessions a minute. A
    /// request already recorded for the session is sent again under its id.
    ///
    /// - Returns: The request to record (commit first) and send; nil when there is nobody to ask
    ///   from or to, or every recipient is over its limit (the event is due again later).
    public func planKeyRequest(for parked: ParkedEvent) async throws -> OutgoingKeyRequest? {
        // The sender is one of ours: Sealbridge created the session and has nothing to ask.
        if try await store.account(userID: parked.sender) != nil { return nil }
        guard let requester = try await keyRequester(in: parked.roomID) else { return nil }
        let devices = try await store.devices(userIDs: [parked.sender])[parked.sender] ?? []
        let candidates = devices.filter { !$0.dehydrated && (parked.senderKey == nil || $0.curve25519 == parked.senderKey) }
            .map { DeviceRef(userID: $0.userID, deviceID: $0.deviceID) }.sorted().prefix(20)
        let recipients = candidates.filter { takeRequestSlot($0) }
        guard !recipients.isEmpty else { return nil }
        let earlier = try await store.outgoingKeyRequests(sessionIDs: [parked.sessionID]).first { $0.roomID == parked.roomID }
        return OutgoingKeyRequest(
            roomID: parked.roomID, sessionID: parked.sessionID, requestID: earlier?.requestID ?? Self.randomID(), senderUserID: parked.sender,
            senderKey: parked.senderKey, requester: requester, recipients: recipients, requestedAt: now())
    }

    /// The to-device message that sends `request` (plaintext, as the spec has it).
    public nonisolated func keyRequestMessage(_ request: OutgoingKeyRequest, cancel: Bool = false) -> ToDeviceRequest {
        request.toDevice(cancel: cancel)
    }

    /// The outstanding key requests for any of `sessionIDs` (for `utd`).
    public func outstandingKeyRequests(sessionIDs: Set<String>) async throws -> [OutgoingKeyRequest] {
        try await store.outgoingKeyRequests(sessionIDs: sessionIDs)
    }

    /// The outstanding requests among `sessionIDs` whose key is now known (from any source): to
    /// remove and cancel (`request_cancellation` to the devices asked).
    public func settledKeyRequests(sessionIDs: Set<String>) async throws -> [OutgoingKeyRequest] {
        var settled: [OutgoingKeyRequest] = []
        for request in try await store.outgoingKeyRequests(sessionIDs: sessionIDs) {
            let claims = try await store.inboundGroupSessions(roomID: request.roomID, sessionID: request.sessionID)
            if claims.contains(where: { $0.senderUserID == request.senderUserID }) { settled.append(request) }
        }
        return settled
    }

    /// The local device that asks for keys in `roomID`: a local user joined to it with a device, the
    /// trust anchor if it is one, else the first of the first members in id order that has a device.
    public func keyRequester(in roomID: RoomID) async throws -> DeviceRef? {
        let joined = try await store.members(roomID: roomID).filter { $0.value == "join" }.map(\.key).sorted()
        var candidates = Array(joined.prefix(50))
        if let anchor = settings.trustAnchor, joined.contains(anchor) { candidates.insert(anchor, at: 0) }
        for user in candidates {
            if let account = try await store.account(userID: user) { return DeviceRef(userID: user, deviceID: account.deviceID) }
        }
        return nil
    }

    /// Whether `device` may be asked for one more session this minute (and counts it).
    func takeRequestSlot(_ device: DeviceRef) -> Bool {
        requestedFromDevice.take(device, limit: settings.keyRequestsPerDevicePerMinute, now: now())
    }

    /// Stores the key of an `m.forwarded_room_key`, only when it answers a request of ours:
    /// a local device's outstanding request for exactly that room and session, received by that
    /// device, from a device it asked, of the session's sender (the user of the waiting events), whose
    /// curve25519 key the message came from is the session's `sender_key` (the device that created
    /// it, not a relay: no forwarding chain) and the request's sender key when it had one, and whose
    /// Ed25519 key is the `sender_claimed_ed25519_key`. The session is kept as that device's own
    /// claim, marked forwarded. Anything else is refused: an unsolicited forward would let anyone
    /// plant keys under another sender's name.
    func acceptForwardedRoomKey(
        _ content: JSONValue, senderKey: String, sender: UserID, senderDevice: VerifiedDeviceKeys, recipient: StoredAccount, scratch: Scratch,
        changes: inout CryptoChanges
    ) async throws(DecryptionFailure) {
        guard let room = content["room_id"]?.stringValue, let roomID = try? RoomID(room),
            let sessionID = content["session_id"]?.stringValue, KeyFormat.isSessionID(sessionID)
        else { throw .malformed("m.forwarded_room_key needs room_id and session_id") }
        let outstanding: OutgoingKeyRequest?
        do {
            outstanding = try await store.outgoingKeyRequests(sessionIDs: [sessionID]).first { $0.roomID == roomID }
        } catch {
            if Self.storeUnavailable(error) { scratch.storeFailure = error }
            throw .malformed("cannot read key requests: \(error)")
        }
        guard let request = outstanding else { throw .forwardedKeyRefused("from \(sender): no request of ours for this session") }
        guard request.requester.userID == recipient.userID, request.requester.deviceID == recipient.deviceID else {
            throw .forwardedKeyRefused("from \(sender): another local device asked for this session")
        }
        guard sender == request.senderUserID else { throw .forwardedKeyRefused("from \(sender): not the session's sender") }
        guard request.recipients.contains(DeviceRef(userID: sender, deviceID: senderDevice.deviceID)) else {
            throw .forwardedKeyRefused("from \(sender) \(senderDevice.deviceID): a device that was not asked")
        }
        guard content["sender_key"]?.stringValue == senderKey, request.senderKey == nil || request.senderKey == senderKey else {
            throw .forwardedKeyRefused("from \(sender): not the device that created the session")
        }
        if let chain = content["forwarding_curve25519_key_chain"]?.arrayValue, !chain.isEmpty {
            throw .forwardedKeyRefused("from \(sender): relayed through other devices")
        }
        guard content["sender_claimed_ed25519_key"]?.stringValue == senderDevice.ed25519 else {
            throw .forwardedKeyRefused("from \(sender): sender_claimed_ed25519_key is not the sending device's")
        }
        do {
            _ = try await acceptRoomKey(
                content, senderKey: senderKey, sender: sender, senderEd25519: senderDevice.ed25519, forwarded: true, scratch: scratch,
                changes: &changes)
        } catch let failure as DecryptionFailure {
            throw failure
        } catch {
            throw .malformed("cannot store the forwarded room key: \(error)")
        }
    }
}
