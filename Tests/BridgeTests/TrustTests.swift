@testable import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Olm
import Testing

/// A user's cross-signing keys made with raw Olm signing keys, published on the fake homeserver.
struct CrossSigner {
    let user: UserID
    let master: PkSigning
    let selfSigning: PkSigning

    init(_ user: UserID) throws {
        self.user = user
        master = try PkSigning(seed: PkSigning.generateSeed())
        selfSigning = try PkSigning(seed: PkSigning.generateSeed())
    }

    static func key(_ key: String, user: UserID, usage: String) -> JSONValue {
        ["user_id": .string(user.rawValue), "usage": [.string(usage)], "keys": .object(["ed25519:\(key)": .string(key)])]
    }

    /// Publishes the keys and cross-signs `device`.
    func publish(on hs: FakeHomeserver, signing device: DeviceID) async throws {
        let selfSigningJSON = try SignedJSON.sign(
            Self.key(selfSigning.publicKey, user: user, usage: "self_signing"), userID: user, keyID: "ed25519:\(master.publicKey)", with: master)
        await hs.publishCrossSigning(user, master: Self.key(master.publicKey, user: user, usage: "master"), selfSigning: selfSigningJSON)
        guard let keys = await hs.devices[user]?[device]?.keys else { return }
        let signed = try SignedJSON.sign(keys, userID: user, keyID: "ed25519:\(selfSigning.publicKey)", with: selfSigning)
        await hs.replaceDeviceKeys(user, device, with: signed)
    }
}

@Suite("Trust: levels on deliveries, accept_from and sharing_policy (MSC4153)")
struct TrustTests {
    /// Alice (remote, her own Sealbridge-like client) and Bob (local) in an encrypted room; Bob knows
    /// Alice's current keys.
    func pair(bob settings: CryptoSettings = CryptoSettings(), crossSignAlice: Bool) async throws -> (FakeHomeserver, Party, Party, RoomID) {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"], settings: settings)
        if crossSignAlice { try await CrossSigner(alice.user).publish(on: hs, signing: alice.device) }
        let room = try await encryptedRoom("!trust", on: hs, members: [alice.user, bob.user])
        try await alice.sync()
        try await bob.sync()
        try await bob.engine.refreshDevices([alice.user], as: bob.user)
        return (hs, alice, bob, room)
    }

    @Test("an event from a cross-signed device is delivered cross_signed; from a self-signed one device_only")
    func levelOnDelivery() async throws {
        for (crossSigned, expected) in [(true, DeviceTrust.crossSigned), (false, .deviceOnly)] {
            let (_, alice, bob, room) = try await pair(crossSignAlice: crossSigned)
            _ = try await alice.send("hello", in: room)
            let step = try await bob.sync()
            #expect(step.bodies == ["hello"])
            #expect(step.roomEvents.map(\.trust) == [expected])
            let users = LocalUsers(bot: try UserID("@bot:localhost"), puppetNamespaceRegex: "@bob:localhost")
            let delivery = try #require(Delivery.collect(events: [], step: step, users: users).first)
            #expect(delivery.json["encryption"]?["trust"] == JSONValue.string(expected.rawValue))
        }
    }

    @Test("after an admin trusts the sender's master key, the next event is verified; a changed identity is identity_changed")
    func verifiedAndChanged() async throws {
        let (hs, alice, bob, room) = try await pair(crossSignAlice: true)
        let master = try #require(try await bob.store.userIdentities([alice.user])[alice.user]?.masterKey)
        guard case .success = try await bob.engine.trust(alice.user, fingerprint: MasterKeyFingerprint.grouped(master)) else {
            Issue.record("the current master key was not trusted")
            return
        }
        _ = try await alice.send("one", in: room)
        #expect(try await bob.sync().roomEvents.map(\.trust) == [.verified])

        // Alice's identity is replaced (reset, or a substituting server): her device is judged anew.
        try await CrossSigner(alice.user).publish(on: hs, signing: alice.device)
        try await bob.sync()
        try await bob.engine.refreshDevices([alice.user], as: bob.user)
        _ = try await alice.send("two", in: room)
        #expect(try await bob.sync().roomEvents.map(\.trust) == [.identityChanged])
    }

    @Test("accept_from cross_signed: an event from a device_only sender is delivered refused, with the level as reason")
    func acceptFromRefuses() async throws {
        var settings = CryptoSettings()
        settings.acceptFrom = .crossSigned
        let (_, alice, bob, room) = try await pair(bob: settings, crossSignAlice: false)
        _ = try await alice.send("hidden", in: room)
        let step = try await bob.sync()
        #expect(step.bodies.isEmpty)
        let outcome = try #require(step.roomEvents.first)
        #expect(outcome.result == .failure(.untrustedDevice(.deviceOnly)))
        let users = LocalUsers(bot: try UserID("@bot:localhost"), puppetNamespaceRegex: "@bob:localhost")
        let delivery = try #require(Delivery.collect(events: [], step: step, users: users).first)
        #expect(delivery.json["encryption"]?["decrypted"] == false && delivery.json["content"] == [:])
        #expect(delivery.json["encryption"]?["error"]?["code"] == "untrusted_device")
        #expect(delivery.json["encryption"]?["error"]?["reason"] == "device_only")
        #expect(delivery.json["encryption"]?["trust"] == "device_only")
    }

    @Test("sharing_policy cross_signed: a device_only device gets m.unverified and no share; once cross-signed it gets the key")
    func sharingPolicyWithholds() async throws {
        var settings = CryptoSettings()
        settings.sharingPolicy = .crossSigned
        let (hs, alice, bob, room) = try await pair(bob: settings, crossSignAlice: false)
        _ = try await bob.send("not for you", in: room)
        #expect(await hs.sentToDevice.map(\.type) == ["m.room_key.withheld"])
        let shares = try #require(try await bob.store.outboundGroupSession(roomID: room, senderUserID: bob.user)).shares
        #expect(shares.map(\.withheldCode) == ["m.unverified"] && shares.allSatisfy { $0.messageIndex == nil })
        let view = try await alice.sync()
        #expect(view.bodies.isEmpty)
        guard case .withheld(code: "m.unverified", _) = view.parked.first?.reason else {
            Issue.record("expected m.unverified, got \(String(describing: view.parked.first?.reason))")
            return
        }

        // A second message does not repeat the notice.
        _ = try await bob.send("still not", in: room)
        #expect(await hs.sentToDevice.count == 1)

        // Alice cross-signs her device; Bob learns it from her device-list change and shares the key.
        try await CrossSigner(alice.user).publish(on: hs, signing: alice.device)
        try await bob.sync()
        _ = try await bob.send("now you can read", in: room)
        #expect(await hs.sentToDevice.map(\.type).last == "m.room.encrypted")
        #expect(try await alice.sync().bodies.contains("now you can read"))
        let after = try #require(try await bob.store.outboundGroupSession(roomID: room, senderUserID: bob.user)).shares
        #expect(after.count == 1 && after[0].messageIndex != nil && after[0].withheldCode == nil)
    }
}
