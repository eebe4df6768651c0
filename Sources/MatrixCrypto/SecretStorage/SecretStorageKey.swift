import MatrixModels
import Primitives

/// A secret storage key with its id: what encrypts the secrets kept in an account's data.
///
/// Its public description (account data `m.secret_storage.key.<id>`) holds an IV and the MAC of 32
/// zero bytes encrypted under the key with an empty name, so a client can tell a wrong recovery key
/// from a right one before touching any secret.
public struct SecretStorageKey: Sendable, CustomStringConvertible {
    /// The only algorithm this implementation reads and writes.
    public static let algorithm = "m.secret_storage.v1.aes-hmac-sha2"
    /// Longest key id accepted from account data; real ids are 32 characters.
    static let maximumIDLength = 255

    /// The key id: the `<id>` in `m.secret_storage.key.<id>` and in each secret's `encrypted` map.
    public let id: String
    /// The key, as its recovery key.
    public let recoveryKey: RecoveryKey

    /// A new random key with a new random id.
    public static func generate() -> SecretStorageKey {
        generate(recoveryKey: .generate())
    }

    /// `recoveryKey` under a new random id (32 letters and digits, like Element's, so it needs no
    /// escaping in a URL or an event type): for storage written with a key the operator already holds.
    public static func generate(recoveryKey: RecoveryKey) -> SecretStorageKey {
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        // 62 letters: rejection-sample bytes below 248 (4 × 62) so each letter is equally likely.
        var id: [UInt8] = []
        while id.count < 32 {
            for byte in SecureRandom.bytes(count: 48) where byte < 248 && id.count < 32 {
                id.append(letters[Int(byte) % 62])
            }
        }
        return SecretStorageKey(unchecked: String(decoding: id, as: UTF8.self), recoveryKey: recoveryKey)
    }

    init(unchecked id: String, recoveryKey: RecoveryKey) {
        self.id = id
        self.recoveryKey = recoveryKey
    }

    /// Takes `recoveryKey` as the key `id`, after checking it against the key's description.
    ///
    /// - Parameters:
    ///   - id: The key id (from `m.secret_storage.default_key`).
    ///   - recoveryKey: The key as the operator gave it.
    ///   - description: The content of account data `m.secret_storage.key.<id>`.
    /// - Throws: `unsupportedAlgorithm`, `malformed` (no IV or MAC), or `wrongRecoveryKey`.
    public init(id: String, recoveryKey: RecoveryKey, description: JSONValue) throws(SecretStorageError) {
        try Self.checkID(id)
        guard description.objectValue != nil else {
            throw SecretStorageError(.malformed, "the description of secret storage key \(id) is not a JSON object")
        }
        guard let algorithm = description["algorithm"]?.stringValue, algorithm == Self.algorithm else {
            throw SecretStorageError(.unsupportedAlgorithm, "secret storage key \(id) does not use \(Self.algorithm)")
        }
        let check = try EncryptedSecret(
            json: ["iv": description["iv"] ?? .null, "mac": description["mac"] ?? .null, "ciphertext": ""],
            what: "the description of secret storage key \(id)")
        // The check value: 32 zero bytes under the empty name, encrypted with the description's IV.
        let expected = AESHMACSHA2.encrypt([UInt8](repeating: 0, count: 32), key: recoveryKey.bytes, name: "", iv: check.iv)
        guard constantTimeEquals(expected.mac, check.mac) else {
            throw SecretStorageError(.wrongRecoveryKey, "the recovery key is not secret storage key \(id): it is well formed but belongs to another secret storage")
        }
        self.init(unchecked: id, recoveryKey: recoveryKey)
    }

    /// The content of account data `m.secret_storage.key.<id>`: algorithm, IV and check MAC.
    public func keyDescription() -> JSONValue {
        var iv = SecureRandom.bytes(count: AES256CTR.ivByteCount)
        iv[8] &= 0x7F
        let check = AESHMACSHA2.encrypt([UInt8](repeating: 0, count: 32), key: recoveryKey.bytes, name: "", iv: iv)
        return ["algorithm": .string(Self.algorithm), "iv": .string(Base64.encodeUnpadded(iv)), "mac": .string(Base64.encodeUnpadded(check.mac))]
    }

    /// Encrypts `plaintext` as the secret `name` (e.g. `m.cross_signing.master`).
    public func encrypt(_ plaintext: [UInt8], name: String) -> EncryptedSecret {
        AESHMACSHA2.encrypt(plaintext, key: recoveryKey.bytes, name: name)
    }

    /// Decrypts the secret `name` after verifying its MAC.
    ///
    /// - Throws: `authenticationFailed` if the MAC does not verify (altered data, another key, or a
    ///   ciphertext moved from another secret's name).
    public func decrypt(_ secret: EncryptedSecret, name: String) throws(SecretStorageError) -> [UInt8] {
        try AESHMACSHA2.decrypt(secret, key: recoveryKey.bytes, name: name)
    }

    /// Key ids come from account data: bound their length and keep control characters out of
    /// event types, URLs and log lines.
    static func checkID(_ id: String) throws(SecretStorageError) {
        guard !id.isEmpty, id.utf8.count <= maximumIDLength,
            !id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw SecretStorageError(.malformed, "a secret storage key id must be 1 to \(maximumIDLength) bytes without control characters")
        }
    }

    public var description: String { "SecretStorageKey(id: \(id), key: redacted)" }
}
