import Foundation
import MatrixModels
import Olm

extension CryptoMachine {
    /// Decrypts one to-device message for a local device and acts on its payload.
    func receiveToDevice(_ event: ToDeviceEvent, scratch: Scratch, changes: inout CryptoChanges) async throws -> ToDeviceOutcome {
        var outcome = ToDeviceOutcome(sender: event.sender, recipient: event.toUserID, type: nil, failure: nil)
        guard event.type == "m.room.encrypted" else {
            outcome.type = event.type
            return outcome
        }
        guard let (record, account) = try await loadAccount(event.toUserID, into: scratch), record.deviceID == event.toDeviceID else {
            outcome.failure = .notForThisDevice
            return outcome
        }
        do throws(DecryptionFailure) {
            let senderKey = event.content["sender_key"]?.stringValue ?? ""
            let stored = try await loadOlmSessions(record, senderKey: senderKey)
            let decrypted = try OlmDecryption.decrypt(content: event.content, sender: event.sender, account: account, sessions: stored.map(\.1))
            let senderDevice = try await senderDevice(of: decrypted, sender: event.sender)
            if senderDevice?.dehydrated == true { throw DecryptionFailure.unverifiedSender("to-device from a dehydrated device") }
            try OlmDecryption.validate(
                decrypted.payload, sender: event.sender, recipient: record.userID,
                recipientEd25519: account.identityKeys.ed25519, senderEd25519: senderDevice?.ed25519)
            // The session advanced (or was created): persist it with the rest of the step.
            changes.olmSessions.append(StoredOlmSession(
                localUserID: record.userID, localDeviceID: record.deviceID, senderKey: decrypted.senderKey,
                sessionID: decrypted.session.sessionID,
                pickle: (try? decrypted.session.pickle(key: cipher.pickleKey)) ?? "", lastUsed: now()))
            let type = decrypted.payload["type"]?.stringValue ?? ""
            outcome.type = type
            if type == "m.room_key", let content = decrypted.payload["content"] {
                let roomKey = try RoomKey(content: content)
                let session = try roomKey.inboundSession()
                let stored = StoredInboundGroupSession(
                    roomID: roomKey.roomID, sessionID: roomKey.sessionID, senderKey: decrypted.senderKey, senderUserID: event.sender,
                    firstKnownIndex: session.firstKnownIndex, pickle: (try? session.pickle(key: cipher.pickleKey)) ?? "")
                changes.inboundGroupSessions.append(stored)
                scratch.groupSessions[Self.groupKey(roomKey.roomID, roomKey.sessionID)] = (stored, session)
            }
        } catch {
            outcome.failure = error
        }
        return outcome
    }

    /// The sender's verified device: MSC4147 `sender_device_keys` in the payload if present (it must
    /// carry the curve25519 key the message came from), else the device directory.
    func senderDevice(of decrypted: OlmDecryption.Decrypted, sender: UserID) async throws(DecryptionFailure) -> VerifiedDeviceKeys? {
        if let keys = decrypted.payload["sender_device_keys"], keys != .null {
            let device = try VerifiedDeviceKeys(keys, expectedUser: sender)
            guard device.curve25519 == decrypted.senderKey else {
                throw .unverifiedSender("sender_device_keys name another curve25519 key than the message came from")
            }
            return device
        }
        return await devices.device(userID: sender, curve25519: decrypted.senderKey)
    }

    func loadOlmSessions(_ record: StoredAccount, senderKey: String) async throws(DecryptionFailure) -> [(StoredOlmSession, Session)] {
        let stored: [StoredOlmSession]
        do {
            stored = try await store.olmSessions(localUserID: record.userID, localDeviceID: record.deviceID, senderKey: senderKey)
        } catch {
            throw .malformed("cannot read Olm sessions: \(error)")
        }
        return stored.compactMap { entry in
            (try? Session.unpickle(entry.pickle, key: cipher.pickleKey)).map { (entry, $0) }
        }
    }

    static func groupKey(_ roomID: RoomID, _ sessionID: String) -> String { roomID.rawValue + "|" + sessionID }
}
