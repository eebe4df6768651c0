import MatrixModels
import Olm

extension CryptoMachine {
    enum RoomEventDisposition {
        case outcome(RoomEventOutcome)
        case park(ParkedEvent)
        case skip
    }

    /// Decrypts one `m.room.encrypted` room event, or parks it when its sender's key is not known yet.
    ///
    /// The event is decrypted only with a claim whose owner is the event's sender (see
    /// ``claim(for:envelopeSenderKey:among:)``); a session id known only from other senders parks the
    /// event, so the genuine owner's key can still arrive. A claim whose pickle does not open fails
    /// this event alone. A decrypted event carries the sharing device's ``DeviceTrust`` as of now;
    /// below ``CryptoSettings/acceptFrom`` it is refused (its plaintext dropped), not hidden.
    /// - Parameter prepared: What the parallel pass resolved for this event, if it did (the same
    ///   values this function would work out).
    func decryptRoomEvent(_ event: JSONValue, prepared: PreparedRoomEvent? = nil, scratch: Scratch) async throws -> RoomEventDisposition {
        guard let eventID = prepared?.eventID ?? event["event_id"]?.stringValue.flatMap({ try? EventID($0) }),
            let roomID = prepared?.roomID ?? event["room_id"]?.stringValue.flatMap({ try? RoomID($0) }),
            let sender = prepared?.sender ?? event["sender"]?.stringValue.flatMap({ try? UserID($0) })
        else { return .skip }
        func outcome(
            _ result: Result<MegolmDecryption.Decrypted, DecryptionFailure>, _ claim: StoredInboundGroupSession? = nil, trust: DeviceTrust? = nil
        ) -> RoomEventDisposition {
            .outcome(RoomEventOutcome(
                eventID: eventID, roomID: roomID, sender: sender, result: result, senderKey: claim?.senderKey, trust: trust,
                originServerTimestamp: event["origin_server_ts"]?.integerValue,
                claimedDeviceID: event["content"]?["device_id"]?.stringValue.flatMap { try? DeviceID($0) }?.rawValue,
                forwardedKey: claim?.forwarded ?? false, bundleSender: claim?.bundleSender?.userID))
        }
        let envelope: MegolmDecryption.Envelope
        if let prepared {
            envelope = prepared.envelope
        } else {
            do {
                envelope = try MegolmDecryption.Envelope(content: event["content"] ?? .null)
            } catch {
                return outcome(.failure(error))
            }
        }
        func park(_ otherwise: DecryptionFailure) async throws -> RoomEventDisposition {
            let reason = try await parkReason(roomID, envelope, sender: sender, otherwise: otherwise, scratch: scratch)
            return .park(ParkedEvent(
                event: event, sessionID: envelope.sessionID, roomID: roomID, sender: sender, senderKey: envelope.senderKey, reason: reason))
        }
        let claim: StoredInboundGroupSession, session: InboundGroupSession
        if let prepared {
            (claim, session) = (prepared.claim, prepared.session)
        } else {
            let claims = try await claims(GroupSessionRef(roomID: roomID, sessionID: envelope.sessionID), scratch: scratch)
            guard let found = Self.claim(for: sender, envelopeSenderKey: envelope.senderKey, among: claims) else {
                return try await park(.unknownSession(sessionID: envelope.sessionID))
            }
            guard let opened = groupSession(found, scratch: scratch) else {
                return outcome(.failure(.unreadableSession(sessionID: envelope.sessionID)))
            }
            (claim, session) = (found, opened)
        }
        if let index = MegolmDecryption.messageIndex(of: envelope.ciphertext) {
            let key = ReplayLedger.Key(sessionID: envelope.sessionID, messageIndex: index)
            // Usually prefetched for the whole step; read here only when it was not.
            if !scratch.ledgerKeys.contains(key) { try await loadReplayEntries([key], scratch: scratch) }
        }
        let decrypted: MegolmDecryption.Decrypted
        do {
            decrypted = try MegolmDecryption.decrypt(
                envelope, eventID: eventID, roomID: roomID, session: session, ledger: &scratch.ledger,
                predecrypted: scratch.predecrypted.removeValue(forKey: eventID.rawValue))
        } catch {
            if case .unknownMessageIndex = error { return try await park(error) }
            return outcome(.failure(error))
        }
        // Judged now, from the device that shared the key (the claim's owner is the sender).
        let trust = try await decryptionTrust(claim, scratch: scratch)
        guard trust.meets(settings.acceptFrom) else { return outcome(.failure(.untrustedDevice(trust)), claim, trust: trust) }
        return outcome(.success(decrypted), claim, trust: trust)
    }

    /// Why an event stays parked: a withheld notice of the event's own sender (and sender key) if one
    /// came, else `otherwise`. A third party's notice changes nothing.
    func parkReason(
        _ roomID: RoomID, _ envelope: MegolmDecryption.Envelope, sender: UserID, otherwise: DecryptionFailure, scratch: Scratch
    ) async throws -> DecryptionFailure {
        let ref = GroupSessionRef(roomID: roomID, sessionID: envelope.sessionID)
        let stored: [WithheldNotice]
        if let read = scratch.storedWithheld[ref] {
            stored = read
        } else {
            stored = try await store.withheldNotices(roomID: roomID, sessionID: envelope.sessionID)
            scratch.storedWithheld[ref] = stored
        }
        let notices = (scratch.withheld[ref] ?? []) + stored
        guard let notice = notices.first(where: { $0.applies(to: sender, senderKey: envelope.senderKey) }) else { return otherwise }
        return .withheld(code: notice.code, reason: notice.reason)
    }

    /// Reads the stored replay entries for `keys` not looked up yet in this step (one query for all).
    func loadReplayEntries(_ keys: Set<ReplayLedger.Key>, scratch: Scratch) async throws {
        let missing = keys.subtracting(scratch.ledgerKeys)
        guard !missing.isEmpty else { return }
        scratch.ledgerKeys.formUnion(missing)
        scratch.ledger.merge(stored: try await store.replayEntries(missing))
    }
}
