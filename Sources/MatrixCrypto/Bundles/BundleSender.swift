import MatrixModels

/// The inviter's device whose MSC4268 history bundle a session came in: the recipient has only its
/// word for who created the session, so events decrypted with it are trusted no more than it is.
public struct BundleSender: Sendable, Hashable {
    public var userID: UserID
    /// The curve25519 key of the device that Olm-encrypted the bundle pointer.
    public var curve25519: String

    public init(userID: UserID, curve25519: String) {
        self.userID = userID
        self.curve25519 = curve25519
    }
}

extension DeviceTrust {
    /// Order from most to least trusted, for capping: verified, cross-signed, device only, identity
    /// changed, unknown device, dehydrated. (An identity change is a warning sign, ranked below a
    /// device that was never cross-signed.)
    var rank: Int {
        switch self {
        case .verified: 5
        case .crossSigned: 4
        case .deviceOnly: 3
        case .identityChanged: 2
        case .unknownDevice: 1
        case .dehydrated: 0
        }
    }

    /// The lower of this level and `ceiling`.
    public func capped(at ceiling: DeviceTrust) -> DeviceTrust {
        rank <= ceiling.rank ? self : ceiling
    }
}
