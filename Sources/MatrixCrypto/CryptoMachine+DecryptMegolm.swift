import MatrixModels
import Olm

extension CryptoMachine {
    enum RoomEventDisposition {
        case outcome(RoomEventOutcome)
        case park(ParkedEvent)
        case skip
    }

    /// Decrypts one `m.room.encrypted` room event, or parks it when its session is not known yet.
    func decryptRoomEvent(_ event: JSONValue, scratch: Scratch) async throws -> RoomEventDisposition {
        guard let eventID = event["event_id"]?.stringValue.flatMap({ try? EventID($0) }),
            let roomID = event["room_id"]?.stringValue.flatMap({ try? RoomID($0) }),
            let sender = event["sender"]?.stringValue.flatMap({ try? UserID($0) })
        else { return .skip }
        func outcome(_ result: Result<MegolmDecryption.Decrypted, DecryptionFailure>, _ senderKey: String? = nil) -> RoomEventDisposition {
            .outcome(RoomEventOutcome(
                eventID: eventID, roomID: roomID, sender: sender, result: result, senderKey: senderKey,
                originServerTimestamp: event["origin_server_ts"]?.integerValue, claimedDeviceID: event["content"]?["device_id"]?.stringValue))
        }
        let envelope: MegolmDecryption.Envelope
        do {
            envelope = try MegolmDecryption.Envelope(content: event["content"] ?? .null)
        } catch {
            return outcome(.failure(error))
        }
        guard let (record, session) = try await loadGroupSession(roomID, envelope.sessionID, scratch: scratch) else {
            return .park(ParkedEvent(
                event: event, sessionID: envelope.sessionID, roomID: roomID,
                reason: try await parkReason(roomID, envelope.sessionID, otherwise: .unknownSession(sessionID: envelope.sessionID), scratch: scratch)))
        }
        // A session belongs to the user who shared it: another user's event cannot use it.
        guard record.senderUserID == sender else {
            return outcome(.failure(.payloadMismatch("event sender \(sender) is not the session's owner \(record.senderUserID)")))
        }
        if let index = MegolmDecryption.messageIndex(of: envelope.ciphertext) {
            try await loadReplayEntries([ReplayLedger.Key(sessionID: envelope.sessionID, messageIndex: index)], scratch: scratch)
        }
        do {
            let decrypted = try MegolmDecryption.decrypt(
                envelope, eventID: eventID, roomID: roomID, session: session, ledger: &scratch.ledger,
                predecrypted: scratch.predecrypted.removeValue(forKey: eventID.rawValue))
            return outcome(.success(decrypted), record.senderKey)
        } catch {
            if case .unknownMessageIndex = error {
                return .park(ParkedEvent(
                    event: event, sessionID: envelope.sessionID, roomID: roomID, reason: try await parkReason(roomID, envelope.sessionID, otherwise: error, scratch: scratch)))
            }
            return outcome(.failure(error))
        }
    }

    func loadGroupSession(_ roomID: RoomID, _ sessionID: String, scratch: Scratch) async throws
        -> (StoredInboundGroupSession, InboundGroupSession)?
    {
        let key = Self.groupKey(roomID, sessionID)
        if let loaded = scratch.groupSessions[key] { return loaded }
        if let cached = inboundCache.get(key) {
            scratch.groupSessions[key] = cached
            return cached
        }
        guard let record = try await store.inboundGroupSession(roomID: roomID, sessionID: sessionID) else { return nil }
        guard let session = try? InboundGroupSession.unpickle(record.pickle, key: cipher.pickleKey) else {
            throw CryptoError(code: .storeCorrupted, message: "inbound session \(sessionID) does not unpickle")
        }
        scratch.groupSessions[key] = (record, session)
        inboundCache.put(key, record, session)
        return (record, session)
    }

    /// Why an event stays parked: the sender's withheld notice if one came, else `otherwise`.
    func parkReason(_ roomID: RoomID, _ sessionID: String, otherwise: DecryptionFailure, scratch: Scratch) async throws -> DecryptionFailure {
        var notice = scratch.withheld[Self.groupKey(roomID, sessionID)]
        if notice == nil { notice = try await store.withheldNotice(roomID: roomID, sessionID: sessionID) }
        guard let notice else { return otherwise }
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
