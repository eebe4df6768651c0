import MatrixModels

/// Server-side secret storage (SSSS): secrets kept encrypted in a user's account data, under a key
/// only the recovery key opens. Sans-I/O: these functions make and read account data contents; the
/// caller fetches and writes them.
///
/// Layout (Matrix spec, "Secrets"): `m.secret_storage.default_key` names the key id; account data
/// `m.secret_storage.key.<id>` describes the key; each secret is account data of the secret's name
/// holding `{"encrypted": {"<id>": {iv, ciphertext, mac}}}`.
public enum SecretStorage {
    /// Account data naming the key in use: `{"key": "<id>"}`.
    public static let defaultKeyType = "m.secret_storage.default_key"

    /// The account data type of key `id`'s description.
    public static func keyDescriptionType(_ id: String) -> String { "m.secret_storage.key.\(id)" }

    /// The content of `m.secret_storage.default_key` pointing at `key`.
    public static func defaultKeyContent(_ key: SecretStorageKey) -> JSONValue { ["key": .string(key.id)] }

    /// The key id named by `m.secret_storage.default_key`.
    ///
    /// - Throws: `malformed` if there is no usable `key` string.
    public static func defaultKeyID(from content: JSONValue) throws(SecretStorageError) -> String {
        guard let id = content["key"]?.stringValue else {
            throw SecretStorageError(.malformed, "\(defaultKeyType) has no string \"key\"")
        }
        try SecretStorageKey.checkID(id)
        return id
    }

    /// The account data content holding `plaintext` as secret `name`, encrypted under `key` only.
    public static func secretContent(_ plaintext: [UInt8], name: String, key: SecretStorageKey) -> JSONValue {
        ["encrypted": .object([key.id: key.encrypt(plaintext, name: name).json])]
    }

    /// Opens secret `name` from its account data content with `key`.
    ///
    /// - Throws: `missing` when the secret is not encrypted under this key id, `malformed`, or
    ///   `authenticationFailed`.
    public static func openSecret(_ content: JSONValue, name: String, key: SecretStorageKey) throws(SecretStorageError) -> [UInt8] {
        guard let encrypted = content["encrypted"]?.objectValue else {
            throw SecretStorageError(.malformed, "account data \(name) has no \"encrypted\" object")
        }
        guard let entry = encrypted[key.id] else {
            throw SecretStorageError(.missing, "\(name) is not encrypted under secret storage key \(key.id)")
        }
        return try key.decrypt(EncryptedSecret(json: entry, what: name), name: name)
    }
}
