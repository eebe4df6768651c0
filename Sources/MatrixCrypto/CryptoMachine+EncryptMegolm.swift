import Foundation
import MatrixModels
import Olm

extension CryptoMachine {
    /// Encrypts a room event as `sender`'s device, or says what must happen first.
    ///
    /// Each call re-reads the room: members, their devices, the outbound session and its shares. Only
    /// when every recipient device has the current session (or was told why not) is the event
    /// encrypted; so a member who joined or a device that appeared since the last call is never skipped.
    /// - Parameters:
    ///   - queried: Users already queried in this send; not asked for again even if still outdated.
    ///   - unreachable: Devices a claim gave no Olm session: they get `m.no_olm` instead of the key.
    public func encrypt(
        roomID: RoomID, sender: UserID, type: String, content: JSONValue, queried: Set<UserID> = [], unreachable: Set<DeviceRef> = []
    ) async throws -> RoomEncryptionStep {
        if let fast = try await encryptShared(roomID: roomID, sender: sender, type: type, content: content) { return .encrypted(fast) }
        // Read before the room is: a commit that lands after this read makes the recorded version stale.
        let version = try await store.recipientsVersion()
        let outdated = try await outdatedUsers(in: roomID).filter { !queried.contains($0) }
        if !outdated.isEmpty { return .queryDevices(outdated) }
        let scratch = Scratch()
        let plan = try await planShare(roomID: roomID, sender: sender, unreachable: unreachable, scratch: scratch)
        if !plan.claim.isEmpty { return .claimOneTimeKeys(plan.claim) }
        if let share = try await buildShare(plan, scratch: scratch) { return .shareRoomKey(share) }
        // Not while a device waits to have its claim retried: only a full plan notices its backoff is over.
        if !plan.isNew, plan.unreachable.isEmpty, !plan.record.shares.contains(where: { $0.withheldCode == Self.noOlmCode && $0.messageIndex == nil }) {
            fullyShared[OutboundSessionOwner(roomID: roomID, senderUserID: sender)] = (plan.record.sessionID, version)
        }
        identities[sender] = (plan.local.deviceID, plan.account.identityKeys.curve25519)

        let payload: JSONValue = ["type": .string(type), "content": content, "room_id": .string(roomID.rawValue)]
        let index = plan.session.messageIndex
        let ciphertext: String
        do {
            ciphertext = try plan.session.encrypt(payload.serialized())
        } catch {
            throw CryptoError(code: .olm, message: "Megolm encryption in \(roomID) failed: \(error.code)")
        }
        var record = plan.record
        record.pickle = try Self.pickled(plan.session, cipher)
        var changes = CryptoChanges()
        changes.outboundGroupSessions = [record]
        let encrypted: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "ciphertext": .string(ciphertext), "session_id": .string(record.sessionID),
            // Deprecated by the spec but still read by older clients.
            "sender_key": .string(plan.account.identityKeys.curve25519), "device_id": .string(plan.local.deviceID.rawValue),
        ]
        return .encrypted(EncryptedRoomEvent(changes: changes, content: encrypted, sessionID: record.sessionID, messageIndex: index))
    }

    /// Encrypts without re-reading the room when nothing that could add a recipient was committed
    /// since every recipient was found to have the current session, and it is not due for rotation.
    ///
    /// "Committed" is read from the database (``CryptoStore/recipientsVersion()``), not kept in memory:
    /// a commit whose answer was lost (connection dropped after COMMIT) still counts.
    func encryptShared(roomID: RoomID, sender: UserID, type: String, content: JSONValue) async throws -> EncryptedRoomEvent? {
        let owner = OutboundSessionOwner(roomID: roomID, senderUserID: sender)
        guard let known = fullyShared[owner], let identity = identities[sender] else { return nil }
        guard known.version == (try await store.recipientsVersion()) else {
            fullyShared[owner] = nil
            return nil
        }
        guard var record = try await store.outboundGroupSessionWithoutShares(roomID: roomID, senderUserID: sender),
            record.sessionID == known.sessionID, record.senderDeviceID == identity.deviceID,
            let settings = try await room(roomID, scratch: Scratch()),
            let session = try? cipher.unpickle(record.pickle, { try OutboundGroupSession.unpickle($0, key: $1) }),
            !needsRotation(record, session, settings: settings, recipients: [])
        else {
            fullyShared[owner] = nil
            return nil
        }
        let payload: JSONValue = ["type": .string(type), "content": content, "room_id": .string(roomID.rawValue)]
        let index = session.messageIndex
        let ciphertext: String
        do {
            ciphertext = try session.encrypt(payload.serialized())
        } catch {
            throw CryptoError(code: .olm, message: "Megolm encryption in \(roomID) failed: \(error.code)")
        }
        record.pickle = try Self.pickled(session, cipher)
        var changes = CryptoChanges()
        changes.outboundGroupSessions = [record]
        let encrypted: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "ciphertext": .string(ciphertext), "session_id": .string(record.sessionID),
            "sender_key": .string(identity.curve25519), "device_id": .string(identity.deviceID.rawValue),
        ]
        return EncryptedRoomEvent(changes: changes, content: encrypted, sessionID: record.sessionID, messageIndex: index)
    }

    /// Records that a batch reached the homeserver: its devices now have the key (or the notice).
    public func confirmShare(_ batch: ShareBatch) -> CryptoChanges {
        var changes = CryptoChanges()
        changes.outboundShares = batch.shares
        return changes
    }

    /// Drops the outbound session of `sender` in `roomID`: the next message starts a new one.
    public func discardOutboundSession(roomID: RoomID, sender: UserID) -> CryptoChanges {
        var changes = CryptoChanges()
        changes.discardedOutboundSessions = [OutboundSessionOwner(roomID: roomID, senderUserID: sender)]
        return changes
    }
}
