import Foundation
import MatrixModels
import Olm
import Primitives

extension CryptoMachine {
    /// Reads the accounts of the Olm messages' recipients in one query, then their Olm sessions with
    /// each sender key in one query per key (a room key to a portal room's puppets arrives as a hundred
    /// messages, one per device), instead of two reads per message, in order, under the crypto lock.
    func readRecipientsAhead(of toDevice: [ToDeviceEvent], scratch: Scratch) async throws {
        let encrypted = toDevice.filter { $0.type == "m.room.encrypted" }
        let recipients = Set(encrypted.map(\.toUserID)).filter { scratch.accounts[$0] == nil && scratch.storedAccounts[$0] == nil }.sorted()
        guard recipients.count > 1 else { return }
        let found = try await store.accounts(userIDs: recipients)
        for user in recipients { scratch.storedAccounts[user] = .some(found[user]) }
        var bySenderKey: [String: Set<DeviceRef>] = [:]
        for event in encrypted {
            guard let senderKey = event.content["sender_key"]?.stringValue, KeyFormat.isKey(senderKey),
                let record = found[event.toUserID], record.deviceID == event.toDeviceID,
                scratch.olmSessions[OlmSessionsKey(localUserID: record.userID, remoteKey: senderKey)] == nil
            else { continue }
            bySenderKey[senderKey, default: []].insert(DeviceRef(userID: record.userID, deviceID: record.deviceID))
        }
        for (senderKey, devices) in bySenderKey.sorted(by: { $0.key < $1.key }) where devices.count > 1 {
            // A row that does not read leaves the messages to their own reads (and failures).
            let sessions: [DeviceRef: [StoredOlmSession]]
            do {
                sessions = try await store.olmSessions(senderKey: senderKey, localDevices: devices.sorted())
            } catch where Self.storeUnavailable(error) {
                throw error
            } catch {
                continue
            }
            for device in devices {
                scratch.storedOlmSessions[OlmSessionsKey(localUserID: device.userID, remoteKey: senderKey)] = sessions[device] ?? []
            }
        }
    }

    /// The recipient's account record and public identity keys, without libolm: the account itself is
    /// unpickled only for a new session (a one-time key to spend). A room key on an existing session,
    /// what a remote device keeps sending a puppet, needs only the session and the keys, which the
    /// stored pickle gives when opened as a snapshot (libcrypto, a tenth of libolm's unpickle).
    /// nil when the user has no account here or its pickle does not open (then in `unreadableAccounts`).
    func recipient(_ userID: UserID, scratch: Scratch) async throws -> (record: StoredAccount, identity: IdentityKeys)? {
        if let loaded = scratch.accounts[userID] { return (loaded.record, loaded.account.identityKeys) }
        if let known = scratch.recipients[userID] { return known }
        if scratch.unreadableAccounts.contains(userID) { return nil }
        let read: StoredAccount?
        if let ahead = scratch.storedAccounts[userID] {
            read = ahead
        } else {
            read = try await store.account(userID: userID)
            scratch.storedAccounts[userID] = .some(read)
        }
        guard let record = read else { return nil }
        let snapshot: AccountSnapshot?
        do {
            snapshot = try cipher.unpickle(record.pickle) { try AccountSnapshot.open($0, key: $1) }
        } catch {
            scratch.unreadableAccounts.insert(userID)
            return nil
        }
        guard let snapshot else {
            // A pickle version only libolm reads.
            return try await readableAccount(userID, into: scratch).map { ($0.record, $0.account.identityKeys) }
        }
        let known = (record: record, identity: snapshot.identityKeys)
        scratch.recipients[userID] = known
        return known
    }

    /// Handles one to-device message for a local device: decrypts Olm and acts on its payload, or
    /// records a plaintext `m.room_key.withheld`.
    ///
    /// An Olm message that decrypts is genuine Olm even when its payload is refused: the session it
    /// advanced or created (spending a one-time key) is kept either way, so the sender's next message
    /// on it still decrypts. A payload whose sender device is not known yet waits, sealed, for the
    /// device list (fetched after the commit, never inside it).
    func receiveToDevice(_ event: ToDeviceEvent, scratch: Scratch, step: inout CryptoStep) async throws -> ToDeviceOutcome {
        var outcome = ToDeviceOutcome(sender: event.sender, recipient: event.toUserID, type: event.type, failure: nil)
        if event.type == "m.room_key.withheld" || event.type == "org.matrix.room_key.withheld" {
            if let notice = Self.withheldNotice(event.content, sender: event.sender) {
                step.changes.withheldNotices.append(notice)
                scratch.withheld[GroupSessionRef(roomID: notice.roomID, sessionID: notice.sessionID), default: []].append(notice)
            }
            return outcome
        }
        if event.type == "m.room_key_request" {
            receiveKeyRequest(event, outcome: &outcome, step: &step)
            return outcome
        }
        guard event.type == "m.room.encrypted" else { return outcome }
        outcome.type = nil
        guard let (record, identity) = try await recipient(event.toUserID, scratch: scratch) else {
            outcome.failure = scratch.unreadableAccounts.contains(event.toUserID) ? .unreadableAccount(event.toUserID) : .notForThisDevice
            return outcome
        }
        guard record.deviceID == event.toDeviceID else {
            outcome.failure = .notForThisDevice
            return outcome
        }
        let senderKey = event.content["sender_key"]?.stringValue ?? ""
        let parsed: (senderKey: String, message: OlmMessage)
        do throws(DecryptionFailure) {
            guard KeyFormat.isKey(senderKey) else { throw .malformed("sender_key is not a curve25519 key") }
            parsed = try OlmDecryption.envelope(event.content, ourCurve25519: identity.curve25519)
        } catch {
            outcome.failure = error
            return outcome
        }
        // The database away fails the whole step, never this message alone: the transaction is then
        // held and journaled with its to-device part (docs/homeserver-input.md), where a failure
        // recorded for the message would have committed it as lost. A row that does not read fails
        // only this message.
        let stored: [(StoredOlmSession, Session)]
        do {
            stored = try await loadOlmSessions(record, senderKey: senderKey, scratch: scratch)
        } catch where Self.storeUnavailable(error) {
            throw error
        } catch {
            outcome.failure = .malformed("cannot read Olm sessions: \(error)")
            return outcome
        }
        let existing: OlmDecryption.Decrypted?
        do throws(DecryptionFailure) {
            existing = try OlmDecryption.decryptExisting(parsed.message, senderKey: parsed.senderKey, sender: event.sender, sessions: stored.map(\.1))
        } catch {
            outcome.failure = error
            if case .wedgedSession(let sender, let remoteKey) = error,
                let recovery = try await wedgedRecovery(record, remoteUser: sender, remoteKey: remoteKey, wedged: step.wedged)
            {
                step.wedged.append(recovery)
                step.changes.olmRecoveries.append(OlmRecovery(localUserID: record.userID, remoteKey: remoteKey, at: now()))
            }
            return outcome
        }
        let decrypted: OlmDecryption.Decrypted
        if let existing {
            decrypted = existing
        } else {
            // A pre-key message no session matches: only a new session needs the account itself (it
            // spends a one-time key).
            guard let (_, account) = try await readableAccount(event.toUserID, into: scratch) else {
                outcome.failure = .unreadableAccount(event.toUserID)
                return outcome
            }
            do throws(DecryptionFailure) {
                decrypted = try OlmDecryption.decryptNewSession(parsed.message, senderKey: parsed.senderKey, account: account)
            } catch {
                outcome.failure = error
                return outcome
            }
        }
        // Genuine Olm: keep the session (and the account, whose one-time key it spent) whatever the payload says.
        step.changes.olmSessions.append(try touchOlmSession(decrypted.session, local: record, remoteKey: decrypted.senderKey, scratch: scratch))
        outcome.type = decrypted.payload["type"]?.stringValue
        do throws(DecryptionFailure) {
            if let failure = decrypted.payloadFailure { throw failure }
            try OlmDecryption.validateAddressing(
                decrypted.payload, sender: event.sender, recipient: record.userID, recipientEd25519: identity.ed25519)
            guard let senderDevice = try await senderDevice(
                of: decrypted.payload, senderKey: decrypted.senderKey, sender: event.sender, scratch: scratch)
            else {
                step.changes.pendingToDevice.append(PendingToDevice(
                    id: Self.randomID(), recipient: DeviceRef(userID: record.userID, deviceID: record.deviceID), sender: event.sender,
                    senderKey: decrypted.senderKey, payload: decrypted.payload, receivedAt: now()))
                step.unknownSenders.insert(event.sender)
                outcome.pending = true
                return outcome
            }
            try await act(
                on: decrypted.payload, sender: event.sender, senderKey: decrypted.senderKey, senderDevice: senderDevice, recipient: record,
                recipientEd25519: identity.ed25519, scratch: scratch, changes: &step.changes)
        } catch {
            outcome.failure = error
        }
        return outcome
    }

    /// Checks a decrypted payload against its sender's verified device and the recipient, then acts
    /// on it: stores an `m.room_key`, an `m.forwarded_room_key` only in answer to our request (else
    /// refused), keeps an MSC4268 `m.room_key_bundle` pointer for its invite, and lets the rest (`m.dummy`) be.
    func act(
        on payload: JSONValue, sender: UserID, senderKey: String, senderDevice: VerifiedDeviceKeys, recipient: StoredAccount,
        recipientEd25519: String, scratch: Scratch, changes: inout CryptoChanges
    ) async throws(DecryptionFailure) {
        if senderDevice.dehydrated { throw .unverifiedSender("to-device from a dehydrated device") }
        try OlmDecryption.validate(
            payload, sender: sender, recipient: recipient.userID, recipientEd25519: recipientEd25519, senderEd25519: senderDevice.ed25519)
        switch payload["type"]?.stringValue ?? "" {
        case "m.room_key":
            guard let content = payload["content"] else { throw .malformed("m.room_key without content") }
            do {
                _ = try await acceptRoomKey(
                    content, senderKey: senderKey, sender: sender, senderEd25519: senderDevice.ed25519, scratch: scratch, changes: &changes)
            } catch let failure as DecryptionFailure {
                throw failure
            } catch {
                // The database away (reading the session's earlier claims): the whole step fails.
                if Self.storeUnavailable(error) { scratch.storeFailure = error }
                throw .malformed("cannot store the room key: \(error)")
            }
        case "m.forwarded_room_key":
            // Only in answer to our own request, from the session's own device (see the function).
            guard let content = payload["content"] else { throw .malformed("m.forwarded_room_key without content") }
            try await acceptForwardedRoomKey(
                content, senderKey: senderKey, sender: sender, senderDevice: senderDevice, recipient: recipient, scratch: scratch, changes: &changes)
        case let type where PendingHistoryBundle.eventTypes.contains(type):
            // MSC4268: kept until the recipient's invite from this sender is seen (see the function).
            try receiveHistoryBundle(payload, sender: sender, senderKey: senderKey, senderDevice: senderDevice, recipient: recipient, changes: &changes)
        default:
            break  // m.dummy and others: the session advanced, nothing else to do.
        }
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

    /// Reads a plaintext `m.room_key.withheld`: a hint from `sender`, kept only when every field it
    /// is matched and stored by has a sane shape (the reason is free text: cut and cleaned).
    static func withheldNotice(_ content: JSONValue, sender: UserID) -> WithheldNotice? {
        guard let room = content["room_id"]?.stringValue, let roomID = try? RoomID(room),
            let sessionID = content["session_id"]?.stringValue, KeyFormat.isSessionID(sessionID),
            let senderKey = content["sender_key"]?.stringValue, KeyFormat.isKey(senderKey),
            let code = content["code"]?.stringValue, !code.isEmpty, code.utf8.count <= 64,
            code.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else { return nil }
        return WithheldNotice(
            roomID: roomID, sessionID: sessionID, code: code, reason: content["reason"]?.stringValue?.storableText(maxLength: 500),
            senderUserID: sender, senderKey: senderKey)
    }

    /// The sender's verified device: MSC4147 `sender_device_keys` in the payload if present (it must
    /// carry the curve25519 key the message came from, and may not contradict a device already
    /// pinned under its id), else the tracked device list. The same keys from the same sender are
    /// verified once per step (``Scratch/verifiedSenderDeviceKeys``); the checks against the message
    /// and the pinned device still run for every message.
    ///
    /// - Returns: nil when neither knows a device of `sender` with `senderKey` yet.
    func senderDevice(
        of payload: JSONValue, senderKey: String, sender: UserID, scratch: Scratch
    ) async throws(DecryptionFailure) -> VerifiedDeviceKeys? {
        let known: [VerifiedDeviceKeys]
        if let read = scratch.senderDevices[sender] {
            known = read
        } else {
            do {
                known = try await store.devices(userIDs: [sender])[sender] ?? []
            } catch {
                if Self.storeUnavailable(error) { scratch.storeFailure = error }
                throw .malformed("cannot read the device list of \(sender): \(error)")
            }
            scratch.senderDevices[sender] = known
        }
        if let keys = payload["sender_device_keys"], keys != .null {
            let ref = SenderDeviceKeysRef(sender: sender, keys: keys)
            let device: VerifiedDeviceKeys
            if let verified = scratch.verifiedSenderDeviceKeys[ref] {
                device = verified
            } else {
                senderDeviceKeysChecks += 1
                device = try VerifiedDeviceKeys(keys, expectedUser: sender)
                scratch.verifiedSenderDeviceKeys[ref] = device
            }
            guard device.curve25519 == senderKey else {
                throw .unverifiedSender("sender_device_keys name another curve25519 key than the message came from")
            }
            if let pinned = known.first(where: { $0.deviceID == device.deviceID }),
                pinned.curve25519 != device.curve25519 || pinned.ed25519 != device.ed25519
            {
                throw .unverifiedSender("sender_device_keys differ from the keys pinned for \(sender) \(device.deviceID)")
            }
            return device
        }
        return known.first { $0.curve25519 == senderKey }
    }

    func loadOlmSessions(_ record: StoredAccount, senderKey: String, scratch: Scratch) async throws -> [(StoredOlmSession, Session)] {
        let key = OlmSessionsKey(localUserID: record.userID, remoteKey: senderKey)
        if let loaded = scratch.olmSessions[key] { return loaded.map { ($0.record, $0.session) } }
        let stored: [StoredOlmSession]
        if let ahead = scratch.storedOlmSessions[key] {
            stored = ahead
        } else {
            stored = try await store.olmSessions(localUserID: record.userID, localDeviceID: record.deviceID, senderKey: senderKey)
        }
        let sessions = stored.compactMap { entry in
            (try? cipher.unpickle(entry.pickle, { try Session.unpickle($0, key: $1) })).map { (record: entry, session: $0) }
        }
        scratch.olmSessions[key] = sessions
        return sessions.map { ($0.record, $0.session) }
    }

    /// 16 random bytes in hex: ids of pending to-device payloads.
    static func randomID() -> String {
        Hex.encode(SecureRandom.bytes(count: 16))
    }
}
