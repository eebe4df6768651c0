import MatrixCrypto
import MatrixModels
import Olm
import Testing

/// A user's cross-signing keys made with raw Olm signing keys, as a remote client would publish them.
struct TestIdentity {
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

    var masterJSON: JSONValue { Self.key(master.publicKey, user: user, usage: "master") }

    var selfSigningJSON: JSONValue {
        try! SignedJSON.sign(
            Self.key(selfSigning.publicKey, user: user, usage: "self_signing"), userID: user, keyID: "ed25519:\(master.publicKey)", with: master)
    }

    func sign(device keys: JSONValue) throws -> JSONValue {
        try SignedJSON.sign(keys, userID: user, keyID: "ed25519:\(selfSigning.publicKey)", with: selfSigning)
    }

    /// A `/keys/query` answer listing `devices` (id → keys) and these cross-signing keys.
    func answer(devices: [String: JSONValue], master: JSONValue? = nil, selfSigning: JSONValue? = nil) -> JSONValue {
        [
            "device_keys": [user.rawValue: .object(devices)],
            "master_keys": [user.rawValue: master ?? masterJSON],
            "self_signing_keys": [user.rawValue: selfSigning ?? selfSigningJSON],
        ]
    }
}

@Suite("Cross-signing of remote users (MSC4153)")
struct CrossSigningTests {
    let alice = try! UserID("@alice:remote")

    /// A device of `user` with validly self-signed keys.
    func device(_ id: String, of user: UserID) throws -> (VerifiedDeviceKeys, JSONValue) {
        let keys = try KeysUpload.signedDeviceKeys(of: try Account.create(), userID: user, deviceID: try DeviceID(id))
        return (try VerifiedDeviceKeys(keys, expectedUser: user), keys)
    }

    /// Runs one keys answer through a machine and commits it; returns the outcome and each device's level.
    func judge(_ answer: JSONValue, harness: MachineHarness) async throws -> (KeysQueryOutcome, [String: DeviceTrust]) {
        let outcome = try await harness.machine.receiveKeysQuery(answer, users: [alice])
        await harness.store.save(outcome.changes)
        let (devices, _) = try await harness.machine.deviceTrust(of: alice)
        return (outcome, Dictionary(uniqueKeysWithValues: devices.map { ($0.0.deviceID.rawValue, $0.1) }))
    }

    @Test("a device signed by a self-signing key the master key signed is cross_signed; an unsigned one is device_only")
    func honestAnswer() async throws {
        let identity = try TestIdentity(alice)
        let (_, signedKeys) = try device("SIGNED", of: alice), (_, plainKeys) = try device("PLAIN", of: alice)
        let (outcome, levels) = try await judge(
            identity.answer(devices: ["SIGNED": try identity.sign(device: signedKeys), "PLAIN": plainKeys]), harness: try MachineHarness())
        #expect(levels == ["SIGNED": .crossSigned, "PLAIN": .deviceOnly])
        #expect(outcome.refusedKeys.isEmpty && outcome.changedIdentities.isEmpty)
        let stored = try #require(outcome.changes.userIdentities[alice])
        #expect(stored.pinnedMasterKey == identity.master.publicKey && stored.masterKey == identity.master.publicKey)
        #expect(stored.selfSigningKey == identity.selfSigning.publicKey)
    }

    @Test("each lie of the server leaves the device not cross-signed, and the rest of the answer is kept")
    func lies() async throws {
        let identity = try TestIdentity(alice)
        let (_, keys) = try device("DEV", of: alice)
        let signed = try identity.sign(device: keys)
        let stranger = try PkSigning(seed: PkSigning.generateSeed())
        let mallory = try UserID("@mallory:remote")
        let ssk = identity.selfSigning.publicKey, master = identity.master.publicKey
        func sskSigned(by signer: PkSigning, _ json: JSONValue) throws -> JSONValue {
            try SignedJSON.sign(json, userID: alice, keyID: "ed25519:\(signer.publicKey)", with: signer)
        }
        let lies: [(String, JSONValue?, JSONValue?, JSONValue)] = [
            ("self-signing key signed by another key", nil,
             try sskSigned(by: stranger, TestIdentity.key(ssk, user: alice, usage: "self_signing")), signed),
            ("self-signing key unsigned", nil, TestIdentity.key(ssk, user: alice, usage: "self_signing"), signed),
            ("device signed by a key that is not the self-signing key", nil, nil,
             try SignedJSON.sign(keys, userID: alice, keyID: "ed25519:\(ssk)", with: stranger)),
            ("self-signing key of another user", nil,
             try SignedJSON.sign(TestIdentity.key(ssk, user: mallory, usage: "self_signing"), userID: alice, keyID: "ed25519:\(master)", with: identity.master),
             signed),
            ("self-signing key with usage master", nil,
             try sskSigned(by: identity.master, TestIdentity.key(ssk, user: alice, usage: "master")), signed),
            ("master key of another user", TestIdentity.key(master, user: mallory, usage: "master"), nil, signed),
            ("master key with usage self_signing", TestIdentity.key(master, user: alice, usage: "self_signing"), nil, signed),
            ("master key naming two keys", ["user_id": .string(alice.rawValue), "usage": ["master"],
                "keys": .object(["ed25519:\(master)": .string(master), "ed25519:\(ssk)": .string(ssk)])], nil, signed),
            ("master key whose id names another key", ["user_id": .string(alice.rawValue), "usage": ["master"],
                "keys": .object(["ed25519:\(ssk)": .string(master)])], nil, signed),
            ("master key not base64", TestIdentity.key(String(repeating: "!", count: 43), user: alice, usage: "master"), nil, signed),
            ("master key of the wrong type", "a string", nil, signed),
            ("usage not a list", ["user_id": .string(alice.rawValue), "usage": "master", "keys": .object(["ed25519:\(master)": .string(master)])],
             nil, signed),
            ("huge usage list", ["user_id": .string(alice.rawValue), "usage": .array(Array(repeating: "master", count: 10_000)),
                "keys": .object(["ed25519:\(master)": .string(master)])], nil, signed),
            ("self-signing key of the wrong type", nil, .array([1, 2]), signed),
            ("self-signing key equal to the master key", nil,
             try sskSigned(by: identity.master, TestIdentity.key(master, user: alice, usage: "self_signing")), signed),
        ]
        for (lie, masterJSON, selfSigningJSON, deviceJSON) in lies {
            let (outcome, levels) = try await judge(
                identity.answer(devices: ["DEV": deviceJSON], master: masterJSON, selfSigning: selfSigningJSON), harness: try MachineHarness())
            #expect(levels == ["DEV": .deviceOnly], "\(lie)")
            #expect(outcome.changes.deviceLists[alice]?.count == 1, "\(lie): the device itself is kept")
        }
    }

    @Test("a device signed under the self-signing key's name but whose keys changed under a known id is not cross-signed")
    func changedKeysUnderKnownID() async throws {
        let identity = try TestIdentity(alice)
        let harness = try MachineHarness()
        let (_, first) = try device("DEV", of: alice)
        _ = try await judge(identity.answer(devices: ["DEV": first]), harness: harness)
        // The server swaps in other keys under the same id, cross-signed: the old keys stay, unsigned.
        let (_, swapped) = try device("DEV", of: alice)
        let (outcome, levels) = try await judge(identity.answer(devices: ["DEV": try identity.sign(device: swapped)]), harness: harness)
        #expect(outcome.rejected.count == 1)
        #expect(levels == ["DEV": .deviceOnly])
    }

    @Test("the first master key is pinned; a new one makes cross-signed devices identity_changed, and trusting it re-pins and verifies")
    func pinningAndChange() async throws {
        let harness = try MachineHarness()
        let first = try TestIdentity(alice)
        let (_, keys) = try device("DEV", of: alice)
        var (outcome, levels) = try await judge(first.answer(devices: ["DEV": try first.sign(device: keys)]), harness: harness)
        #expect(levels == ["DEV": .crossSigned])

        // The user resets their identity (or the server substitutes one) and cross-signs the same device.
        let second = try TestIdentity(alice)
        (outcome, levels) = try await judge(second.answer(devices: ["DEV": try second.sign(device: keys)]), harness: harness)
        #expect(levels == ["DEV": .identityChanged])
        #expect(outcome.changedIdentities == [alice])
        var stored = try #require(try await harness.store.userIdentities([alice])[alice])
        #expect(stored.pinnedMasterKey == first.master.publicKey && stored.masterKey == second.master.publicKey && stored.identityChanged)

        // The same answer again is no new change.
        (outcome, _) = try await judge(second.answer(devices: ["DEV": try second.sign(device: keys)]), harness: harness)
        #expect(outcome.changedIdentities.isEmpty)

        // Trusting the old (pinned) key is refused: it is not the current one.
        guard case .failure(.mismatch) = try await harness.machine.vouch(for: alice, fingerprint: first.master.publicKey) else {
            Issue.record("a stale fingerprint was accepted")
            return
        }
        // The admin compares the new key with Alice and trusts it, typed in groups.
        let vouched = try await harness.machine.vouch(for: alice, fingerprint: MasterKeyFingerprint.grouped(second.master.publicKey)).get()
        await harness.store.save(vouched.changes)
        stored = try #require(try await harness.store.userIdentities([alice])[alice])
        #expect(stored.pinnedMasterKey == second.master.publicKey && !stored.identityChanged && stored.isVerified)
        #expect(try await harness.machine.deviceTrust(of: alice).devices.map(\.1) == [.verified])

        // A later answer keeps the vouch and the pin.
        (_, levels) = try await judge(second.answer(devices: ["DEV": try second.sign(device: keys)]), harness: harness)
        #expect(levels == ["DEV": .verified])
        // The published master key disappears: the pin stays, the device is only self-signed now.
        (_, levels) = try await judge(["device_keys": [alice.rawValue: ["DEV": keys]]], harness: harness)
        #expect(levels == ["DEV": .deviceOnly])
        #expect(try await harness.store.userIdentities([alice])[alice]?.pinnedMasterKey == second.master.publicKey)
    }

    @Test("trust refuses a user without an identity, and a fingerprint of another length")
    func vouchRefusals() async throws {
        let harness = try MachineHarness()
        guard case .failure(.noIdentity) = try await harness.machine.vouch(for: alice, fingerprint: "AAAA") else {
            Issue.record("vouched for an unknown user")
            return
        }
        let identity = try TestIdentity(alice)
        let (_, keys) = try device("DEV", of: alice)
        _ = try await judge(identity.answer(devices: ["DEV": keys]), harness: harness)
        guard case .failure(.mismatch) = try await harness.machine.vouch(for: alice, fingerprint: String(identity.master.publicKey.dropLast())) else {
            Issue.record("a truncated fingerprint was accepted")
            return
        }
    }

    @Test("levels: unknown and dehydrated devices, and which policies each level meets")
    func levels() throws {
        let (device, _) = try device("DEV", of: alice)
        var dehydrated = device
        dehydrated.dehydrated = true
        let identity = StoredUserIdentity(
            userID: alice, pinnedMasterKey: "M", masterKey: "M", selfSigningKey: "S", crossSignedDevices: [device.deviceID: device.ed25519])
        #expect(DeviceTrust.of(nil, identity: identity) == .unknownDevice)
        #expect(DeviceTrust.of(dehydrated, identity: identity) == .dehydrated)
        #expect(DeviceTrust.of(device, identity: nil) == .deviceOnly)
        #expect(DeviceTrust.of(device, identity: identity) == .crossSigned)
        var otherKey = identity
        otherKey.crossSignedDevices = [device.deviceID: "another ed25519 key"]
        #expect(DeviceTrust.of(device, identity: otherKey) == .deviceOnly)
        #expect(DeviceTrust.allCases.filter { $0.meets(.crossSigned) } == [.verified, .crossSigned])
        #expect(DeviceTrust.allCases.filter { $0.meets(.verified) } == [.verified])
        #expect(DeviceTrust.allCases.allSatisfy { $0.meets(.all) })
    }
}
