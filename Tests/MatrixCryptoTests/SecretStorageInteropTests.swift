import Foundation
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

/// Secret storage crosses between this implementation and mautrix-python's (`mautrix.crypto.ssss`)
/// in both directions: recovery key text, key description, and the three cross-signing secrets.
///
/// The peer is `Tests/Interop/mautrix_ssss_peer.py`, run with the Python that `scripts/test` prepares
/// in `.venv` (or `SEALBRIDGE_INTEROP_PYTHON`). A missing interpreter or module fails the test.
@Suite("Interoperability with mautrix-python secret storage")
struct SecretStorageInteropTests {
    static let names = [SecretStorage.masterSecret, SecretStorage.selfSigningSecret, SecretStorage.userSigningSecret]

    @Test("Swift-made storage opens in mautrix with the printed recovery key")
    func swiftToMautrix() throws {
        let seeds = CrossSigningSeeds.generate()
        let key = SecretStorageKey.generate()
        let entries = SecretStorage.crossSigningAccountData(seeds, key: key)
        let content = Dictionary(entries.map { ($0.type, $0.content) }, uniquingKeysWith: { $1 })
        let answer = try PythonPeer(script: "mautrix_ssss_peer.py", name: "mautrix").call([
            "command": "open",
            "recovery_key": key.recoveryKey.displayString,
            "key_id": key.id,
            "key_description": try foundation(content[SecretStorage.keyDescriptionType(key.id)]!),
            "secrets": try Dictionary(uniqueKeysWithValues: Self.names.map { ($0, try foundation(content[$0]!)) }),
        ])
        #expect(answer["recovery_key"] as? String == key.recoveryKey.displayString)
        let opened = try #require(answer["secrets"] as? [String: String])
        #expect(opened[SecretStorage.masterSecret] == unpadded(seeds.master))
        #expect(opened[SecretStorage.selfSigningSecret] == unpadded(seeds.selfSigning))
        #expect(opened[SecretStorage.userSigningSecret] == unpadded(seeds.userSigning))
    }

    @Test("mautrix-made storage opens here with its recovery key; another key is refused")
    func mautrixToSwift() throws {
        let seeds = CrossSigningSeeds.generate()
        let answer = try PythonPeer(script: "mautrix_ssss_peer.py", name: "mautrix").call([
            "command": "make",
            "secrets": [
                SecretStorage.masterSecret: unpadded(seeds.master), SecretStorage.selfSigningSecret: unpadded(seeds.selfSigning),
                SecretStorage.userSigningSecret: unpadded(seeds.userSigning),
            ],
        ])
        let id = try #require(answer["key_id"] as? String)
        let description = try matrix(try #require(answer["key_description"]))
        let recoveryKey = try RecoveryKey(try #require(answer["recovery_key"] as? String))
        #expect(recoveryKey.displayString == answer["recovery_key"] as? String)
        let key = try SecretStorageKey(id: id, recoveryKey: recoveryKey, description: description)
        let secrets = try #require(answer["secrets"] as? [String: Any])
        let opened = try SecretStorage.openCrossSigningSeeds(
            master: try matrix(secrets[SecretStorage.masterSecret]!), selfSigning: try matrix(secrets[SecretStorage.selfSigningSecret]!),
            userSigning: try matrix(secrets[SecretStorage.userSigningSecret]!), key: key)
        #expect(opened == seeds)
        #expect(throws: SecretStorageError.self) {
            try SecretStorageKey(id: id, recoveryKey: SecretStorageKey.generate().recoveryKey, description: description)
        }
    }

    func unpadded(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    func foundation(_ value: JSONValue) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(value.serialized()))
    }

    func matrix(_ value: Any) throws -> JSONValue {
        try JSONValue.parse(Array(try JSONSerialization.data(withJSONObject: value)))
    }
}

