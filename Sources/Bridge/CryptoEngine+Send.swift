import Logging
import MatrixCrypto
import MatrixModels

extension CryptoEngine {
    /// Encrypts and sends a room event as `sender`'s device, sharing the room key first with every
    /// device that lacks it.
    ///
    /// - Parameter txnID: The client-side txn id of the send; a retry with the same id is deduplicated
    ///   by the homeserver.
    /// - Returns: The event id.
    public func send(roomID: RoomID, sender: UserID, type: String, content: JSONValue, txnID: String) async throws -> EventID {
        guard let device = try await machine.deviceID(of: sender) else {
            throw CryptoError(code: .noLocalDevice, message: "\(sender) has no device")
        }
        return try await roomLocks.withLock(roomID) {
            var queried = Set<UserID>(), unreachable = Set<DeviceRef>()
            for _ in 0..<8 {
                let next = try await step { () -> (CryptoChanges, RoomEncryptionStep) in
                    let next = try await machine.encrypt(
                        roomID: roomID, sender: sender, type: type, content: content, queried: queried, unreachable: unreachable)
                    switch next {
                    case .encrypted(let event): return (event.changes, next)
                    case .shareRoomKey(let share): return (share.changes, next)
                    default: return (CryptoChanges(), next)
                    }
                }
                switch next {
                case .queryDevices(let users):
                    queried.formUnion(users)
                    let response = try await transport.queryKeys(users, as: sender)
                    try await commitKeysQuery(response, users: users)
                case .claimOneTimeKeys(let devices):
                    let response = try await transport.claimKeys(CryptoMachine.keysClaimBody(devices), as: sender, device: device)
                    let failed = try await step { () -> (CryptoChanges, Set<DeviceRef>) in
                        let outcome = try await machine.receiveKeysClaim(response, requested: devices, sender: sender)
                        return (outcome.changes, outcome.failed)
                    }
                    if !failed.isEmpty {
                        logger.notice("no Olm session for some devices; they get m.no_olm", metadata: ["devices": "\(failed.count)"])
                    }
                    unreachable.formUnion(failed)
                case .shareRoomKey(let share):
                    // Each batch counts as shared only once the homeserver took it.
                    for batch in share.batches {
                        try await transport.sendToDevice(batch.request, as: sender, device: device)
                        try await step { () -> (CryptoChanges, Void) in (await machine.confirmShare(batch), ()) }
                    }
                case .encrypted(let event):
                    return try await transport.sendRoomEvent(
                        roomID, eventType: "m.room.encrypted", txnID: txnID, content: event.content, as: sender, device: device)
                }
            }
            throw CryptoError(code: .olm, message: "sharing the room key in \(roomID) did not settle after 8 rounds")
        }
    }
}
