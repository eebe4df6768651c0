import MatrixModels

/// A device's published keys, after checking its self-signature.
public struct VerifiedDeviceKeys: Sendable, Hashable {
    public var userID: UserID
    public var deviceID: DeviceID
    public var curve25519: String
    public var ed25519: String
    /// MSC3814: a dehydrated device, whose to-device messages are dropped.
    public var dehydrated: Bool

    public init(userID: UserID, deviceID: DeviceID, curve25519: String, ed25519: String, dehydrated: Bool = false) {
        self.userID = userID
        self.deviceID = deviceID
        self.curve25519 = curve25519
        self.ed25519 = ed25519
        self.dehydrated = dehydrated
    }

    /// Reads `device_keys` (from `/keys/query` or MSC4147 `sender_device_keys`) and verifies that the
    /// device signed them with the Ed25519 key they list.
    ///
    /// - Parameter expectedUser: The user the keys must belong to.
    public init(_ json: JSONValue, expectedUser: UserID) throws(DecryptionFailure) {
        guard json["user_id"]?.stringValue == expectedUser.rawValue else { throw .unverifiedSender("device keys belong to another user") }
        guard let deviceText = json["device_id"]?.stringValue, let deviceID = try? DeviceID(deviceText) else {
            throw .unverifiedSender("device keys without a device id")
        }
        guard let curve = json["keys"]?["curve25519:\(deviceText)"]?.stringValue,
            let ed = json["keys"]?["ed25519:\(deviceText)"]?.stringValue
        else { throw .unverifiedSender("device keys lack curve25519 or ed25519") }
        guard KeyFormat.isKey(curve), KeyFormat.isKey(ed) else { throw .unverifiedSender("device keys are not 32-byte base64 keys") }
        do {
            try SignedJSON.verify(json, userID: expectedUser, keyID: "ed25519:\(deviceText)", publicKey: ed)
        } catch {
            throw .unverifiedSender("device keys of \(expectedUser) \(deviceText) are not self-signed: \(error.code.rawValue)")
        }
        self.userID = expectedUser
        self.deviceID = deviceID
        self.curve25519 = curve
        self.ed25519 = ed
        self.dehydrated = json["dehydrated"]?.boolValue == true
    }
}
