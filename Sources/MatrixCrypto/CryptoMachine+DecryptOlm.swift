import Foundation
import MatrixModels
import Olm

extension CryptoMachine {
    /// Handles one to-device message for a local device: decrypts Olm and acts on its payload, or
    /// records a plaintext `m.room_key.withheld`.
    func receiveToDevice(
        _ event: ToDeviceEvent, scratch: Scratch, changes: inout CryptoChanges, wedged: inout [WedgedSession]
    ) async throws -> ToDeviceOutcome {
        var outcome = ToDeviceOutcome(sender: event.sender, recipient: event.toUserID, type: event.type, failure: nil)
        if event.type == "m.room_key.withheld" {
            if let notice = Self.withheldNotice(event.content) {
                changes.withheldNotices.append(notice)
                scratch.withheld[Self.groupKey(notice.roomID, notice.sessionID)] = notice
            }
            return outcome
        }
        guard event.type == "m.room.encrypted" else { return outcome }
        outcome.type = nil
        guard let (record, account) = try await loadAccount(event.toUserID, into: scratch), record.deviceID == event.toDeviceID else {
            outcome.failure = .notForThisDevice
            return outcome
        }
        do throws(DecryptionFailure) {
            let senderKey = event.content["sender_key"]?.stringValue ?? ""
            let stored = try await loadOlmSessions(record, senderKey: senderKey, scratch: scratch)
            let decrypted = try OlmDecryption.decrypt(content: event.content, sender: event.sender, account: account, sessions: stored.map(\.1))
            let senderDevice = try await senderDevice(of: decrypted, sender: event.sender)
            if senderDevice?.dehydrated == true { throw DecryptionFailure.unverifiedSender("to-device from a dehydrated device") }
            try OlmDecryption.validate(
                decrypted.payload, sender: event.sender, recipient: record.userID,
                recipientEd25519: account.identityKeys.ed25519, senderEd25519: senderDevice?.ed25519)
            // The session advanced (or was created): persist it with the rest of the step.
            guard let touched = try? touchOlmSession(decrypted.session, local: record, remoteKey: decrypted.senderKey, scratch: scratch) else {
                throw DecryptionFailure.malformed("the Olm session does not pickle")
            }
            changes.olmSessions.append(touched)
            let type = decrypted.payload["type"]?.stringValue ?? ""
            outcome.type = type
            switch type {
            case "m.room_key":
                guard let content = decrypted.payload["content"] else { throw DecryptionFailure.malformed("m.room_key without content") }
                try acceptRoomKey(content, senderKey: decrypted.senderKey, sender: event.sender, scratch: scratch, changes: &changes)
            case "m.forwarded_room_key":
                // Sealbridge sends no key requests, and its users have no other devices that could
                // forward one: a forwarded key is always unsolicited.
                throw DecryptionFailure.forwardedKeyRefused("from \(event.sender); Sealbridge requested no key")
            default:
                break  // m.dummy and others: the session advanced, nothing else to do.
            }
        } catch {
            outcome.failure = error
            if case .wedgedSession(let sender, let remoteKey) = error,
                let recovery = try await wedgedRecovery(record, remoteUser: sender, remoteKey: remoteKey, wedged: wedged)
            {
                wedged.append(recovery)
                changes.olmRecoveries.append(OlmRecovery(localUserID: record.userID, remoteKey: remoteKey, at: now()))
            }
        }
        return outcome
    }

    /// Stores the Megolm session an `m.room_key` carries, once per (room, session id).
    func acceptRoomKey(
        _ content: JSONValue, senderKey: String, sender: UserID, scratch: Scratch, changes: inout CryptoChanges
    ) throws(DecryptionFailure) {
        let roomKey = try RoomKey(content: content)
        let session = try roomKey.inboundSession()
        let key = Self.groupKey(roomKey.roomID, roomKey.sessionID)
        if let known = scratch.groupSessions[key], known.record.firstKnownIndex <= session.firstKnownIndex { return }
        let stored = StoredInboundGroupSession(
            roomID: roomKey.roomID, sessionID: roomKey.sessionID, senderKey: senderKey, senderUserID: sender,
            firstKnownIndex: session.firstKnownIndex, pickle: (try? session.pickle(key: cipher.pickleKey)) ?? "")
        changes.inboundGroupSessions.append(stored)
        scratch.groupSessions[key] = (stored, session)
        inboundCache.remove(key)
    }

    /// A recovery to perform, unless one with this remote key happened within the interval.
    func wedgedRecovery(_ record: StoredAccount, remoteUser: UserID, remoteKey: String, wedged: [WedgedSession]) async throws -> WedgedSession? {
        let recovery = WedgedSession(localUserID: record.userID, localDeviceID: record.deviceID, remoteUserID: remoteUser, remoteKey: remoteKey)
        guard !wedged.contains(recovery) else { return nil }
        if let last = try await store.lastOlmRecovery(localUserID: record.userID, remoteKey: remoteKey),
            now().timeIntervalSince(last) < settings.wedgedRecoveryInterval
        {
            return nil
        }
        return recovery
    }

    static func withheldNotice(_ content: JSONValue) -> WithheldNotice? {
        guard let room = content["room_id"]?.stringValue, let roomID = try? RoomID(room),
            let sessionID = content["session_id"]?.stringValue, let code = content["code"]?.stringValue
        else { return nil }
        return WithheldNotice(
            roomID: roomID, sessionID: sessionID, code: code, reason: content["reason"]?.stringValue,
            senderKey: content["sender_key"]?.stringValue ?? "")
    }

    /// The sender's verified device: MSC4147 `sender_device_keys` in the payload if present (it must
    /// carry the curve25519 key the message came from), else the tracked device list.
    func senderDevice(of decrypted: OlmDecryption.Decrypted, sender: UserID) async throws(DecryptionFailure) -> VerifiedDeviceKeys? {
        if let keys = decrypted.payload["sender_device_keys"], keys != .null {
            let device = try VerifiedDeviceKeys(keys, expectedUser: sender)
            guard device.curve25519 == decrypted.senderKey else {
                throw .unverifiedSender("sender_device_keys name another curve25519 key than the message came from")
            }
            return device
        }
        do {
            return try await store.devices(userIDs: [sender])[sender]?.first { $0.curve25519 == decrypted.senderKey }
        } catch {
            throw .malformed("cannot read the device list of \(sender): \(error)")
        }
    }

    func loadOlmSessions(_ record: StoredAccount, senderKey: String, scratch: Scratch) async throws(DecryptionFailure) -> [(StoredOlmSession, Session)] {
        if let loaded = scratch.olmSessions[record.userID.rawValue + "|" + senderKey] { return loaded.map { ($0.record, $0.session) } }
        let stored: [StoredOlmSession]
        do {
            stored = try await store.olmSessions(localUserID: record.userID, localDeviceID: record.deviceID, senderKey: senderKey)
        } catch {
            throw .malformed("cannot read Olm sessions: \(error)")
        }
        let sessions = stored.compactMap { entry in
            (try? Session.unpickle(entry.pickle, key: cipher.pickleKey)).map { (record: entry, session: $0) }
        }
        scratch.olmSessions[record.userID.rawValue + "|" + senderKey] = sessions
        return sessions.map { ($0.record, $0.session) }
    }

    static func groupKey(_ roomID: RoomID, _ sessionID: String) -> String { roomID.rawValue + "|" + sessionID }
}
