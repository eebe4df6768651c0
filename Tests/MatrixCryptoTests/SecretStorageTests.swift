import Foundation
import MatrixCrypto
import MatrixModels
import Testing

/// Recovery keys and `m.secret_storage.v1.aes-hmac-sha2`: round trips, the checks that tell a typo
/// from a wrong key, tampering, and known answers from data Element made (taken from
/// mautrix-python's `ssss/key_test.py`, itself an independent implementation's fixture).
@Suite("Secret storage")
struct SecretStorageTests {
    // Element-made fixture: a key (id, recovery key, description) and the master key secret under it.
    static let elementKeyID = "gEJqbfSEMnP5JXXcukpXEX1l0aI3MDs0"
    static let elementRecoveryKey = "EsTE s92N EtaX s2h6 VQYF 9Kao tHYL mkyL GKMh isZb KJ4E tvoC"
    static let elementDescription: JSONValue = [
        "algorithm": "m.secret_storage.v1.aes-hmac-sha2",
        "passphrase": ["algorithm": "m.pbkdf2", "iterations": 500000, "salt": "y863BOoqOadgDp8S3FtHXikDJEalsQ7d"],
        "iv": "xxkTK0L4UzxgAFkQ6XPwsw", "mac": "MEhooO0ZhFJNxUhvRMSxBnJfL20wkLgle3ocY0ee/eA",
    ]
    static let elementMasterSecret: JSONValue = [
        "encrypted": [
            "gEJqbfSEMnP5JXXcukpXEX1l0aI3MDs0": [
                "iv": "BpKP9nQJTE9jrsAssoxPqQ==",
                "ciphertext": "fNRiiiidezjerTgV+G6pUtmeF3izzj5re/mVvY0hO2kM6kYGrxLuIu2ej80=",
                "mac": "/gWGDGMyOLmbJp+aoSLh5JxCs0AdS6nAhjzpe+9G2Q0=",
            ]
        ]
    ]
    static let elementMasterSeed = Array(Data(base64Encoded: "aPl/0ZIu7Pa4K7iQ0k0GUphOeh1wO56Ge3669/65W28=")!)
    // A second Element key (padded IV and MAC in its description).
    static let otherKeyID = "NVe5vK6lZS9gEMQLJw0yqkzmE5Mr7dLv"
    static let otherRecoveryKey = "EsUC xSxt XJgQ dz19 8WBZ rHdE GZo7 ybsn EFmG Y5HY MDAG GNWe"
    static let otherDescription: JSONValue = [
        "algorithm": "m.secret_storage.v1.aes-hmac-sha2", "iv": "O0BOvTqiIAYjC+RMcyHfWw==",
        "mac": "7k6OruQlWg0UmQjxGZ0ad4Q6DdwkgnoI7G6X3IjBYtI=",
    ]

    func code(_ body: () throws -> Any) -> SecretStorageError.Code? {
        do {
            _ = try body()
            return nil
        } catch {
            return (error as? SecretStorageError)?.code
        }
    }

    @Test("a new recovery key is 12 groups of 4 base58 characters starting with Es, and reads back")
    func recoveryKeyRoundTrip() throws {
        for _ in 0..<50 {
            let key = RecoveryKey.generate()
            let text = key.displayString
            let groups = text.split(separator: " ")
            #expect(groups.count == 12 && groups.allSatisfy { $0.count == 4 })
            #expect(text.hasPrefix("Es"))
            #expect(try RecoveryKey(text).displayString == text)
            // Whitespace of any kind is ignored: a key pasted on one line, or split across lines in a file.
            #expect(try RecoveryKey(text.replacingOccurrences(of: " ", with: "")).displayString == text)
            #expect(try RecoveryKey("  " + text.replacingOccurrences(of: " ", with: "\n") + "\n").displayString == text)
        }
    }

    @Test("the recovery key never appears in descriptions")
    func redacted() {
        let key = SecretStorageKey.generate()
        #expect(!"\(key)".contains(key.recoveryKey.displayString.prefix(9)))
        #expect("\(key.recoveryKey)" == "RecoveryKey(redacted)")
        #expect(key.id.count == 32 && key.id.allSatisfy { $0.isLetter || $0.isNumber })
    }

    @Test("malformed recovery keys are refused, each with its reason")
    func badRecoveryKeys() throws {
        let good = RecoveryKey.generate().displayString
        // A typo: one character swapped for another of the alphabet; the parity byte catches it
        // (mautrix's decoder refuses this string too).
        let typo = "EsTE s92N EtaX s2h6 VQYF 9Kao tHYL mkyL GKMh isZc KJ4E tvoC"
        #expect(code { try RecoveryKey(typo) } == .invalidRecoveryKey)
        #expect(code { try RecoveryKey(Self.elementRecoveryKey) } == nil)

        func message(_ text: String) -> String {
            do {
                _ = try RecoveryKey(text)
                return "accepted"
            } catch {
                #expect(error.code == .invalidRecoveryKey)
                #expect(!error.message.contains(good.prefix(9)))
                return error.message
            }
        }
        #expect(message("0" + good.dropFirst()).contains("typo"))  // 0 is not base58
        #expect(message("EsTl" + good.dropFirst(4)).contains("not base58"))
        #expect(message(String(good.dropLast(5))).contains("wrong length"))  // a group missing
        #expect(message(good + " 2222").contains("wrong length"))
        #expect(message("").contains("empty"))
        #expect(message("   \n").contains("empty"))
        #expect(message(String(repeating: "E", count: 1000)).contains("too long"))
        #expect(message("EsTE s92N EtaX s2h6 VQYF 9Kao tHYL mkyL GKMh isZb KJ4E tvoD").contains("parity"))
        #expect(message(typo).contains("parity"))
        // 35 bytes with good parity but another prefix: not a recovery key at all.
        var wrongPrefix: [UInt8] = [0x8B, 0x02] + Array(repeating: 7, count: 32)
        wrongPrefix.append(wrongPrefix.reduce(0, ^))
        #expect(message(base58(wrongPrefix)).contains("prefix"))
        var wrongLength: [UInt8] = [0x8B, 0x01] + Array(repeating: 7, count: 31)
        wrongLength.append(wrongLength.reduce(0, ^))
        #expect(message(base58(wrongLength)).contains("wrong length"))
    }

    @Test("Element's key and secret: the recovery key checks against the description and opens the master key")
    func elementFixture() throws {
        let recoveryKey = try RecoveryKey(Self.elementRecoveryKey)
        #expect(recoveryKey.displayString == Self.elementRecoveryKey)
        let key = try SecretStorageKey(id: Self.elementKeyID, recoveryKey: recoveryKey, description: Self.elementDescription)
        let plaintext = try SecretStorage.openSecret(Self.elementMasterSecret, name: "m.cross_signing.master", key: key)
        #expect(Data(base64Encoded: String(decoding: plaintext, as: UTF8.self) + "=").map(Array.init) == Self.elementMasterSeed)
        // Padded base64 in a description is read too.
        let other = try SecretStorageKey(id: Self.otherKeyID, recoveryKey: RecoveryKey(Self.otherRecoveryKey), description: Self.otherDescription)
        // Another well-formed key is told apart from a typo.
        #expect(code { try SecretStorageKey(id: Self.elementKeyID, recoveryKey: RecoveryKey(Self.otherRecoveryKey), description: Self.elementDescription) } == .wrongRecoveryKey)
        // A key that got past the description (here: the other key under the first key's id) cannot open the secret.
        let impostor = try SecretStorageKey(id: Self.elementKeyID, recoveryKey: other.recoveryKey, description: other.keyDescription())
        #expect(code { try SecretStorage.openSecret(Self.elementMasterSecret, name: "m.cross_signing.master", key: impostor) } == .authenticationFailed)
        // The right key under the wrong name: the name is part of the key derivation.
        #expect(code { try SecretStorage.openSecret(Self.elementMasterSecret, name: "m.cross_signing.self_signing", key: key) } == .authenticationFailed)
    }

    @Test("descriptions that are not aes-hmac-sha2 or lack fields are refused")
    func badDescriptions() throws {
        let key = SecretStorageKey.generate()
        let good = key.keyDescription()
        #expect(try SecretStorageKey(id: key.id, recoveryKey: key.recoveryKey, description: good).id == key.id)
        func with(_ field: String, _ value: JSONValue?) -> JSONValue {
            var members = good.objectValue!
            members[field] = value
            return .object(members)
        }
        #expect(code { try SecretStorageKey(id: key.id, recoveryKey: key.recoveryKey, description: with("algorithm", "m.secret_storage.v2")) } == .unsupportedAlgorithm)
        #expect(code { try SecretStorageKey(id: key.id, recoveryKey: key.recoveryKey, description: with("algorithm", nil)) } == .unsupportedAlgorithm)
        #expect(code { try SecretStorageKey(id: key.id, recoveryKey: key.recoveryKey, description: with("iv", nil)) } == .malformed)
        #expect(code { try SecretStorageKey(id: key.id, recoveryKey: key.recoveryKey, description: with("iv", "AAAA")) } == .malformed)
        #expect(code { try SecretStorageKey(id: key.id, recoveryKey: key.recoveryKey, description: with("mac", 12)) } == .malformed)
        #expect(code { try SecretStorageKey(id: key.id, recoveryKey: key.recoveryKey, description: with("mac", "AAAA")) } == .wrongRecoveryKey)
        #expect(code { try SecretStorageKey(id: key.id, recoveryKey: key.recoveryKey, description: "a string") } == .malformed)
        #expect(code { try SecretStorageKey(id: "", recoveryKey: key.recoveryKey, description: good) } == .malformed)
        #expect(code { try SecretStorageKey(id: "a\nb", recoveryKey: key.recoveryKey, description: good) } == .malformed)
        #expect(code { try SecretStorage.defaultKeyID(from: ["key": 5]) } == .malformed)
        #expect(code { try SecretStorage.defaultKeyID(from: [:]) } == .malformed)
        #expect(try SecretStorage.defaultKeyID(from: SecretStorage.defaultKeyContent(key)) == key.id)
    }

    @Test("secrets round-trip; a wrong key, a changed MAC or ciphertext, or a moved secret is refused")
    func secrets() throws {
        let key = SecretStorageKey.generate()
        let plaintext = Array("a secret of some length".utf8)
        let content = SecretStorage.secretContent(plaintext, name: "m.example", key: key)
        #expect(try SecretStorage.openSecret(content, name: "m.example", key: key) == plaintext)
        // Unpadded base64 on the wire.
        let entry = try #require(content["encrypted"]?[key.id])
        for field in ["iv", "ciphertext", "mac"] { #expect(entry[field]?.stringValue?.contains("=") == false) }

        #expect(code { try SecretStorage.openSecret(content, name: "m.example", key: SecretStorageKey.generate()) } == .missing)
        let other = SecretStorageKey.generate()
        let moved: JSONValue = ["encrypted": .object([other.id: entry])]
        #expect(code { try SecretStorage.openSecret(moved, name: "m.example", key: other) } == .authenticationFailed)
        #expect(code { try SecretStorage.openSecret(content, name: "m.other", key: key) } == .authenticationFailed)

        var secret = try EncryptedSecret(json: entry, what: "test")
        #expect(secret.iv.count == 16)
        var tampered = secret
        tampered.mac[0] ^= 1
        #expect(code { try key.decrypt(tampered, name: "m.example") } == .authenticationFailed)
        tampered = secret
        tampered.ciphertext[tampered.ciphertext.count - 1] ^= 0x80
        #expect(code { try key.decrypt(tampered, name: "m.example") } == .authenticationFailed)
        tampered = secret
        tampered.mac.removeLast()
        #expect(code { try key.decrypt(tampered, name: "m.example") } == .authenticationFailed)
        secret.iv[0] ^= 1  // the IV is not under the MAC: a changed IV only garbles the plaintext
        #expect(try key.decrypt(secret, name: "m.example") != plaintext)

        #expect(code { try SecretStorage.openSecret(["encrypted": .object([key.id: ["iv": entry["iv"]!, "mac": entry["mac"]!]])], name: "m.example", key: key) } == .malformed)
        #expect(code { try SecretStorage.openSecret(["encrypted": .object([key.id: ["iv": "AAAA", "mac": entry["mac"]!, "ciphertext": entry["ciphertext"]!]])], name: "m.example", key: key) } == .malformed)
        #expect(code { try SecretStorage.openSecret(["encrypted": .object([key.id: ["iv": entry["iv"]!, "mac": "!!", "ciphertext": entry["ciphertext"]!]])], name: "m.example", key: key) } == .malformed)
        #expect(code { try SecretStorage.openSecret(["encrypted": "no"], name: "m.example", key: key) } == .malformed)
        #expect(code { try SecretStorage.openSecret([:], name: "m.example", key: key) } == .malformed)
    }

    @Test("every IV has bit 63 clear")
    func ivBit63() throws {
        let key = SecretStorageKey.generate()
        for _ in 0..<64 {
            #expect(key.encrypt([1, 2, 3], name: "m.example").iv[8] & 0x80 == 0)
            let description = key.keyDescription()
            let iv = try EncryptedSecret(json: ["iv": description["iv"]!, "mac": description["mac"]!, "ciphertext": ""], what: "d").iv
            #expect(iv[8] & 0x80 == 0)
        }
    }

    @Test("cross-signing seeds: written description first and default key last, read back; a secret encrypted as another is refused")
    func crossSigning() throws {
        let seeds = CrossSigningSeeds.generate()
        let key = SecretStorageKey.generate()
        let entries = SecretStorage.crossSigningAccountData(seeds, key: key)
        #expect(entries.map(\.type) == [
            "m.secret_storage.key.\(key.id)", "m.cross_signing.master", "m.cross_signing.self_signing", "m.cross_signing.user_signing",
            "m.secret_storage.default_key",
        ])
        let content = Dictionary(entries.map { ($0.type, $0.content) }, uniquingKeysWith: { $1 })
        let id = try SecretStorage.defaultKeyID(from: content["m.secret_storage.default_key"]!)
        let recovered = try SecretStorageKey(
            id: id, recoveryKey: RecoveryKey(key.recoveryKey.displayString), description: content["m.secret_storage.key.\(id)"]!)
        let opened = try SecretStorage.openCrossSigningSeeds(
            master: content["m.cross_signing.master"]!, selfSigning: content["m.cross_signing.self_signing"]!,
            userSigning: content["m.cross_signing.user_signing"]!, key: recovered)
        #expect(opened == seeds)
        // Swapping two secrets (an attacker with write access to account data) does not go unnoticed.
        #expect(code {
            try SecretStorage.openCrossSigningSeeds(
                master: content["m.cross_signing.self_signing"]!, selfSigning: content["m.cross_signing.master"]!,
                userSigning: content["m.cross_signing.user_signing"]!, key: recovered)
        } == .authenticationFailed)
        // A secret that is not the base64 of 32 bytes.
        let short = SecretStorage.secretContent(Array("AAAA".utf8), name: "m.cross_signing.master", key: key)
        #expect(code {
            try SecretStorage.openCrossSigningSeeds(
                master: short, selfSigning: content["m.cross_signing.self_signing"]!, userSigning: content["m.cross_signing.user_signing"]!,
                key: recovered)
        } == .malformed)
    }
}

/// Base58 (Bitcoin alphabet) for building test strings, independent of the code under test; inputs
/// here never start with a zero byte, so leading `1`s are not needed.
func base58(_ bytes: [UInt8]) -> String {
    let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
    var number = bytes.map(Int.init)
    var output: [Character] = []
    while number.contains(where: { $0 != 0 }) {
        var remainder = 0
        for index in number.indices {
            let value = remainder * 256 + number[index]
            number[index] = value / 58
            remainder = value % 58
        }
        output.append(alphabet[remainder])
    }
    return String(output.reversed())
}

/// A published master key is read only when it is one: a malformed key is an error, never "none".
@Suite("The homeserver's master key")
struct PublishedMasterKeyTests {
    let user = try! UserID("@bot:hs")

    func answer(_ key: JSONValue) -> JSONValue { ["master_keys": ["@bot:hs": key]] }

    @Test("read when well formed, nil when absent, refused when malformed")
    func parse() throws {
        let good: JSONValue = ["user_id": "@bot:hs", "usage": ["master"], "keys": ["ed25519:abc": "abc"]]
        #expect(try PublishedMasterKey.masterKey(of: user, in: answer(good)) == "abc")
        #expect(try PublishedMasterKey.masterKey(of: user, in: ["master_keys": [:]]) == nil)
        #expect(try PublishedMasterKey.masterKey(of: user, in: [:]) == nil)
        let bad: [JSONValue] = [
            ["user_id": "@other:hs", "usage": ["master"], "keys": ["ed25519:abc": "abc"]],
            ["user_id": "@bot:hs", "usage": ["self_signing"], "keys": ["ed25519:abc": "abc"]],
            ["user_id": "@bot:hs", "usage": ["master"], "keys": ["ed25519:abc": "abd"]],
            ["user_id": "@bot:hs", "usage": ["master"], "keys": ["ed25519:abc": "abc", "ed25519:d": "d"]],
            ["user_id": "@bot:hs", "usage": ["master"], "keys": [:]],
            ["user_id": "@bot:hs", "usage": "master", "keys": ["ed25519:abc": "abc"]],
            ["user_id": "@bot:hs", "usage": ["master"], "keys": ["ed25519:abc": 5]],
            "a string",
        ]
        for key in bad {
            #expect(throws: CryptoError.self) { try PublishedMasterKey.masterKey(of: user, in: answer(key)) }
        }
    }
}
