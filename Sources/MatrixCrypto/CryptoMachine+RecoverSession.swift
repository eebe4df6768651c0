import MatrixModels
import Olm

extension CryptoMachine {
    /// The tracked device of `userID` with `curve25519`, if known.
    public func device(userID: UserID, curve25519: String) async throws -> DeviceRef? {
        try await store.devices(userIDs: [userID])[userID]?.first { $0.curve25519 == curve25519 }
            .map { DeviceRef(userID: $0.userID, deviceID: $0.deviceID) }
    }

    /// Olm-encrypts one to-device message from `sender`'s device to `target` with the newest session.
    ///
    /// Wedged-session recovery claims a fresh one-time key first (so the newest session is a new one),
    /// then sends `m.dummy` through this: the peer's next messages use the new session.
    /// - Returns: The advanced session to commit before sending, and the request.
    public func encryptToDevice(
        sender: UserID, to target: DeviceRef, type: String, content: JSONValue
    ) async throws -> (changes: CryptoChanges, request: ToDeviceRequest) {
        let scratch = Scratch()
        guard let (local, account) = try await loadAccount(sender, into: scratch) else {
            throw CryptoError(code: .noLocalDevice, message: "\(sender) has no device")
        }
        guard let device = try await store.devices(userIDs: [target.userID])[target.userID]?.first(where: { $0.deviceID == target.deviceID }) else {
            throw CryptoError(code: .unknownDevice, message: "\(target) is not a tracked device")
        }
        guard let newest = try await store.olmSessions(localUserID: local.userID, localDeviceID: local.deviceID, senderKey: device.curve25519).first,
            let session = try? cipher.unpickle(newest.pickle, { try Session.unpickle($0, key: $1) })
        else { throw CryptoError(code: .unknownDevice, message: "no Olm session with \(target)") }
        let content = try Self.olmEncrypt(
            type: type, content: content, from: local, identity: account.identityKeys, ownDeviceKeys: try ownDeviceKeys(local, account),
            to: device, session: session)
        var changes = CryptoChanges()
        changes.olmSessions = [try touchOlmSession(session, local: local, remoteKey: device.curve25519, scratch: scratch)]
        return (changes, ToDeviceRequest(eventType: "m.room.encrypted", messages: [target.userID: [target.deviceID: content]]))
    }
}

extension CryptoMachine {
    /// The `m.room_key` contents of `sender`'s current outbound sessions that `device` was given, at
    /// the sessions' current index: re-sent after a wedged Olm session with it was replaced, since
    /// the key that went through the wedged session may never have been read.
    public func currentRoomKeys(sender: UserID, sharedWith device: DeviceRef) async throws -> [JSONValue] {
        var keys: [JSONValue] = []
        for room in try await store.presentRooms(userID: sender).sorted() {
            guard let record = try await store.outboundGroupSession(roomID: room, senderUserID: sender),
                record.shares.contains(where: { $0.userID == device.userID && $0.deviceID == device.deviceID && $0.messageIndex != nil }),
                let session = try? cipher.unpickle(record.pickle, { try OutboundGroupSession.unpickle($0, key: $1) })
            else { continue }
            keys.append([
                "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(room.rawValue),
                "session_id": .string(record.sessionID), "session_key": .string(session.sessionKey),
            ])
        }
        return keys
    }
}
