import Foundation
import MatrixCrypto
import MatrixModels
import Olm
import Testing

@Suite("Local cross-signing identities")
struct LocalCrossSigningTests {
    @Test("a new identity uploads master, self-signing and user-signing keys, the latter two signed by the master; the device is signed by the self-signing key")
    func uploadBodies() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        await harness.store.save(try await harness.machine.createCrossSigningIdentity(userID: harness.puppet))
        let identity = try #require(try await harness.store.crossSigningIdentity(userID: harness.puppet))
        #expect(!identity.published && identity.signedDeviceID == nil)
        // Nothing secret in the clear: the seeds are sealed.
        let seeds = try #require(try await harness.machine.crossSigningSeeds(of: harness.puppet))
        for seed in [seeds.master, seeds.selfSigning, seeds.userSigning] {
            #expect(!identity.sealedSeeds.indices.dropLast(31).contains { Array(identity.sealedSeeds[$0..<$0 + 32]) == seed })
        }

        let pending = try #require(try await harness.machine.pendingCrossSigningUpload(userID: harness.puppet))
        let body = try #require(pending.signingKeys)
        let user = harness.puppet
        let master = identity.keys.master
        #expect(body["master_key"]?["usage"] == ["master"])
        #expect(body["master_key"]?["user_id"]?.stringValue == user.rawValue)
        #expect(body["master_key"]?["keys"]?["ed25519:\(master)"]?.stringValue == master)
        for (name, usage, key) in [("self_signing_key", "self_signing", identity.keys.selfSigning), ("user_signing_key", "user_signing", identity.keys.userSigning)] {
            let object = try #require(body[name])
            #expect(object["usage"] == [.string(usage)])
            #expect(object["keys"]?["ed25519:\(key)"]?.stringValue == key)
            try SignedJSON.verify(object, userID: user, keyID: "ed25519:\(master)", publicKey: master)
        }
        // The device signature covers exactly the published device keys.
        let signature = try #require(pending.deviceSignature)
        #expect(signature.deviceID == harness.device)
        let signedDevice = try #require(signature.body[user.rawValue]?[harness.device.rawValue])
        let published = try #require(upload.deviceKeys)
        try SignedJSON.verify(
            signedDevice, userID: user, keyID: "ed25519:\(identity.keys.selfSigning)", publicKey: identity.keys.selfSigning)
        var bare = published.objectValue!
        bare["signatures"] = nil
        var signedBare = signedDevice.objectValue!
        signedBare["signatures"] = nil
        #expect(bare == signedBare)

        // Confirmed: nothing left to send; a second identity is refused.
        await harness.store.save(try await harness.machine.confirmCrossSigningUpload(pending))
        #expect(try await harness.machine.pendingCrossSigningUpload(userID: user)?.isEmpty == true)
        await #expect(throws: CryptoError.self) { try await harness.machine.createCrossSigningIdentity(userID: user) }
        #expect(try await harness.store.crossSigningIdentity(userID: user)?.keys == identity.keys)
    }

    @Test("keys accepted but the device not yet signed: only the signature is pending; a device whose keys are not uploaded is not signed")
    func partialProgress() async throws {
        let harness = try MachineHarness()
        let (changes, _) = try await harness.machine.createDevice(userID: harness.puppet, deviceID: harness.device)
        await harness.store.save(changes)
        await harness.store.save(try await harness.machine.createCrossSigningIdentity(userID: harness.puppet))
        let first = try #require(try await harness.machine.pendingCrossSigningUpload(userID: harness.puppet))
        #expect(first.signingKeys != nil && first.deviceSignature == nil)
        await harness.store.save(try await harness.machine.confirmCrossSigningUpload(first))
        #expect(try await harness.machine.pendingCrossSigningUpload(userID: harness.puppet)?.isEmpty == true)
    }

    @Test("import: seeds that make another master key are refused; the right seeds are stored as the same identity")
    func importSeeds() async throws {
        let harness = try MachineHarness()
        let seeds = CrossSigningSeeds.generate()
        let other = CrossSigningSeeds.generate()
        let master = try seeds.publicKeys().master
        await #expect(throws: CryptoError.self) {
            try await harness.machine.importCrossSigningIdentity(userID: harness.puppet, seeds: other, expectedMaster: master)
        }
        await harness.store.save(try await harness.machine.importCrossSigningIdentity(userID: harness.puppet, seeds: seeds, expectedMaster: master))
        #expect(try await harness.machine.crossSigningSeeds(of: harness.puppet) == seeds)
        #expect(try await harness.store.crossSigningIdentity(userID: harness.puppet)?.keys == seeds.publicKeys())
        #expect(throws: CryptoError.self) { try CrossSigningSeeds(master: [1, 2, 3], selfSigning: seeds.selfSigning, userSigning: seeds.userSigning) }
    }

    @Test("sealed seeds are bound to their user and to the pickle key")
    func sealedBinding() async throws {
        let harness = try MachineHarness()
        await harness.store.save(try await harness.machine.createCrossSigningIdentity(userID: harness.puppet))
        var identity = try #require(try await harness.store.crossSigningIdentity(userID: harness.puppet))
        // A row copied to another user does not open.
        let thief = try UserID("@thief:localhost")
        identity.userID = thief
        var stolen = CryptoChanges()
        stolen.crossSigningIdentities = [identity]
        await harness.store.save(stolen)
        await #expect(throws: CryptoError.self) { try await harness.machine.crossSigningSeeds(of: thief) }
        // Another pickle key does not open it either.
        let other = CryptoMachine(store: harness.store, cipher: try StoreCipher(secret: String(repeating: "x", count: 44)))
        await #expect(throws: CryptoError.self) { try await other.crossSigningSeeds(of: harness.puppet) }
    }
}
