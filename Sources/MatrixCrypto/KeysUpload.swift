import MatrixModels
import Olm

/// The body of `POST /_matrix/client/v3/keys/upload` for one local device, built from its Olm account.
///
/// Device keys and every one-time and fallback key are signed by the device's Ed25519 key, as clients
/// require before they will start an Olm session.
public struct KeysUpload: Sendable, Equatable {
    public var userID: UserID
    public var deviceID: DeviceID
    /// `device_keys`, present on the first upload (and whenever they must be re-published).
    public var deviceKeys: JSONValue?
    /// `one_time_keys`: `signed_curve25519:ID` → signed key object.
    public var oneTimeKeys: [String: JSONValue]
    /// `fallback_keys`: the new fallback key, if one is unpublished.
    public var fallbackKeys: [String: JSONValue]

    /// The JSON request body.
    public var body: JSONValue {
        var members: [String: JSONValue] = [:]
        if let deviceKeys { members["device_keys"] = deviceKeys }
        if !oneTimeKeys.isEmpty { members["one_time_keys"] = .object(oneTimeKeys) }
        if !fallbackKeys.isEmpty { members["fallback_keys"] = .object(fallbackKeys) }
        return .object(members)
    }

    /// Whether there is anything to send.
    public var isEmpty: Bool { deviceKeys == nil && oneTimeKeys.isEmpty && fallbackKeys.isEmpty }
}

/// The algorithms Sealbridge's devices speak.
public enum EncryptionAlgorithm {
    public static let olm = "m.olm.v1.curve25519-aes-sha2"
    public static let megolm = "m.megolm.v1.aes-sha2"
    public static let signedCurve25519 = "signed_curve25519"
}

/// What an upload is built from: a libolm ``Account``, or a new device's ``NewAccount`` that has not
/// been through libolm.
public protocol UploadableAccount: JSONSigner {
    var identityKeys: IdentityKeys { get }
    var unpublishedOneTimeKeys: [OneTimeKey] { get }
    var unpublishedFallbackKey: OneTimeKey? { get }
}

extension Account: UploadableAccount {}
extension NewAccount: UploadableAccount {}

extension KeysUpload {
    /// Collects what `account` has not published yet into an upload.
    ///
    /// Does not mark anything published: call `account.markKeysAsPublished()` only after the
    /// homeserver accepted the upload, in the same database transaction that persists the account.
    /// - Parameter includeDeviceKeys: True for a device's first upload.
    public static func pending(
        from account: some UploadableAccount, userID: UserID, deviceID: DeviceID, includeDeviceKeys: Bool
    ) throws(SignatureError) -> KeysUpload {
        let signingKeyID = "ed25519:\(deviceID.rawValue)"
        // Spelled out: a bare `nil` here would become `JSONValue.null`, which is a value.
        var deviceKeys: JSONValue?
        if includeDeviceKeys { deviceKeys = try signedDeviceKeys(of: account, userID: userID, deviceID: deviceID) }
        var oneTimeKeys: [String: JSONValue] = [:]
        for key in account.unpublishedOneTimeKeys {
            oneTimeKeys["\(EncryptionAlgorithm.signedCurve25519):\(key.keyID)"] = try SignedJSON.sign(
                ["key": .string(key.publicKey)], userID: userID, keyID: signingKeyID, with: account)
        }
        var fallbackKeys: [String: JSONValue] = [:]
        if let fallback = account.unpublishedFallbackKey {
            fallbackKeys["\(EncryptionAlgorithm.signedCurve25519):\(fallback.keyID)"] = try SignedJSON.sign(
                ["key": .string(fallback.publicKey), "fallback": true], userID: userID, keyID: signingKeyID, with: account)
        }
        return KeysUpload(
            userID: userID, deviceID: deviceID, deviceKeys: deviceKeys, oneTimeKeys: oneTimeKeys, fallbackKeys: fallbackKeys)
    }

    /// The device's `device_keys` object, signed by its own Ed25519 key.
    public static func signedDeviceKeys(of account: some UploadableAccount, userID: UserID, deviceID: DeviceID) throws(SignatureError) -> JSONValue {
        let identity = account.identityKeys
        let signingKeyID = "ed25519:\(deviceID.rawValue)"
        let unsigned: JSONValue = [
            "user_id": .string(userID.rawValue),
            "device_id": .string(deviceID.rawValue),
            "algorithms": [.string(EncryptionAlgorithm.olm), .string(EncryptionAlgorithm.megolm)],
            "keys": [
                "curve25519:\(deviceID.rawValue)": .string(identity.curve25519),
                signingKeyID: .string(identity.ed25519),
            ],
        ]
        return try SignedJSON.sign(unsigned, userID: userID, keyID: signingKeyID, with: account)
    }
}
