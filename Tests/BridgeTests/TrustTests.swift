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
        await hs.uploadSigningKeys(["master_key": Self.key(master.publicKey, user: user, usage: "master"), "self_signing_key": selfSigningJSON], userID: user)
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

    @Test("with the bot's cross-signing identity, trust signs the master key on the homeserver; that signature alone makes the user verified")
    func trustSignsMasterKey() async throws {
        var settings = CryptoSettings()
        settings.trustAnchor = try UserID("@bob:localhost")
        let (hs, alice, bob, _) = try await pair(bob: settings, crossSignAlice: true)
        try await bob.engine.ensureCrossSigning(bob.user, onForeignIdentity: .refuse)
        let userSigning = try #require(try await bob.store.crossSigningIdentity(userID: bob.user)).keys.userSigning
        let master = try #require(try await bob.store.userIdentities([alice.user])[alice.user]?.masterKey)
        guard case .success(let (_, signed)) = try await bob.engine.trust(alice.user, fingerprint: master) else {
            Issue.record("the current master key was not trusted")
            return
        }
        #expect(signed)
        let served = try #require(await hs.signingKeys[alice.user]?["master_key"])
        #expect((try? SignedJSON.verify(served, userID: bob.user, keyID: "ed25519:\(userSigning)", publicKey: userSigning)) != nil)

        // Without the recorded vouch, the signature the homeserver serves makes Alice verified by itself.
        var forgotten = try #require(try await bob.store.userIdentities([alice.user])[alice.user])
        forgotten.vouchedMasterKey = nil
        var changes = CryptoChanges()
        changes.userIdentities[alice.user] = forgotten
        try await bob.store.save(changes)
        #expect(try await bob.machine.deviceTrust(of: alice.user).devices.map(\.1) == [.crossSigned])
        try await bob.engine.refreshDevices([alice.user], as: bob.user)
        #expect(try await bob.machine.deviceTrust(of: alice.user).devices.map(\.1) == [.verified])
    }

    @Test("a master key signed by a key that is not the bot's user-signing key does not verify anyone")
    func foreignSignatureDoesNotVerify() async throws {
        var settings = CryptoSettings()
        settings.trustAnchor = try UserID("@bob:localhost")
        let (hs, alice, bob, _) = try await pair(bob: settings, crossSignAlice: true)
        try await bob.engine.ensureCrossSigning(bob.user, onForeignIdentity: .refuse)
        // The server adds a "signature by the bot" made with a key that is not the bot's.
        let forger = try PkSigning(seed: PkSigning.generateSeed())
        let userSigning = try #require(try await bob.store.crossSigningIdentity(userID: bob.user)).keys.userSigning
        let master = try #require(await hs.signingKeys[alice.user]?["master_key"])
        var forged = try SignedJSON.sign(master, userID: bob.user, keyID: "ed25519:\(userSigning)", with: forger)
        if case .object(var members) = forged, case .object(var signatures)? = members["signatures"] {
            signatures[bob.user.rawValue] = ["ed25519:\(userSigning)": .string(forger.sign("other"))]
            members["signatures"] = .object(signatures)
            forged = .object(members)
        }
        await hs.uploadSigningKeys(["master_key": forged], userID: alice.user)
        try await bob.engine.refreshDevices([alice.user], as: bob.user)
        #expect(try await bob.machine.deviceTrust(of: alice.user).devices.map(\.1) == [.crossSigned])
    }

    @Test("whois shows each device's level and the grouped fingerprint; trust with that fingerprint verifies, a wrong one changes nothing; admins only")
    func commands() async throws {
        let (_, alice, bob, _) = try await pair(crossSignAlice: true)
        let admin = try UserID("@admin:localhost")
        let commands = ManagementCommands(admins: [admin], commands: TrustCommands(engine: bob.engine, requester: bob.user).commands)
        let master = try #require(try await bob.store.userIdentities([alice.user])[alice.user]?.masterKey)
        let grouped = MasterKeyFingerprint.grouped(master)
        #expect(grouped.split(separator: " ").count == 11 && grouped.replacingOccurrences(of: " ", with: "") == master)

        let before = try #require(await commands.handle("whois \(alice.user)", from: admin)).body
        #expect(before.contains("\(alice.device): cross_signed") && before.contains("\(grouped) (pinned)"))
        #expect(await commands.handle("trust \(alice.user) \(grouped)", from: try UserID("@stranger:localhost"))?.body
            == "Only Sealbridge admins can run commands.")

        let wrong = String(master.reversed())
        #expect(try #require(await commands.handle("trust \(alice.user) \(wrong)", from: admin)).body.contains("nothing changed"))
        #expect(try #require(await commands.handle("whois \(alice.user)", from: admin)).body.contains("cross_signed"))

        let trusted = try #require(await commands.handle("trust \(alice.user) \(grouped)", from: admin)).body
        #expect(trusted.hasPrefix("Trusted \(alice.user)'s master key"))
        let after = try #require(await commands.handle("whois \(alice.user)", from: admin)).body
        #expect(after.contains("\(alice.device): verified") && after.contains("trusted by an admin"))
        #expect(try #require(await commands.handle("whois @nobody:localhost", from: admin)).body.contains("none (not cross-signed)"))
        #expect(await commands.handle("whois not-a-user", from: admin)?.body == "usage: whois @user:server")
    }
}


extension TrustTests {
    @Test("sharing_policy cross_signed: when a recipient's identity changes, the session rotates, so nothing sent after the change can be read with the key it holds")
    func identityChangeRotates() async throws {
        var settings = CryptoSettings()
        settings.sharingPolicy = .crossSigned
        let (hs, alice, bob, room) = try await pair(bob: settings, crossSignAlice: true)
        _ = try await bob.send("before", in: room)
        #expect(try await alice.sync().bodies == ["before"])
        let first = try #require(try await bob.store.outboundGroupSession(roomID: room, senderUserID: bob.user)).sessionID

        // Alice's identity is replaced (a reset, or a server substituting one): her device is now
        // identity_changed, which the policy excludes.
        try await CrossSigner(alice.user).publish(on: hs, signing: alice.device)
        try await bob.sync()
        try await bob.engine.refreshDevices([alice.user], as: bob.user)
        _ = try await bob.send("after", in: room)
        let second = try #require(try await bob.store.outboundGroupSession(roomID: room, senderUserID: bob.user))
        #expect(second.sessionID != first)
        #expect(second.shares.map(\.withheldCode) == ["m.unverified"])
        let view = try await alice.sync()
        #expect(view.bodies.isEmpty)
        #expect(view.parked.map(\.sessionID) == [second.sessionID])
    }
}
