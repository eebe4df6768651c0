@testable import Bridge
import Foundation
@testable import MatrixCrypto
import MatrixModels
import Testing

@Suite("Key requests: asking the sender for a key that never came, and taking only its answer")
struct KeyRequestAskTests {
    /// Alice (a Sealbridge that answers) sends in a room with Bob and Carol; Bob's copy of the room
    /// key is lost on the way, so Bob's event waits.
    struct Setup {
        let hs = FakeHomeserver()
        let alice: Party, bob: Party, carol: Party
        let room: RoomID
        let sessionID: String
        let eventID: EventID

        init(bobSettings: CryptoSettings = CryptoSettings()) async throws {
            alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
            bob = try await Party("bob", on: hs, users: ["@bob:localhost"], settings: bobSettings)
            carol = try await Party("carol", on: hs, users: ["@carol:localhost"])
            room = try await encryptedRoom("!ask", on: hs, members: [alice.user, bob.user, carol.user])
            for party in [alice, bob, carol] { try await party.sync() }
            eventID = try await alice.send("lost on the way", in: room)
            _ = await hs.drain(party: "bob", devices: [(bob.user, bob.device)])  // the m.room_key to Bob is lost
            let parked = try await bob.sync()
            #expect(parked.parked.count == 1 && parked.roomEvents.isEmpty)
            #expect(try await carol.sync().bodies == ["lost on the way"])
            sessionID = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)).sessionID
        }

        /// Bob's undecryptable round, as if the event had waited long enough.
        func bobAsks(later: TimeInterval = 0) async throws -> Int {
            try await bob.engine.requestRoomKeys(waitingLongerThan: 10, now: Date().addingTimeInterval(11 + later))
        }
    }

    @Test("after the wait Bob asks Alice's device; Alice answers; the event is delivered decrypted, marked forwarded; the request is withdrawn")
    func askedAndAnswered() async throws {
        let setup = try await Setup()
        #expect(try await setup.bob.engine.requestRoomKeys(waitingLongerThan: 10, now: Date()) == 0)  // not waited long enough
        #expect(try await setup.bobAsks() == 1)
        let asked = try #require(await setup.hs.sentToDevice.last)
        #expect(asked.type == "m.room_key_request" && asked.sender == setup.bob.user)
        #expect(asked.to == DeviceRef(userID: setup.alice.user, deviceID: setup.alice.device))
        let outstanding = try await setup.bob.store.outgoingKeyRequests(sessionIDs: [setup.sessionID])
        #expect(outstanding.count == 1 && outstanding.first?.recipients == [DeviceRef(userID: setup.alice.user, deviceID: setup.alice.device)])
        // Asked once: the next round does not ask again (per session), until the re-ask interval.
        #expect(try await setup.bobAsks() == 0)

        let request = try #require(try await setup.alice.sync().keyRequests.first)
        #expect(try await setup.alice.engine.answer(request) == nil)
        let answered = try await setup.bob.sync()
        #expect(answered.toDevice.map(\.type) == ["m.forwarded_room_key"] && answered.toDevice.allSatisfy { $0.failure == nil })
        let event = try #require(answered.roomEvents.first)
        #expect(answered.bodies == ["lost on the way"] && event.eventID == setup.eventID)
        #expect(event.forwardedKey && event.trust != nil)
        #expect(answered.changes.releasedEvents == [setup.eventID.rawValue])
        // Metrics: recovered through a key request, after the time it waited.
        guard case .recovered(let path, let after)? = RecoveryMetrics.observations(answered).first else {
            Issue.record("no recovery observed")
            return
        }
        #expect(path == "key_request" && (after ?? -1) >= 0)
        let claim = try #require(try await setup.bob.store.inboundGroupSessions(roomID: setup.room, sessionID: setup.sessionID).first)
        #expect(claim.forwarded && claim.senderUserID == setup.alice.user && claim.firstKnownIndex == 0)

        try await setup.bob.engine.settleKeyRequests([setup.sessionID])
        #expect(try await setup.bob.store.outgoingKeyRequests(sessionIDs: [setup.sessionID]).isEmpty)
        let cancel = try #require(await setup.hs.sentToDevice.last)
        #expect(cancel.type == "m.room_key_request" && cancel.sender == setup.bob.user)
        // A second forward for the settled session is refused: nothing outstanding.
        setup.alice.clock.advance(by: 61)
        #expect(try await setup.alice.engine.answer(request) == nil)
        #expect(try await setup.bob.sync().toDevice.first?.failure?.code == "forwarded_key_refused")
    }

    @Test("the answer starts at the index the asking device was given, never earlier: a member who joined later cannot read what came before")
    func neverEarlier() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let room = try await encryptedRoom("!later", on: hs, members: [alice.user, bob.user])
        try await alice.sync()
        try await bob.sync()
        _ = try await alice.send("before dave", in: room)
        let dave = try await Party("dave", on: hs, users: ["@dave:localhost"])
        await hs.sendRoomEvent(room, type: "m.room.member", content: ["membership": "join"], sender: dave.user, stateKey: dave.user.rawValue)
        try await alice.sync()
        _ = try await alice.send("after dave", in: room)
        _ = await hs.drain(party: "dave", devices: [(dave.user, dave.device)])  // Dave's m.room_key (index 1) is lost
        #expect(try await dave.sync().parked.count == 2)
        #expect(try await dave.engine.requestRoomKeys(waitingLongerThan: 10, now: Date().addingTimeInterval(11)) == 1)
        let request = try #require(try await alice.sync().keyRequests.first)
        #expect(try await alice.engine.answer(request) == nil)
        let answered = try await dave.sync()
        #expect(answered.bodies == ["after dave"])
        let sessionID = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)).sessionID
        #expect(try await dave.store.inboundGroupSessions(roomID: room, sessionID: sessionID).first?.firstKnownIndex == 1)
        #expect(try await dave.store.recentParkedEvents(roomID: room, limit: 10).count == 1)  // "before dave" stays unreadable
    }

    @Test("a forwarded key from anyone but the session's sender is refused, even for a session Bob asked for")
    func otherForwarderRefused() async throws {
        let setup = try await Setup()
        #expect(try await setup.bobAsks() == 1)
        // Carol has Alice's key and an Olm session with Bob (from a message of hers), and forwards it unasked.
        _ = try await setup.carol.send("hi", in: setup.room)
        _ = try await setup.bob.sync()
        let content: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(setup.room.rawValue), "session_id": .string(setup.sessionID),
            "session_key": "AQAAAAAA", "sender_key": "doesnotmatter", "sender_claimed_ed25519_key": "x", "forwarding_curve25519_key_chain": [],
        ]
        let (changes, request) = try await setup.carol.machine.encryptToDevice(
            sender: setup.carol.user, to: DeviceRef(userID: setup.bob.user, deviceID: setup.bob.device), type: "m.forwarded_room_key", content: content)
        try await setup.carol.store.save(changes)
        await setup.hs.sendToDevice(request, sender: setup.carol.user)
        let refused = try await setup.bob.sync()
        #expect(refused.toDevice.map(\.type) == ["m.forwarded_room_key"])
        #expect(refused.toDevice.first?.failure == .forwardedKeyRefused("from @carol:localhost: not the session's sender"))
        #expect(refused.roomEvents.isEmpty)
        #expect(try await setup.bob.store.inboundGroupSessions(roomID: setup.room, sessionID: setup.sessionID).isEmpty)
    }

    @Test("each device is asked for a bounded number of sessions a minute; the rest waits for the next round")
    func perDeviceLimit() async throws {
        var settings = CryptoSettings()
        settings.keyRequestsPerDevicePerMinute = 1
        let setup = try await Setup(bobSettings: settings)
        // A second session of Alice's whose key Bob also misses.
        try await setup.alice.engine.rotate(roomID: setup.room, sender: setup.alice.user)
        _ = try await setup.alice.send("also lost", in: setup.room)
        _ = await setup.hs.drain(party: "bob", devices: [(setup.bob.user, setup.bob.device)])
        #expect(try await setup.bob.sync().parked.count == 1)
        #expect(try await setup.bobAsks() == 1)
        #expect(try await setup.bobAsks() == 0)
        setup.bob.clock.advance(by: 61)
        #expect(try await setup.bobAsks(later: 61) == 1)
    }

    @Test("events of local senders (whose sessions Sealbridge created) are never asked for")
    func localSenders() async throws {
        let setup = try await Setup()
        // Alice's own event comes back to her and decrypts: she keeps an inbound copy of her session.
        let echo = try await setup.alice.sync()
        #expect(echo.bodies == ["lost on the way"] && echo.parked.isEmpty)
        // One that waits all the same (its copy lost, or from before copies were kept) is not asked for.
        var changes = CryptoChanges()
        changes.parkedEvents = try await setup.bob.store.recentParkedEvents(roomID: setup.room, limit: 10)
        #expect(changes.parkedEvents.map(\.sender) == [setup.alice.user])
        try await setup.alice.store.save(changes)
        let before = await setup.hs.sentToDevice.count
        #expect(try await setup.alice.engine.requestRoomKeys(waitingLongerThan: 10, now: Date().addingTimeInterval(11)) == 0)
        #expect(await setup.hs.sentToDevice.count == before)
    }

    @Test("request ROOM SESSION asks again by hand; a session no event waits for is not asked for")
    func manual() async throws {
        let setup = try await Setup()
        #expect(try await setup.bob.engine.requestRoomKey(roomID: setup.room, sessionID: setup.sessionID))
        #expect(try await setup.bob.engine.requestRoomKey(roomID: setup.room, sessionID: String(repeating: "Q", count: 43)) == false)
        #expect(try await setup.bob.store.outgoingKeyRequests(sessionIDs: [setup.sessionID]).count == 1)
    }

    @Test("metrics: undecryptable reasons stay a bounded set (a sender's withheld code is not a label); a late key is its own path")
    func metricLabels() throws {
        let room = try RoomID("!m"), sender = try UserID("@s:hs")
        var step = CryptoStep()
        for (index, failure) in [
            DecryptionFailure.withheld(code: "m.unverified", reason: nil), .withheld(code: "x-\(UUID())", reason: nil), .unknownSession(sessionID: "S"),
        ].enumerated() {
            step.roomEvents.append(RoomEventOutcome(eventID: try EventID("$f\(index)"), roomID: room, sender: sender, result: .failure(failure)))
        }
        var late = RoomEventOutcome(
            eventID: try EventID("$late"), roomID: room, sender: sender,
            result: .success(MegolmDecryption.Decrypted(type: "m.room.message", content: [:], sessionID: "S", messageIndex: 0)))
        late.parkedAt = Date(timeIntervalSince1970: 1_000)
        step.roomEvents.append(late)
        var fresh = late
        fresh.eventID = try EventID("$fresh")  // decrypted at once: no recovery
        step.roomEvents.append(fresh)
        step.changes.releasedEvents = ["$late"]
        #expect(RecoveryMetrics.observations(step, now: Date(timeIntervalSince1970: 1_030)) == [
            .undecryptable(reason: "withheld:m.unverified"), .undecryptable(reason: "withheld:other"), .undecryptable(reason: "unknown_session"),
            .recovered(path: "late_key", after: 30),
        ])
    }
}
