import MatrixCrypto
import MatrixModels
import Olm
import Testing

@Suite("Key uploads and one-time key policy")
struct KeysUploadTests {
    let user = try! UserID("@sealbridge_42:localhost")
    let device = try! DeviceID("SBDEVICE")

    @Test("the first upload carries signed device keys, signed one-time keys and a signed fallback key")
    func firstUpload() throws {
        let account = try Account.create()
        try account.generateOneTimeKeys(count: 3)
        try account.generateFallbackKey()
        let upload = try KeysUpload.pending(from: account, userID: user, deviceID: device, includeDeviceKeys: true)
        let keyID = "ed25519:SBDEVICE", ed25519 = account.identityKeys.ed25519

        let deviceKeys = try #require(upload.deviceKeys)
        #expect(deviceKeys["user_id"]?.stringValue == user.rawValue)
        #expect(deviceKeys["device_id"]?.stringValue == "SBDEVICE")
        #expect(deviceKeys["algorithms"] == ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"])
        #expect(deviceKeys["keys"]?["curve25519:SBDEVICE"]?.stringValue == account.identityKeys.curve25519)
        try SignedJSON.verify(deviceKeys, userID: user, keyID: keyID, publicKey: ed25519)

        #expect(upload.oneTimeKeys.count == 3)
        for (id, key) in upload.oneTimeKeys {
            #expect(id.hasPrefix("signed_curve25519:"))
            try SignedJSON.verify(key, userID: user, keyID: keyID, publicKey: ed25519)
        }
        let (fallbackID, fallback) = try #require(upload.fallbackKeys.first)
        #expect(fallbackID.hasPrefix("signed_curve25519:"))
        #expect(fallback["fallback"] == true)
        try SignedJSON.verify(fallback, userID: user, keyID: keyID, publicKey: ed25519)

        let body = upload.body
        #expect(body["device_keys"] != nil && body["one_time_keys"] != nil && body["fallback_keys"] != nil)
    }

    @Test("after the upload is confirmed nothing is pending; new keys appear in the next upload only")
    func laterUploads() throws {
        let account = try Account.create()
        try account.generateOneTimeKeys(count: 2)
        _ = try KeysUpload.pending(from: account, userID: user, deviceID: device, includeDeviceKeys: true)
        account.markKeysAsPublished()
        #expect(try KeysUpload.pending(from: account, userID: user, deviceID: device, includeDeviceKeys: false).isEmpty)
        try account.generateOneTimeKeys(count: 4)
        let next = try KeysUpload.pending(from: account, userID: user, deviceID: device, includeDeviceKeys: false)
        #expect(next.deviceKeys == nil)
        #expect(next.oneTimeKeys.count == 4)
    }

    @Test("a peer can start an Olm session from an uploaded one-time key")
    func uploadedKeyIsUsable() throws {
        let account = try Account.create(), peer = try Account.create()
        try account.generateOneTimeKeys(count: 1)
        let upload = try KeysUpload.pending(from: account, userID: user, deviceID: device, includeDeviceKeys: true)
        let otk = try #require(upload.oneTimeKeys.values.first?["key"]?.stringValue)
        let curve = try #require(upload.deviceKeys?["keys"]?["curve25519:SBDEVICE"]?.stringValue)
        let outbound = try Session.outbound(account: peer, theirIdentityKey: curve, theirOneTimeKey: otk)
        let message = try outbound.encrypt("hello puppet")
        #expect(String(decoding: try Session.inbound(account: account, preKeyMessage: message).decrypt(message), as: UTF8.self) == "hello puppet")
    }

    @Test("policy: an empty count map means zero; unpublished keys count; never over the target")
    func policy() {
        let policy = OneTimeKeyPolicy(target: 50)
        #expect(policy.keysToGenerate(serverCount: [:], unpublished: 0) == 50)
        #expect(policy.keysToGenerate(serverCount: ["signed_curve25519": 49], unpublished: 0) == 1)
        #expect(policy.keysToGenerate(serverCount: ["signed_curve25519": 20], unpublished: 10) == 20)
        #expect(policy.keysToGenerate(serverCount: ["signed_curve25519": 80], unpublished: 0) == 0)
        #expect(policy.keysToGenerate(serverCount: ["curve25519": 50], unpublished: 0) == 50)
        #expect(OneTimeKeyPolicy(target: 500).target == 50)
        #expect(policy.fallbackKeyUsed(unusedTypes: []))
        #expect(!policy.fallbackKeyUsed(unusedTypes: ["signed_curve25519"]))
    }
}
