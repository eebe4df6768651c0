import MatrixModels
import Olm

/// The cross-signing key objects of the Matrix spec ("Cross-signing"): each key is a JSON object
/// with `user_id`, `usage` and `keys` (`ed25519:<public key>` → public key); the self-signing and
/// user-signing keys are signed by the master key.
enum CrossSigningKeysJSON {
    /// The unsigned key object for `publicKey` with `usage`.
    static func key(userID: UserID, usage: String, publicKey: String) -> JSONValue {
        [
            "user_id": .string(userID.rawValue), "usage": [.string(usage)],
            "keys": .object(["ed25519:\(publicKey)": .string(publicKey)]),
        ]
    }

    /// The body of `POST /keys/device_signing/upload` for the identity made by `seeds`.
    static func upload(userID: UserID, signers: CrossSigningSigners) throws -> JSONValue {
        let (master, selfSigning, userSigning) = (signers.master, signers.selfSigning, signers.userSigning)
        let masterKeyID = "ed25519:\(master.publicKey)"
        return [
            "master_key": key(userID: userID, usage: "master", publicKey: master.publicKey),
            "self_signing_key": try SignedJSON.sign(
                key(userID: userID, usage: "self_signing", publicKey: selfSigning.publicKey), userID: userID, keyID: masterKeyID, with: master),
            "user_signing_key": try SignedJSON.sign(
                key(userID: userID, usage: "user_signing", publicKey: userSigning.publicKey), userID: userID, keyID: masterKeyID, with: master),
        ]
    }

    /// `object` without its `signatures` (and `unsigned`): what another key's signature is added to.
    static func withoutSignatures(_ object: JSONValue) -> JSONValue {
        guard case .object(var members) = object else { return object }
        members["signatures"] = nil
        members["unsigned"] = nil
        return .object(members)
    }
}
