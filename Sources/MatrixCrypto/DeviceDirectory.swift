import MatrixModels

/// What the engine knows about remote devices: their verified keys, by user and curve25519 key.
///
/// Filled by device tracking (`/keys/query`); until a device is known, its Olm messages are only
/// accepted when they carry MSC4147 `sender_device_keys`.
public protocol DeviceDirectory: Sendable {
    func device(userID: UserID, curve25519: String) async -> VerifiedDeviceKeys?
}

/// Knows no device: every sender must prove itself with `sender_device_keys`.
public struct EmptyDeviceDirectory: DeviceDirectory {
    public init() {}
    public func device(userID: UserID, curve25519: String) async -> VerifiedDeviceKeys? { nil }
}
