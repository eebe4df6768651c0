import Logging
import MatrixCrypto
import MatrixModels

extension CryptoEngine {
    /// Replaces a wedged Olm session: claims a fresh one-time key of the remote device, creates a new
    /// session and sends `m.dummy` through it, so the peer switches to the new session. Then re-sends,
    /// through the new session, the room keys of the local user's current outbound sessions that the
    /// device was given: a key that went through the wedged session may never have been read, and the
    /// device's failures to decrypt our messages end without anyone asking.
    public func recover(_ wedged: WedgedSession) async throws {
        var target = try await machine.device(userID: wedged.remoteUserID, curve25519: wedged.remoteKey)
        if target == nil {
            let response = try await transport.queryKeys([wedged.remoteUserID], as: wedged.localUserID)
            try await commitKeysQuery(response, users: [wedged.remoteUserID])
            target = try await machine.device(userID: wedged.remoteUserID, curve25519: wedged.remoteKey)
        }
        guard let target else {
            throw CryptoError(code: .unknownDevice, message: "no device of \(wedged.remoteUserID) has the wedged session's key")
        }
        let response = try await transport.claimKeys(CryptoMachine.keysClaimBody([target]), as: wedged.localUserID, device: wedged.localDeviceID)
        let failed = try await step { () -> (CryptoChanges, Set<DeviceRef>) in
            let outcome = try await machine.receiveKeysClaim(response, requested: [target], sender: wedged.localUserID)
            return (outcome.changes, outcome.failed)
        }
        guard failed.isEmpty else { throw CryptoError(code: .unknownDevice, message: "no one-time key for \(target)") }
        let request = try await step { () -> (CryptoChanges, ToDeviceRequest) in
            try await machine.encryptToDevice(sender: wedged.localUserID, to: target, type: "m.dummy", content: [:])
        }
        try await transport.sendToDevice(request, as: wedged.localUserID, device: wedged.localDeviceID)
        let keys = try await locked { try await machine.currentRoomKeys(sender: wedged.localUserID, sharedWith: target) }
        for key in keys {
            let request = try await step { () -> (CryptoChanges, ToDeviceRequest) in
                try await machine.encryptToDevice(sender: wedged.localUserID, to: target, type: "m.room_key", content: key)
            }
            try await transport.sendToDevice(request, as: wedged.localUserID, device: wedged.localDeviceID)
        }
        logger.notice("replaced a wedged Olm session", metadata: [
            "local_user": "\(wedged.localUserID)", "remote_user": "\(wedged.remoteUserID)", "room_keys_resent": "\(keys.count)",
        ])
    }
}
