import MatrixModels
import Olm
import Testing

@Suite("Signing JSON")
struct SignedJSONTests {
    let user = try! UserID("@bot:example.org")

    @Test("a device signs its keys; the signature verifies and survives unsigned data and other signatures")
    func signAndVerify() throws {
        let account = try Account.create()
        let keyID = "ed25519:DEVICE"
        let deviceKeys: JSONValue = [
            "user_id": .string(user.rawValue), "device_id": "DEVICE",
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": ["curve25519:DEVICE": .string(account.identityKeys.curve25519), keyID: .string(account.identityKeys.ed25519)],
            "unsigned": ["device_display_name": "before"],
        ]
        var signed = try SignedJSON.sign(deviceKeys, userID: user, keyID: keyID, with: account)
        #expect(signed["unsigned"]?["device_display_name"]?.stringValue == "before")
        try SignedJSON.verify(signed, userID: user, keyID: keyID, publicKey: account.identityKeys.ed25519)

        // Unsigned data and another party's signature are not covered.
        guard case .object(var members) = signed else { Issue.record("not an object"); return }
        members["unsigned"] = ["device_display_name": "after"]
        signed = .object(members)
        let master = try PkSigning(seed: PkSigning.generateSeed())
        signed = try SignedJSON.sign(signed, userID: user, keyID: "ed25519:\(master.publicKey)", with: master)
        try SignedJSON.verify(signed, userID: user, keyID: keyID, publicKey: account.identityKeys.ed25519)
        try SignedJSON.verify(signed, userID: user, keyID: "ed25519:\(master.publicKey)", publicKey: master.publicKey)
        #expect(signed["signatures"]?[user.rawValue]?.objectValue?.count == 2)
    }

    @Test("a modified object, a wrong key or a missing signature is refused")
    func rejects() throws {
        let account = try Account.create()
        let signed = try SignedJSON.sign(["a": 1, "b": "x"], userID: user, keyID: "ed25519:D", with: account)
        guard case .object(var members) = signed else { Issue.record("not an object"); return }
        members["b"] = "y"
        #expect { try SignedJSON.verify(.object(members), userID: self.user, keyID: "ed25519:D", publicKey: account.identityKeys.ed25519) }
            throws: { ($0 as? SignatureError)?.code == .invalidSignature }
        #expect { try SignedJSON.verify(signed, userID: self.user, keyID: "ed25519:D", publicKey: try Account.create().identityKeys.ed25519) }
            throws: { ($0 as? SignatureError)?.code == .invalidSignature }
        #expect { try SignedJSON.verify(signed, userID: self.user, keyID: "ed25519:OTHER", publicKey: account.identityKeys.ed25519) }
            throws: { ($0 as? SignatureError)?.code == .missingSignature }
        #expect { try SignedJSON.verify(signed, userID: try UserID("@x:y.z"), keyID: "ed25519:D", publicKey: account.identityKeys.ed25519) }
            throws: { ($0 as? SignatureError)?.code == .missingSignature }
        #expect { try SignedJSON.sign(["f": 1.5], userID: self.user, keyID: "ed25519:D", with: account) }
            throws: { ($0 as? SignatureError)?.code == .notSignable }
        #expect { try SignedJSON.sign([1, 2], userID: self.user, keyID: "ed25519:D", with: account) }
            throws: { ($0 as? SignatureError)?.code == .notSignable }
    }

    /// The spec's own signed example is by a server key we do not have, so we check the other direction:
    /// the signature is over exactly the canonical bytes, which another implementation can check.
    @Test("the signature covers the canonical bytes without signatures and unsigned")
    func coversCanonicalBytes() throws {
        let account = try Account.create()
        let object = try JSONValue.parse(#"{"b":2,"a":"日","unsigned":{"x":1}}"#)
        let signed = try SignedJSON.sign(object, userID: user, keyID: "ed25519:D", with: account)
        let signature = try #require(signed["signatures"]?[user.rawValue]?["ed25519:D"]?.stringValue)
        try Utility.verifyEd25519(key: account.identityKeys.ed25519, message: Array(#"{"a":"日","b":2}"#.utf8), signature: signature)
    }
}
