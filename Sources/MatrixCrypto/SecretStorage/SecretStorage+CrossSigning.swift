import MatrixModels
import Primitives

extension SecretStorage {
    /// The secret names of the three cross-signing private keys.
    public static let masterSecret = "m.cross_signing.master"
    public static let selfSigningSecret = "m.cross_signing.self_signing"
    public static let userSigningSecret = "m.cross_signing.user_signing"

    /// The account data that stores `seeds` under `key`, in the order to write it.
    ///
    /// The key description first and the default key last: a failure part-way leaves the default
    /// key on the previous storage (or none), never pointing at a key whose secrets are not written.
    /// Each secret holds the unpadded base64 of its 32-byte seed, as Element and mautrix store them.
    public static func crossSigningAccountData(_ seeds: CrossSigningSeeds, key: SecretStorageKey) -> [(type: String, content: JSONValue)] {
        func secret(_ seed: [UInt8], _ name: String) -> (type: String, content: JSONValue) {
            var text = Array(Base64.encodeUnpadded(seed).utf8)
            defer { secureWipe(&text) }
            return (name, secretContent(text, name: name, key: key))
        }
        return [
            (keyDescriptionType(key.id), key.keyDescription()),
            secret(seeds.master, masterSecret),
            secret(seeds.selfSigning, selfSigningSecret),
            secret(seeds.userSigning, userSigningSecret),
            (defaultKeyType, defaultKeyContent(key)),
        ]
    }

    /// Opens the three cross-signing seeds from their account data contents.
    ///
    /// - Parameters:
    ///   - master: Content of `m.cross_signing.master`; likewise the other two.
    ///   - key: The checked secret storage key.
    /// - Throws: ``SecretStorageError`` when a secret is missing, malformed or does not verify, or
    ///   decrypts to something other than the base64 of 32 bytes.
    public static func openCrossSigningSeeds(
        master: JSONValue, selfSigning: JSONValue, userSigning: JSONValue, key: SecretStorageKey
    ) throws(SecretStorageError) -> CrossSigningSeeds {
        func seed(_ content: JSONValue, _ name: String) throws(SecretStorageError) -> [UInt8] {
            var text = try openSecret(content, name: name, key: key)
            defer { secureWipe(&text) }
            // The plaintext is base64 text; read it padded or not.
            guard let string = String(validating: text, as: UTF8.self), let bytes = try? Base64.decode(string),
                bytes.count == RecoveryKey.byteCount
            else {
                throw SecretStorageError(.malformed, "\(name) does not hold the base64 of a 32-byte key")
            }
            return bytes
        }
        var masterSeed = try seed(master, masterSecret)
        var selfSigningSeed = try seed(selfSigning, selfSigningSecret)
        var userSigningSeed = try seed(userSigning, userSigningSecret)
        defer {
            secureWipe(&masterSeed)
            secureWipe(&selfSigningSeed)
            secureWipe(&userSigningSeed)
        }
        do {
            return try CrossSigningSeeds(master: masterSeed, selfSigning: selfSigningSeed, userSigning: userSigningSeed)
        } catch {
            throw SecretStorageError(.malformed, "the recovered cross-signing seeds are unusable: \(error.message)")
        }
    }
}
