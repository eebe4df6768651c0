import MatrixModels
import Olm

/// What the homeserver serves for a local device, next to the account the database holds for it.
public enum LocalDeviceState: String, Sendable, Hashable {
    /// The device is there with this account's keys.
    case matches
    /// The device is gone (an admin logged it out, or the homeserver's stale-device cleanup deleted it).
    case missing
    /// The device is there with another account's keys (the database was restored from an older backup,
    /// or reset): peers encrypt to keys this account does not hold.
    case foreignKeys = "foreign_keys"
}

extension CryptoMachine {
    /// Compares a `/keys/query` answer for local users with their accounts. Devices whose keys were
    /// never uploaded are left out (there is nothing to compare yet).
    public func checkLocalDevices(_ response: JSONValue, devices: [DeviceRef]) async throws -> [DeviceRef: LocalDeviceState] {
        let scratch = Scratch()
        var states: [DeviceRef: LocalDeviceState] = [:]
        for device in devices {
            guard let (record, account) = try await readableAccount(device.userID, into: scratch), record.deviceID == device.deviceID,
                record.deviceKeysUploaded
            else { continue }
            let id = device.deviceID.rawValue
            guard let served = response["device_keys"]?[device.userID.rawValue]?[id], served.objectValue != nil else {
                states[device] = .missing
                continue
            }
            let keys = account.identityKeys
            let same = served["keys"]?["curve25519:\(id)"]?.stringValue == keys.curve25519 && served["keys"]?["ed25519:\(id)"]?.stringValue == keys.ed25519
            states[device] = same ? .matches : .foreignKeys
        }
        return states
    }

    /// Forgets `userID`'s account (its device is gone or carries another account's keys) and its
    /// outbound Megolm sessions, so that the next device starts clean: its messages come with a new
    /// session shared from its own keys, never one recipients hold from the old device.
    public func discardDevice(_ userID: UserID) async throws -> CryptoChanges {
        var changes = CryptoChanges()
        changes.discardedAccounts = [userID]
        changes.discardedOutboundSessions = try await store.presentRooms(userID: userID).map {
            OutboundSessionOwner(roomID: $0, senderUserID: userID)
        }
        identities[userID] = nil
        localIdentities.remove(userID)
        for owner in fullyShared.keys where owner.senderUserID == userID { fullyShared[owner] = nil }
        return changes
    }
}
