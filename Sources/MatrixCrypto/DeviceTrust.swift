import MatrixModels

/// How far Sealbridge trusts a remote device, judged by cross-signing (MSC4153, Matrix 1.18).
///
/// Derived, never stored: computed from the stored device and its owner's ``StoredUserIdentity``
/// whenever it is needed, so a new keys answer or an admin's vouch changes it at once.
public enum DeviceTrust: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Cross-signed by an identity an admin vouched for (`trust @user FINGERPRINT`).
    case verified
    /// Cross-signed by the owner's pinned identity (trust on first use).
    case crossSigned = "cross_signed"
    /// Cross-signed, but by a master key other than the one pinned: the owner reset their identity,
    /// or the homeserver substitutes one. Stays so until an admin trusts the new key.
    case identityChanged = "identity_changed"
    /// Self-signed device keys only (its owner has no cross-signing, or did not sign this device).
    case deviceOnly = "device_only"
    /// Not in its owner's current device list.
    case unknownDevice = "unknown_device"
    /// An MSC3814 dehydrated device: never sent keys, whatever signs it.
    case dehydrated

    public var description: String { rawValue }

    /// The level of `device` (nil: not in the device list) given its owner's identity.
    public static func of(_ device: VerifiedDeviceKeys?, identity: StoredUserIdentity?) -> DeviceTrust {
        guard let device else { return .unknownDevice }
        if device.dehydrated { return .dehydrated }
        guard let identity, identity.crossSigns(device) else { return .deviceOnly }
        if identity.isVerified { return .verified }
        return identity.identityChanged ? .identityChanged : .crossSigned
    }

    /// Whether this level satisfies `policy` (a sharing or receive policy).
    public func meets(_ policy: TrustPolicy) -> Bool {
        switch policy {
        case .all: true
        case .crossSigned: self == .crossSigned || self == .verified
        case .verified: self == .verified
        }
    }
}

/// The weakest device a policy accepts: `encryption.sharing_policy` and `encryption.accept_from`.
public enum TrustPolicy: String, Sendable, Hashable, CaseIterable {
    /// Every device (matrix-nio and other clients without cross-signing included).
    case all
    /// MSC4153: only devices cross-signed by their owner's pinned (or vouched) identity.
    case crossSigned = "cross_signed"
    /// Only devices of users an admin vouched for.
    case verified
}
