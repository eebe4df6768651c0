import MatrixModels

/// A user's cross-signing public keys from a `/keys/query` answer, each checked before it is kept.
///
/// The homeserver can lie about all of it, so every key must have the shape the spec gives (its
/// `user_id`, its `usage`, exactly one `ed25519:<key>` entry naming itself) and the chain must hold:
/// the self-signing and user-signing keys are kept only when the master key signed them. Anything
/// else leaves the user (or just that key) not cross-signed; nothing here throws out of a keys answer.
public struct CrossSigningKeys: Sendable, Hashable {
    public var userID: UserID
    public var masterKey: String
    /// Nil when the answer has none, or one the master key did not sign.
    public var selfSigningKey: String?
    /// Listed only to the user themself; nil as for `selfSigningKey`.
    public var userSigningKey: String?
    /// The master key object as served, for signatures other users made of it.
    public var masterJSON: JSONValue = .null

    public init(userID: UserID, masterKey: String, selfSigningKey: String? = nil, userSigningKey: String? = nil) {
        self.userID = userID
        self.masterKey = masterKey
        self.selfSigningKey = selfSigningKey
        self.userSigningKey = userSigningKey
    }

    /// Reads `userID`'s keys from a `/keys/query` response (`master_keys`, `self_signing_keys`,
    /// `user_signing_keys`).
    ///
    /// - Returns: nil when there is no usable master key; `problems` says what was refused.
    public static func read(_ response: JSONValue, userID: UserID) -> (keys: CrossSigningKeys?, problems: [String]) {
        var problems: [String] = []
        let master: String
        switch publicKey(response["master_keys"]?[userID.rawValue], userID: userID, usage: "master") {
        case .success(let key): master = key
        case .failure(.absent): return (nil, [])
        case .failure(.refused(let why)): return (nil, ["master key: \(why)"])
        }
        func signedByMaster(_ field: String, usage: String) -> String? {
            let json = response[field]?[userID.rawValue]
            switch publicKey(json, userID: userID, usage: usage) {
            case .failure(.absent):
                return nil
            case .failure(.refused(let why)):
                problems.append("\(usage) key: \(why)")
                return nil
            case .success(let key):
                guard key != master else {
                    problems.append("\(usage) key is the master key")
                    return nil
                }
                do {
                    try SignedJSON.verify(json!, userID: userID, keyID: "ed25519:\(master)", publicKey: master)
                    return key
                } catch {
                    problems.append("\(usage) key not signed by the master key: \(error.code.rawValue)")
                    return nil
                }
            }
        }
        let selfSigning = signedByMaster("self_signing_keys", usage: "self_signing")
        let userSigning = signedByMaster("user_signing_keys", usage: "user_signing")
        var keys = CrossSigningKeys(userID: userID, masterKey: master, selfSigningKey: selfSigning, userSigningKey: userSigning)
        keys.masterJSON = response["master_keys"]?[userID.rawValue] ?? .null
        return (keys, problems)
    }

    /// Whether the self-signing key signed `deviceKeys` (the device's published JSON, which must
    /// already have passed its self-signature check as ``VerifiedDeviceKeys``).
    public func signs(deviceKeys: JSONValue, deviceID: DeviceID) -> Bool {
        guard let selfSigningKey else { return false }
        // A device named like a cross-signing key would share its signature slot with it.
        guard deviceID.rawValue != selfSigningKey, deviceID.rawValue != masterKey else { return false }
        do {
            try SignedJSON.verify(deviceKeys, userID: userID, keyID: "ed25519:\(selfSigningKey)", publicKey: selfSigningKey)
            return true
        } catch {
            return false
        }
    }

    /// Whether `signer`'s user-signing key `userSigningKey` validly signed the master key.
    public func masterIsSigned(by signer: UserID, userSigningKey: String) -> Bool {
        (try? SignedJSON.verify(masterJSON, userID: signer, keyID: "ed25519:\(userSigningKey)", publicKey: userSigningKey)) != nil
    }

    enum KeyProblem: Error {
        /// The answer has no such key for the user.
        case absent
        case refused(String)
    }

    /// The one Ed25519 public key of a cross-signing key object, after checking its shape.
    static func publicKey(_ json: JSONValue?, userID: UserID, usage: String) -> Result<String, KeyProblem> {
        guard let json, json != .null else { return .failure(.absent) }
        guard json.objectValue != nil else { return .failure(.refused("not an object")) }
        guard json["user_id"]?.stringValue == userID.rawValue else { return .failure(.refused("user_id is not \(userID)")) }
        guard let usages = json["usage"]?.arrayValue, usages.count <= 3 else { return .failure(.refused("usage is not a short list")) }
        let names = usages.compactMap(\.stringValue)
        guard names.count == usages.count, names.contains(usage) else { return .failure(.refused("usage does not name \(usage)")) }
        // One key for one role: a key that also claims another cross-signing role is refused.
        guard names.allSatisfy({ $0 == usage || !["master", "self_signing", "user_signing"].contains($0) }) else {
            return .failure(.refused("usage names more than one cross-signing role"))
        }
        guard let keys = json["keys"]?.objectValue, keys.count == 1, let (keyID, value) = keys.first,
            keyID.hasPrefix("ed25519:"), let key = value.stringValue
        else { return .failure(.refused("keys must hold exactly one ed25519 key")) }
        guard KeyFormat.isKey(key), keyID == "ed25519:\(key)" else { return .failure(.refused("the key is not a 32-byte base64 key named by itself")) }
        return .success(key)
    }
}
