import Olm
import Testing

@Suite("Pk signing, encryption and utility")
struct PkTests {
    /// RFC 8032 §7.1 test 1: secret key, public key and the signature of the empty message.
    @Test("PkSigning matches RFC 8032 test 1")
    func rfc8032() throws {
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        let signing = try PkSigning(seed: seed)
        #expect(signing.publicKey == "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        #expect(signing.sign([UInt8]()) == "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc+bRr0lv18FlbviRlUUFDjnoQCw")
        try Utility.verifyEd25519(key: signing.publicKey, message: Array("abc".utf8), signature: signing.sign("abc"))
        #expect(throws: OlmError.self) {
            try Utility.verifyEd25519(key: signing.publicKey, message: Array("abd".utf8), signature: signing.sign("abc"))
        }
        #expect(throws: OlmError.self) { try PkSigning(seed: [1, 2, 3]) }
        #expect(PkSigning.generateSeed().count == PkSigning.seedByteCount)
        #expect(PkSigning.generateSeed() != PkSigning.generateSeed())
    }

    /// RFC 7748 §6.1: Alice's private key and its Curve25519 public key.
    @Test("PkDecryption derives the RFC 7748 public key; encryption round trips; tampering fails")
    func pkEncryption() throws {
        let privateKey = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        let decryption = try PkDecryption(privateKey: privateKey)
        #expect(decryption.publicKey == "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo")
        #expect(try decryption.privateKey() == privateKey)

        let encryption = try PkEncryption(recipientKey: decryption.publicKey)
        let message = try encryption.encrypt(Array("{\"session_key\":\"secret\"}".utf8))
        #expect(try decryption.decrypt(message).utf8String == "{\"session_key\":\"secret\"}")

        var badMAC = message
        badMAC.mac = String(message.mac.reversed())
        #expect(throws: OlmError.self) { try decryption.decrypt(badMAC) }
        let other = try PkDecryption.create()
        #expect(other.publicKey != decryption.publicKey)
        #expect(throws: OlmError.self) { try other.decrypt(message) }
        #expect(throws: OlmError.self) { try PkEncryption(recipientKey: "short") }

        let restored = try PkDecryption.unpickle(try decryption.pickle(key: TestKeys.pickle), key: TestKeys.pickle)
        #expect(restored.publicKey == decryption.publicKey)
        #expect(try restored.decrypt(message).utf8String == "{\"session_key\":\"secret\"}")
        #expect(throws: OlmError.self) {
            try PkDecryption.unpickle(try decryption.pickle(key: TestKeys.pickle), key: TestKeys.otherPickle)
        }
    }

    @Test("sha256 of \"abc\" is the FIPS 180-2 digest in unpadded base64")
    func sha256() {
        #expect(Utility.sha256(Array("abc".utf8)) == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0")
        #expect(Utility.sha256([UInt8]()) == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")
    }

    @Test("malformed keys and signatures are typed errors, not crashes")
    func malformedVerify() {
        #expect(throws: OlmError.self) { try Utility.verifyEd25519(key: "", message: [1], signature: "") }
        #expect(throws: OlmError.self) { try Utility.verifyEd25519(key: "@@@", message: [1], signature: "###") }
    }

    @Test("the linked libolm is 3.x")
    func version() {
        #expect(Utility.libraryVersion.hasPrefix("3."))
    }
}

func hex(_ string: String) -> [UInt8] {
    var bytes = [UInt8](), chars = Array(string.utf8)
    var index = 0
    while index + 1 < chars.count {
        bytes.append(UInt8(String(decoding: chars[index...index + 1], as: UTF8.self), radix: 16)!)
        index += 2
    }
    return bytes
}
