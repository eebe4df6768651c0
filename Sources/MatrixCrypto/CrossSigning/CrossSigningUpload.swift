import MatrixModels

/// What a local user must send to publish its cross-signing identity, as the machine prepared it
/// from committed state: the public keys, and its device's keys signed by the self-signing key.
public struct CrossSigningUpload: Sendable, Equatable {
    public var userID: UserID
    public var keys: CrossSigningPublicKeys
    /// The body of `POST /keys/device_signing/upload` (`master_key`, `self_signing_key`,
    /// `user_signing_key`), present until the homeserver accepted it.
    public var signingKeys: JSONValue?
    /// The device signed, and the body of `POST /keys/signatures/upload` that carries its signature.
    public var deviceSignature: (deviceID: DeviceID, body: JSONValue)?

    public static func == (lhs: CrossSigningUpload, rhs: CrossSigningUpload) -> Bool {
        lhs.userID == rhs.userID && lhs.keys == rhs.keys && lhs.signingKeys == rhs.signingKeys
            && lhs.deviceSignature?.deviceID == rhs.deviceSignature?.deviceID && lhs.deviceSignature?.body == rhs.deviceSignature?.body
    }

    /// Whether there is nothing left to send.
    public var isEmpty: Bool { signingKeys == nil && deviceSignature == nil }
}
