import MatrixModels

/// A local user's (bot's or puppet's) cross-signing identity: public keys, sealed seeds, and how far
/// its publication got.
///
/// Written before anything is sent, so a restart part-way re-sends the same keys (the homeserver
/// answers 200 to an identical upload) and never makes a second identity.
public struct StoredCrossSigningIdentity: Sendable, Hashable {
    public var userID: UserID
    public var keys: CrossSigningPublicKeys
    /// The three seeds, sealed with ``StoreCipher/seal(_:context:)`` under ``sealContext(_:)``.
    public var sealedSeeds: [UInt8]
    /// Whether the homeserver accepted the public keys (`/keys/device_signing/upload`).
    public var published: Bool
    /// The device whose keys the homeserver holds signed by the self-signing key; a recreated device
    /// differs and is signed again.
    public var signedDeviceID: DeviceID?

    public init(userID: UserID, keys: CrossSigningPublicKeys, sealedSeeds: [UInt8], published: Bool, signedDeviceID: DeviceID?) {
        self.userID = userID
        self.keys = keys
        self.sealedSeeds = sealedSeeds
        self.published = published
        self.signedDeviceID = signedDeviceID
    }

    /// What the seeds are sealed for: binds them to their owner, so a row copied to another user does not open.
    public static func sealContext(_ userID: UserID) -> String { "cross-signing seeds \(userID.rawValue)" }
}

/// How many local devices have a published, device-signing cross-signing identity.
public struct CrossSigningProgress: Sendable, Hashable {
    /// Local devices (accounts).
    public var devices: Int
    /// Of those, devices whose user's identity is published and whose device is signed by it.
    public var complete: Int

    public init(devices: Int, complete: Int) {
        self.devices = devices
        self.complete = complete
    }
}
