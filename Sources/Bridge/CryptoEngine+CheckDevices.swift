import Logging
import MatrixCrypto
import MatrixModels
import Metrics

extension CryptoEngine {
    /// Asks the homeserver (one `/keys/query` as `requester`) whether each local device is still
    /// there with its account's keys.
    public func checkLocalDevices(_ devices: [DeviceRef], as requester: UserID) async throws -> [DeviceRef: LocalDeviceState] {
        guard !devices.isEmpty else { return [:] }
        let response = try await transport.queryKeys(Array(Set(devices.map(\.userID))).sorted(), as: requester)
        return try await machine.checkLocalDevices(response, devices: devices)
    }

    /// Replaces a local device that is gone from the homeserver or carries another account's keys:
    /// forgets its account and outbound sessions (committed first), deletes what the homeserver holds
    /// of it, and creates a new device under a fresh id (signed by the user's identity when
    /// cross-signing is on). Peers then see a new device and share keys with it; the user's next
    /// message in each room starts a new Megolm session from the new device's keys.
    ///
    /// - Returns: The new device id.
    @discardableResult
    public func replaceDevice(_ device: DeviceRef, state: LocalDeviceState, preferred: DeviceID, displayName: String) async throws -> DeviceID {
        try await deviceLocks.withLock(device.userID) {
            // Checked again under the lock: another caller may have replaced it meanwhile.
            guard try await machine.deviceID(of: device.userID) == device.deviceID else {
                return try await machine.deviceID(of: device.userID) ?? device.deviceID
            }
            try await step { (try await machine.discardDevice(device.userID), ()) }
            try await transport.deleteDevice(device.deviceID, of: device.userID)
            let replacement = try await createDevice(device.userID, preferred: preferred, displayName: displayName, avoid: [device.deviceID])
            Counter(label: "sealbridge_local_devices_replaced_total", dimensions: [("reason", state.rawValue)]).increment()
            logger.error("replaced a local device the homeserver no longer serves with its keys", metadata: [
                "user": "\(device.userID)", "old_device": "\(device.deviceID)", "new_device": "\(replacement)", "reason": "\(state.rawValue)",
            ])
            return replacement
        }
    }
}
