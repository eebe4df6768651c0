import MatrixModels

/// A remote user's cross-signing identity as Sealbridge last saw it, and what it pinned.
///
/// Keys are unpadded base64 Ed25519 public keys, each checked (``KeyFormat``) and its signature
/// chain verified before it is stored: the self-signing key is kept only when the master key signed
/// it, and a device counts as cross-signed only when that self-signing key signed its keys.
public struct StoredUserIdentity: Sendable, Hashable {
    public var userID: UserID
    /// The master key trusted on first use, or the one an admin trusted since (re-pinned).
    public var pinnedMasterKey: String
    /// The master key of the latest keys answer; nil when it listed none (or none that verifies).
    public var masterKey: String?
    /// The self-signing key of the latest answer, when `masterKey` signed it.
    public var selfSigningKey: String?
    /// The user-signing key, when the answer lists one signed by `masterKey` (only for a user who
    /// queries their own keys, i.e. a local user).
    public var userSigningKey: String?
    /// Devices (id → Ed25519 key) whose keys `selfSigningKey` signed, in the latest answer.
    public var crossSignedDevices: [DeviceID: String]
    /// The master key an admin vouched for with `trust @user FINGERPRINT`.
    public var vouchedMasterKey: String?
    /// The trust anchor's (the bot's) user-signing key, when a keys answer showed it validly signed
    /// the current master key; kept until the master key changes.
    public var signedByUserSigningKey: String?

    public init(
        userID: UserID, pinnedMasterKey: String, masterKey: String?, selfSigningKey: String? = nil, userSigningKey: String? = nil,
        crossSignedDevices: [DeviceID: String] = [:], vouchedMasterKey: String? = nil, signedByUserSigningKey: String? = nil
    ) {
        self.userID = userID
        self.pinnedMasterKey = pinnedMasterKey
        self.masterKey = masterKey
        self.selfSigningKey = selfSigningKey
        self.userSigningKey = userSigningKey
        self.crossSignedDevices = crossSignedDevices
        self.vouchedMasterKey = vouchedMasterKey
        self.signedByUserSigningKey = signedByUserSigningKey
    }

    /// The current master key is not the pinned one.
    public var identityChanged: Bool { masterKey != nil && masterKey != pinnedMasterKey }

    /// An admin vouched for the current master key, or the bot's user-signing key signed it.
    public var isVerified: Bool { masterKey != nil && (vouchedMasterKey == masterKey || signedByUserSigningKey != nil) }

    /// Whether the current self-signing key signed exactly these device keys.
    public func crossSigns(_ device: VerifiedDeviceKeys) -> Bool {
        masterKey != nil && selfSigningKey != nil && crossSignedDevices[device.deviceID] == device.ed25519
    }
}
