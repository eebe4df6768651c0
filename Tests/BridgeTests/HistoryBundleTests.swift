@testable import Bridge
import Foundation
@testable import MatrixCrypto
import MatrixModels
import Olm
import Testing

@Suite("History bundles (MSC4268): the inviter's keys for what was said before the invite")
struct HistoryBundleTests {
    /// Alice and Carol talk in `history` (encrypted with a Megolm session `group` Bob never got: its
    /// two events wait, parked, at Bob's); all three share `other`, so Olm sessions exist between them.
    struct Setup {
        let hs = FakeHomeserver()
        let alice: Party, bob: Party, carol: Party
        let history: RoomID
        let group: OutboundGroupSession
        let initialKey: String
        let aliceCurve: String, aliceEd25519: String
        var events: [EventID] = []

        init() async throws {
            alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
            bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
            carol = try await Party("carol", on: hs, users: ["@carol:localhost"])
            let other = try await encryptedRoom("!other", on: hs, members: [alice.user, bob.user, carol.user])
            for party in [alice, bob, carol] { try await party.sync() }
            _ = try await alice.send("hello", in: other)
            _ = try await carol.send("hi", in: other)
            #expect(try await bob.sync().bodies == ["hello", "hi"])
            _ = try await bob.send("bob here", in: other)  // Bob fetches Alice's and Carol's devices
            try await bob.sync()
            try await alice.sync()
            try await carol.sync()

            history = try await encryptedRoom("!history", on: hs, members: [alice.user, carol.user])
            let keys = await hs.query([alice.user])["device_keys"]?[alice.user.rawValue]?[alice.device.rawValue]?["keys"]
            aliceCurve = try #require(keys?["curve25519:\(alice.device.rawValue)"]?.stringValue)
            aliceEd25519 = try #require(keys?["ed25519:\(alice.device.rawValue)"]?.stringValue)
            group = try OutboundGroupSession.create()
            initialKey = group.sessionKey
            for body in ["before the invite", "still before"] { events.append(try await postMegolm(body)) }
            let parked = try await bob.sync()
            #expect(parked.parked.count == 2 && parked.roomEvents.isEmpty)
        }

        /// An event of Alice's encrypted with `group`, put on the timeline as her client would.
        func postMegolm(_ body: String) async throws -> EventID {
            let plaintext: JSONValue = ["type": "m.room.message", "content": ["msgtype": "m.text", "body": .string(body)], "room_id": .string(history.rawValue)]
            let ciphertext = try group.encrypt(plaintext.serialized())
            let content: JSONValue = [
                "algorithm": .string(EncryptionAlgorithm.megolm), "sender_key": .string(aliceCurve), "ciphertext": .string(ciphertext),
                "session_id": .string(group.sessionID), "device_id": .string(alice.device.rawValue),
            ]
            return await hs.sendRoomEvent(history, type: "m.room.encrypted", content: content, sender: alice.user)
        }

        func invite(_ user: UserID, by inviter: UserID) async {
            await hs.sendRoomEvent(history, type: "m.room.member", content: ["membership": "invite"], sender: inviter, stateKey: user.rawValue)
        }

        /// `group` exported at index 0, as a bundle's `room_keys` entry.
        func entry(room: RoomID? = nil) throws -> JSONValue {
            [
                "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string((room ?? history).rawValue), "sender_key": .string(aliceCurve),
                "sender_claimed_keys": ["ed25519": .string(aliceEd25519)], "session_id": .string(group.sessionID),
                "session_key": .string(try InboundGroupSession(sessionKey: initialKey).export(at: 0)),
            ]
        }

        /// Uploads `bundle` encrypted and sends its pointer from `sender` to Bob over Olm.
        func sendBundle(_ bundle: JSONValue, from sender: Party, type: String = "m.room_key_bundle", tamper: ((inout EncryptedFile) -> Void)? = nil) async throws {
            var (file, ciphertext) = try EncryptedFile.encrypt(bundle.serialized(), url: try MediaURI("mxc://localhost/none"))
            file.url = try MediaURI(await hs.uploadMedia(ciphertext))
            tamper?(&file)
            let content: JSONValue = ["room_id": .string(history.rawValue), "file": file.json]
            let (changes, request) = try await sender.machine.encryptToDevice(
                sender: sender.user, to: DeviceRef(userID: bob.user, deviceID: bob.device), type: type, content: content)
            try await sender.store.save(changes)
            await hs.sendToDevice(request, sender: sender.user)
        }

        /// The outcomes of Bob's import round.
        func bobImports(maxBytes: Int = HistoryBundle.maxBytes) async throws -> (outcomes: [HistoryBundleOutcome], step: CryptoStep) {
            var merged = CryptoStep()
            for step in try await bob.engine.importHistoryBundles(maxBytes: maxBytes) {
                merged.historyBundles += step.historyBundles
                merged.roomEvents += step.roomEvents
                merged.changes.merge(step.changes)
            }
            return (merged.historyBundles, merged)
        }
    }

    @Test("the inviter's bundle imports the room's sessions: the waiting events are delivered, marked from_bundle, recovered by the bundle path")
    func imported() async throws {
        let setup = try await Setup()
        await setup.invite(setup.bob.user, by: setup.alice.user)
        try await setup.sendBundle(["room_keys": [try setup.entry()], "withheld": []], from: setup.alice)
        let received = try await setup.bob.sync()
        #expect(received.toDevice.map(\.type) == ["m.room_key_bundle"] && received.toDevice.allSatisfy { $0.failure == nil })
        #expect(received.changes.historyBundles.count == 1 && received.changes.roomInvites.map(\.inviter) == [setup.alice.user])

        let (outcomes, step) = try await setup.bobImports()
        #expect(outcomes.map(\.label) == ["imported"] && outcomes.first?.imported == 1 && outcomes.first?.skipped.isEmpty == true)
        #expect(step.bodies == ["before the invite", "still before"])
        #expect(step.roomEvents.allSatisfy { $0.bundleSender == setup.alice.user && $0.trust == .deviceOnly })
        #expect(Set(step.changes.releasedEvents) == Set(setup.events.map(\.rawValue)))
        let paths = RecoveryMetrics.observations(step).compactMap { if case .recovered(let path, _) = $0 { path } else { nil } }
        #expect(paths == ["bundle", "bundle"])
        let claim = try #require(try await setup.bob.store.inboundGroupSessions(roomID: setup.history, sessionID: setup.group.sessionID).first)
        #expect(claim.bundleSender == BundleSender(userID: setup.alice.user, curve25519: setup.aliceCurve))
        #expect(claim.senderUserID == setup.alice.user && claim.firstKnownIndex == 0 && !claim.forwarded)
        // Delivered with the marker and who vouched for the key.
        let deliveries = Delivery.collect(events: [], step: step, users: LocalUsers(bot: setup.bob.user, puppetNamespaceRegex: "@sealbridge_.*:localhost"))
        #expect(deliveries.count == 2)
        #expect(deliveries.allSatisfy { $0.json["encryption"]?["from_bundle"] == true && $0.json["encryption"]?["bundle_sender"]?.stringValue == "@alice:localhost" })
        // Released: a second round has nothing to do.
        #expect(try await setup.bobImports().outcomes.isEmpty)
    }

    @Test("the unstable type io.element.msc4268.room_key_bundle is taken too")
    func unstableType() async throws {
        let setup = try await Setup()
        await setup.invite(setup.bob.user, by: setup.alice.user)
        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice, type: "io.element.msc4268.room_key_bundle")
        try await setup.bob.sync()
        #expect(try await setup.bobImports().step.bodies.count == 2)
    }

    @Test("a bundle from anyone but the inviter is refused: nothing imported, the events keep waiting")
    func notInviter() async throws {
        let setup = try await Setup()
        await setup.invite(setup.bob.user, by: setup.alice.user)
        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.carol)
        try await setup.bob.sync()
        let (outcomes, step) = try await setup.bobImports()
        #expect(outcomes.map(\.label) == ["not_inviter"] && outcomes.first?.sender == setup.carol.user)
        #expect(step.roomEvents.isEmpty)
        #expect(try await setup.bob.store.inboundGroupSessions(roomID: setup.history, sessionID: setup.group.sessionID).isEmpty)
        #expect(try await setup.bob.store.recentParkedEvents(roomID: setup.history, limit: 10).count == 2)
        #expect(try await setup.bobImports().outcomes.isEmpty)  // released
    }

    @Test("a bundle that arrives before the invite waits for it; one whose invite never comes expires after a day")
    func waitsForTheInvite() async throws {
        let setup = try await Setup()
        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice)
        try await setup.bob.sync()
        #expect(try await setup.bobImports().outcomes.isEmpty)
        #expect(try await setup.bob.store.historyBundles(receivedBefore: .distantFuture, limit: 10).count == 1)
        await setup.invite(setup.bob.user, by: setup.alice.user)
        try await setup.bob.sync()
        #expect(try await setup.bobImports().step.bodies.count == 2)

        let late = try await Setup()
        try await late.sendBundle(["room_keys": [try late.entry()]], from: late.alice)
        try await late.bob.sync()
        late.bob.clock.advance(by: CryptoMachine.historyBundleWindow + 1)
        #expect(try await late.bobImports().outcomes.map(\.label) == ["expired"])
        #expect(try await late.bob.store.historyBundles(receivedBefore: .distantFuture, limit: 10).isEmpty)
    }

    @Test("hostile entries are skipped and counted one by one; the good one still imports")
    func hostileEntries() async throws {
        let setup = try await Setup()
        await setup.invite(setup.bob.user, by: setup.alice.user)
        var badKey = try setup.entry().objectValue!
        badKey["session_key"] = "AAAA"
        var nul = try setup.entry().objectValue!
        nul["session_id"] = .string(setup.group.sessionID + "\u{0}")
        var badSender = try setup.entry().objectValue!
        badSender["sender_key"] = 42
        var lyingEd = try setup.entry().objectValue!
        lyingEd["sender_claimed_keys"] = ["ed25519": .string(setup.aliceCurve)]  // not the ed25519 key of Alice's known device
        let other = try OutboundGroupSession.create()
        var wrongSession = try setup.entry().objectValue!
        wrongSession["session_key"] = .string(try InboundGroupSession(sessionKey: other.sessionKey).export(at: 0))  // another session's key
        let bundle: JSONValue = [
            "room_keys": [
                .object(badKey), .object(nul), .object(badSender), .object(wrongSession), .object(lyingEd), "not an object", 7,
                try setup.entry(room: try RoomID("!elsewhere")), try setup.entry(),
            ],
            "withheld": ["junk", ["room_id": .string(setup.history.rawValue)]],
        ]
        try await setup.sendBundle(bundle, from: setup.alice)
        try await setup.bob.sync()
        let (outcomes, step) = try await setup.bobImports()
        let outcome = try #require(outcomes.first)
        #expect(outcome.label == "imported" && outcome.imported == 1)
        #expect(outcome.skipped == ["malformed": 6, "other_room": 1, "unknown_owner": 1])
        #expect(step.bodies.count == 2)
    }

    @Test("at most HistoryBundle.maxEntries entries are read; the rest are counted too_many")
    func tooMany() async throws {
        let setup = try await Setup()
        await setup.invite(setup.bob.user, by: setup.alice.user)
        let filler = [JSONValue](repeating: 0, count: HistoryBundle.maxEntries)
        try await setup.sendBundle(["room_keys": .array(filler + [try setup.entry()])], from: setup.alice)
        try await setup.bob.sync()
        let outcome = try #require(try await setup.bobImports().outcomes.first)
        #expect(outcome.imported == 0 && outcome.skipped == ["malformed": HistoryBundle.maxEntries, "too_many": 1])
    }

    @Test("a wrong sha256, missing media and an oversized file are each refused and released, without blocking the others")
    func badFiles() async throws {
        let setup = try await Setup()
        await setup.invite(setup.bob.user, by: setup.alice.user)
        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice) { $0.sha256[0] ^= 1 }
        try await setup.bob.sync()
        #expect(try await setup.bobImports().outcomes.map(\.label) == ["hash_mismatch"])

        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice) { $0.url = try! MediaURI("mxc://localhost/missing") }
        try await setup.bob.sync()
        #expect(try await setup.bobImports().outcomes.map(\.label) == ["download_failed"])

        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice)
        try await setup.bob.sync()
        #expect(try await setup.bobImports(maxBytes: 16).outcomes.map(\.label) == ["too_large"])

        let notJSON: JSONValue = "just a string"
        try await setup.sendBundle(notJSON, from: setup.alice)
        try await setup.bob.sync()
        #expect(try await setup.bobImports().outcomes.map(\.label) == ["malformed"])
        #expect(try await setup.bob.store.recentParkedEvents(roomID: setup.history, limit: 10).count == 2)

        // A good one afterwards still imports.
        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice)
        try await setup.bob.sync()
        #expect(try await setup.bobImports().step.bodies.count == 2)
    }

    @Test("a pointer with a broken file description is refused at once (counted as a failed to-device message)")
    func brokenPointer() async throws {
        let setup = try await Setup()
        try await setup.sendBundle(["room_keys": []], from: setup.alice) { $0.iv = [1, 2, 3] }
        let step = try await setup.bob.sync()
        #expect(step.toDevice.first?.failure?.code == "malformed" && step.changes.historyBundles.isEmpty)
    }

    @Test("a session already held from an equal or earlier index directly is kept, not replaced by the bundle's copy")
    func keepsOurs() async throws {
        let setup = try await Setup()
        let direct: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(setup.history.rawValue), "session_id": .string(setup.group.sessionID),
            "session_key": .string(setup.initialKey),
        ]
        let (changes, request) = try await setup.alice.machine.encryptToDevice(
            sender: setup.alice.user, to: DeviceRef(userID: setup.bob.user, deviceID: setup.bob.device), type: "m.room_key", content: direct)
        try await setup.alice.store.save(changes)
        await setup.hs.sendToDevice(request, sender: setup.alice.user)
        #expect(try await setup.bob.sync().bodies.count == 2)
        await setup.invite(setup.bob.user, by: setup.alice.user)
        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice)
        try await setup.bob.sync()
        let outcome = try #require(try await setup.bobImports().outcomes.first)
        #expect(outcome.imported == 0 && outcome.skipped == ["kept_ours": 1])
        let claim = try #require(try await setup.bob.store.inboundGroupSessions(roomID: setup.history, sessionID: setup.group.sessionID).first)
        #expect(claim.bundleSender == nil)
    }

    @Test("the sender's own room key from the same index replaces the bundled copy: later events carry no bundle marker")
    func directKeyReplacesBundle() async throws {
        let setup = try await Setup()
        await setup.invite(setup.bob.user, by: setup.alice.user)
        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice)
        try await setup.bob.sync()
        #expect(try await setup.bobImports().step.roomEvents.allSatisfy { $0.bundleSender == setup.alice.user })
        // Alice's client shares the session with Bob directly after all (from index 0, as exported).
        let direct: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(setup.history.rawValue), "session_id": .string(setup.group.sessionID),
            "session_key": .string(setup.initialKey),
        ]
        let (changes, request) = try await setup.alice.machine.encryptToDevice(
            sender: setup.alice.user, to: DeviceRef(userID: setup.bob.user, deviceID: setup.bob.device), type: "m.room_key", content: direct)
        try await setup.alice.store.save(changes)
        await setup.hs.sendToDevice(request, sender: setup.alice.user)
        try await setup.bob.sync()
        let claim = try #require(try await setup.bob.store.inboundGroupSessions(roomID: setup.history, sessionID: setup.group.sessionID).first)
        #expect(claim.bundleSender == nil && claim.firstKnownIndex == 0)
        _ = try await setup.postMegolm("after the direct key")
        let after = try await setup.bob.sync()
        #expect(after.bodies == ["after the direct key"])
        #expect(after.roomEvents.allSatisfy { $0.bundleSender == nil })
    }

    @Test("a third member's session in the inviter's bundle is that member's claim, trusted no more than the inviter's device")
    func thirdPartySessionCapped() async throws {
        let setup = try await Setup()
        let keys = await setup.hs.query([setup.carol.user])["device_keys"]?[setup.carol.user.rawValue]?[setup.carol.device.rawValue]?["keys"]
        let carolCurve = try #require(keys?["curve25519:\(setup.carol.device.rawValue)"]?.stringValue)
        let carolEd = try #require(keys?["ed25519:\(setup.carol.device.rawValue)"]?.stringValue)
        let carols = try OutboundGroupSession.create()
        let carolsKey = carols.sessionKey
        let plaintext: JSONValue = ["type": "m.room.message", "content": ["body": "carol, before"], "room_id": .string(setup.history.rawValue)]
        let content: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "sender_key": .string(carolCurve), "ciphertext": .string(try carols.encrypt(plaintext.serialized())),
            "session_id": .string(carols.sessionID), "device_id": .string(setup.carol.device.rawValue),
        ]
        await setup.hs.sendRoomEvent(setup.history, type: "m.room.encrypted", content: content, sender: setup.carol.user)
        #expect(try await setup.bob.sync().parked.count == 1)
        await setup.invite(setup.bob.user, by: setup.alice.user)
        let entry: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(setup.history.rawValue), "sender_key": .string(carolCurve),
            "sender_claimed_keys": ["ed25519": .string(carolEd)], "session_id": .string(carols.sessionID),
            "session_key": .string(try InboundGroupSession(sessionKey: carolsKey).export(at: 0)),
        ]
        try await setup.sendBundle(["room_keys": [entry]], from: setup.alice)
        try await setup.bob.sync()
        // Alice's device is gone when Bob fetches her devices before the import: her word is worth unknown_device.
        await setup.hs.delete(setup.alice.device, of: setup.alice.user)
        let step = try await setup.bobImports().step
        let event = try #require(step.roomEvents.first)
        #expect(step.bodies == ["carol, before"] && event.sender == setup.carol.user && event.bundleSender == setup.alice.user)
        #expect(event.trust == .unknownDevice)  // Carol's own device is device_only
        let claim = try #require(try await setup.bob.store.inboundGroupSessions(roomID: setup.history, sessionID: carols.sessionID).first)
        #expect(claim.senderUserID == setup.carol.user && claim.senderKey == carolCurve && claim.senderEd25519 == carolEd)
    }

    @Test("a key request outstanding for a session the bundle brought is withdrawn")
    func settlesKeyRequests() async throws {
        let setup = try await Setup()
        await setup.hs.sendRoomEvent(setup.history, type: "m.room.member", content: ["membership": "join"], sender: setup.bob.user, stateKey: setup.bob.user.rawValue)
        try await setup.bob.sync()
        #expect(try await setup.bob.engine.requestRoomKeys(waitingLongerThan: 10, now: Date().addingTimeInterval(11)) == 1)
        #expect(try await setup.bob.store.outgoingKeyRequests(sessionIDs: [setup.group.sessionID]).count == 1)
        await setup.invite(setup.bob.user, by: setup.alice.user)
        try await setup.sendBundle(["room_keys": [try setup.entry()]], from: setup.alice)
        try await setup.bob.sync()
        #expect(try await setup.bobImports().step.bodies.count == 2)
        #expect(try await setup.bob.store.outgoingKeyRequests(sessionIDs: [setup.group.sessionID]).isEmpty)
    }

    @Test("trust of bundled sessions is capped at the inviter device's")
    func trustCap() {
        #expect(DeviceTrust.verified.capped(at: .deviceOnly) == .deviceOnly)
        #expect(DeviceTrust.deviceOnly.capped(at: .verified) == .deviceOnly)
        #expect(DeviceTrust.crossSigned.capped(at: .identityChanged) == .identityChanged)
        #expect(DeviceTrust.crossSigned.capped(at: .unknownDevice) == .unknownDevice)
        for level in DeviceTrust.allCases { #expect(level.capped(at: .dehydrated) == .dehydrated) }
    }
}
