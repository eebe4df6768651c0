import Foundation
import MatrixModels
import Olm

/// One requesting device asking for one session: the unit answers are rate-limited by.
struct KeyRequestSlot: Hashable {
    var requester: DeviceRef
    var sessionID: String
}

/// What to do about an `m.room_key_request`.
public enum KeyRequestAnswer: Sendable {
    /// Commit `changes` (the advanced Olm session), then send `request` as the answering device.
    case forward(changes: CryptoChanges, request: ToDeviceRequest)
    /// Refused, and the requester is told so: send `notice` (a plaintext `m.room_key.withheld`,
    /// `m.unauthorised`) as the answering device. Nothing to commit.
    case withhold(KeyRequestRefusal, notice: ToDeviceRequest)
    case refused(KeyRequestRefusal)
}

extension CryptoMachine {
    /// Answers a device that asks a local device again for the key of one of its own outbound
    /// sessions, as matrix-rust-sdk does: an Olm-encrypted `m.forwarded_room_key` exported from the
    /// index the device was given, never earlier, and only to a device that was given it, with the
    /// same curve25519 key as then.
    ///
    /// A device asking for a session of ours that it was never given (another user, a remote server's
    /// user, a new device), or whose keys changed since, is refused and told so: an `m.room_key.withheld`
    /// with `m.unauthorised`, as the spec suggests for a requester not allowed the key, so its client
    /// shows why instead of waiting. Everything else gets no answer (the refusal says why, to be
    /// counted): a session the local device did not create (or that was forgotten: not ours to speak
    /// for), a room or sender key that is not the session's, a dehydrated device, no Olm session to
    /// answer through (a key request never triggers a one-time key claim), an answer or notice to the
    /// same device for the same session within ``CryptoSettings/keyRequestAnswerInterval``, or more
    /// requests of the same user this minute than ``CryptoSettings/keyRequestsPerUserPerMinute``
    /// (refused before any store read).
    ///
    /// Nothing here touches the network: the answer is a request to send after `changes` commit.
    public func answer(_ request: RoomKeyRequest) async throws -> KeyRequestAnswer {
        guard request.action == .request, let asked = request.session else { return .refused(.mismatch) }
        guard takeAttempt(request.requester.userID) else { return .refused(.rateLimited) }
        guard let shared = try await store.sharedRoomKey(sessionID: asked.sessionID, recipient: request.requester),
            shared.senderUserID == request.recipient.userID, shared.senderDeviceID == request.recipient.deviceID,
            let initialPickle = shared.initialPickle
        else { return .refused(.notOurSession) }
        let scratch = Scratch()
        guard let (local, account) = try await loadAccount(shared.senderUserID, into: scratch), local.deviceID == shared.senderDeviceID else {
            return .refused(.notOurSession)
        }
        let identity = account.identityKeys
        guard shared.roomID == asked.roomID, asked.senderKey == nil || asked.senderKey == identity.curve25519 else { return .refused(.mismatch) }
        let slot = KeyRequestSlot(requester: request.requester, sessionID: asked.sessionID)
        let notice = WithheldKeyNotice(roomID: shared.roomID, sessionID: asked.sessionID, senderKey: identity.curve25519, from: local.deviceID)
        guard let share = shared.share else { return withhold(.notSharedWithDevice, notice, to: request.requester, slot: slot) }
        let devices = try await store.devices(userIDs: [request.requester.userID])[request.requester.userID] ?? []
        guard let device = devices.first(where: { $0.deviceID == request.requester.deviceID }), device.curve25519 == share.curve25519 else {
            return withhold(.deviceChanged, notice, to: request.requester, slot: slot)
        }
        if device.dehydrated { return .refused(.dehydrated) }
        if recentlyAnswered(slot) { return .refused(.rateLimited) }
        guard let newest = try await store.olmSessions(localUserID: local.userID, localDeviceID: local.deviceID, senderKey: device.curve25519).first,
            let session = try? cipher.unpickle(newest.pickle, { try Session.unpickle($0, key: $1) })
        else { return .refused(.noOlmSession) }

        let exported: String
        do {
            let outbound = try cipher.unpickle(initialPickle) { try OutboundGroupSession.unpickle($0, key: $1) }
            let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey)
            // The first stored pickle precedes every share of the session; the later of the two is never earlier than given.
            exported = try inbound.export(at: max(share.messageIndex, inbound.firstKnownIndex))
        } catch {
            throw CryptoError(code: .storeCorrupted, message: "the initial pickle of session \(asked.sessionID) does not open: \(error)")
        }
        let content: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(shared.roomID.rawValue),
            "sender_key": .string(identity.curve25519), "session_id": .string(asked.sessionID), "session_key": .string(exported),
            "sender_claimed_ed25519_key": .string(identity.ed25519), "forwarding_curve25519_key_chain": .array([]),
        ]
        let envelope = try Self.olmEncrypt(
            type: "m.forwarded_room_key", content: content, from: local, identity: identity, ownDeviceKeys: try ownDeviceKeys(local, account),
            to: device, session: session)
        var changes = CryptoChanges()
        changes.olmSessions = [try touchOlmSession(session, local: local, remoteKey: device.curve25519, scratch: scratch)]
        noteAnswered(slot)
        return .forward(
            changes: changes,
            request: ToDeviceRequest(eventType: "m.room.encrypted", messages: [request.requester.userID: [request.requester.deviceID: envelope]]))
    }

    /// `.withhold` with `notice` for `requester`, once per ``CryptoSettings/keyRequestAnswerInterval``
    /// for a device and session like an answer (a device asking in a loop is told once).
    func withhold(_ reason: KeyRequestRefusal, _ notice: WithheldKeyNotice, to requester: DeviceRef, slot: KeyRequestSlot) -> KeyRequestAnswer {
        if recentlyAnswered(slot) { return .refused(.rateLimited) }
        noteAnswered(slot)
        return .withhold(reason, notice: ToDeviceRequest(
            eventType: "m.room_key.withheld", messages: [requester.userID: [requester.deviceID: notice.content(code: Self.unauthorisedCode)]]))
    }

    /// Whether `slot` was answered (or told no) within the interval.
    func recentlyAnswered(_ slot: KeyRequestSlot) -> Bool {
        guard let last = answeredKeyRequests[slot] else { return false }
        return now().timeIntervalSince(last) < settings.keyRequestAnswerInterval
    }

    /// Whether `user`'s request may be looked at in this minute's window (and counts it).
    func takeAttempt(_ user: UserID) -> Bool {
        keyRequestAttempts.take(user, limit: settings.keyRequestsPerUserPerMinute, now: now())
    }

    /// Records an answer; forgets the ones older than the interval once many piled up.
    func noteAnswered(_ slot: KeyRequestSlot) {
        let at = now()
        if answeredKeyRequests.count >= 10_000 {
            answeredKeyRequests = answeredKeyRequests.filter { at.timeIntervalSince($0.value) < settings.keyRequestAnswerInterval }
        }
        answeredKeyRequests[slot] = at
    }
}

extension CryptoMachine {
    /// Takes an `m.room_key_request` off a transaction: a request waits in ``CryptoStep/keyRequests``
    /// to be answered after the commit (no Olm work inside the transaction); a cancellation withdraws
    /// the same device's request from this step. A malformed one is a failed outcome, counted.
    static let keyRequestsPerTransaction = 100

    func receiveKeyRequest(_ event: ToDeviceEvent, outcome: inout ToDeviceOutcome, step: inout CryptoStep) {
        guard let request = RoomKeyRequest(event) else {
            outcome.failure = .malformed("m.room_key_request with missing or malformed fields")
            return
        }
        switch request.action {
        case .request:
            // Each costs a store read after the commit: a transaction carries at most this many.
            guard step.keyRequests.count < Self.keyRequestsPerTransaction else {
                outcome.failure = .malformed("more than \(Self.keyRequestsPerTransaction) key requests in one transaction: skipped")
                return
            }
            // A device asking again before the first is answered is asked once; the step's size is bounded by the transaction's.
            if !step.keyRequests.contains(where: { $0.requester == request.requester && $0.session == request.session }) {
                step.keyRequests.append(request)
            }
        case .cancellation:
            step.keyRequests.removeAll { $0.requester == request.requester && $0.requestID == request.requestID }
        }
    }
}
