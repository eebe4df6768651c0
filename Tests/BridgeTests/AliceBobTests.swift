import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Olm
import Testing

@Suite("Crypto engine: two machines exchanging real Olm and Megolm traffic")
struct AliceBobTests {
    @Test("first message: query, claim, pre-key Olm room key, Megolm event; the reply rides a normal Olm message")
    func preKeyThenNormal() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let room = try await encryptedRoom("!room", on: hs, members: [alice.user, bob.user])
        try await alice.sync()
        try await bob.sync()

        _ = try await alice.send("hello bob", in: room)
        let received = try await bob.sync()
        #expect(received.toDevice.map(\.type) == ["m.room_key"])
        #expect(received.bodies == ["hello bob"])
        let first = try #require(await hs.sentToDevice.last)
        #expect(first.type == "m.room.encrypted" && first.olmType == 0)

        // Bob answers: his machine reuses the session Alice opened, now as a normal message.
        _ = try await bob.send("hi alice", in: room)
        let answer = try #require(await hs.sentToDevice.last)
        #expect(answer.sender == bob.user && answer.olmType == 1)
        let back = try await alice.sync()
        #expect(back.toDevice.first?.failure == nil)
        // Her own first message comes back too, readable: she keeps an inbound copy of her session.
        #expect(back.bodies == ["hello bob", "hi alice"])

        // Alice's second message reuses the shared session: no new to-device traffic.
        let before = await hs.sentToDevice.count
        _ = try await alice.send("again", in: room)
        #expect(await hs.sentToDevice.count == before)
        #expect(try await bob.sync().bodies == ["hi alice", "again"])
    }

    @Test("a member's new device, announced by a device-list change, gets the key before the next message")
    func newDeviceOfMember() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let room = try await encryptedRoom("!newdevice", on: hs, members: [alice.user, bob.user])
        try await alice.sync()
        try await bob.sync()
        _ = try await alice.send("one", in: room)
        _ = try await alice.send("two", in: room)  // all shared: the quick path
        #expect(try await bob.sync().bodies == ["one", "two"])
        // Bob logs in on a second device (another machine for the same user).
        let laptop = try await Party("bob-laptop", on: hs, users: ["@bob:localhost"])
        try await laptop.sync()
        let change = try await alice.sync()
        #expect(change.changes.trackedUsers[bob.user] == true)
        _ = try await alice.send("three", in: room)
        #expect(try await laptop.sync().bodies.contains("three"))
        #expect(try await bob.sync().bodies == ["three"])
    }

    @Test("a member committed without the machine being told (a COMMIT whose answer was lost) still gets the key: the quick path checks the committed version")
    func lostCommitAnswer() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let room = try await encryptedRoom("!lost", on: hs, members: [alice.user, bob.user])
        try await alice.sync()
        _ = try await alice.send("one", in: room)
        _ = try await alice.send("two", in: room)  // all shared: the quick path from now on
        let carol = try await Party("carol", on: hs, users: ["@carol:localhost"])
        // Carol's join reached the database, but the machine never saw the step that wrote it.
        var behindTheBack = CryptoChanges()
        behindTheBack.memberships = [RoomMembership(roomID: room, userID: carol.user, membership: "join")]
        behindTheBack.trackedUsers = [carol.user: true]
        try await alice.store.save(behindTheBack)
        _ = try await alice.send("three", in: room)
        #expect(try await carol.sync().bodies == ["three"])
    }

    @Test("one machine with many puppets: each device gets the key (sessions created on every core), the session is stored once")
    func manyDevices() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        // More devices than CryptoMachine.parallelSessionThreshold, so the claim is handled in parallel.
        let puppets = try await Party("bridge", on: hs, users: (1...20).map { "@sb_\($0):localhost" })
        let room = try await encryptedRoom("!many", on: hs, members: [alice.user] + puppets.users)
        try await alice.sync()
        try await puppets.sync()
        _ = try await alice.send("to all puppets", in: room)
        if ProcessInfo.processInfo.activeProcessorCount >= 2 {
            #expect(await alice.machine.parallelBatches > 0, "the Olm sessions were not created in parallel")
        }
        let step = try await puppets.sync()
        #expect(step.toDevice.count == 20)
        #expect(step.toDevice.allSatisfy { $0.type == "m.room_key" && $0.failure == nil })
        #expect(step.changes.inboundGroupSessions.count == 1)
        #expect(step.bodies == ["to all puppets"])
    }

    @Test("rotation after rotation_period_msgs messages and after rotation_period_ms; the peer decrypts across rotations")
    func rotation() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let room = try await encryptedRoom("!rot", on: hs, members: [alice.user, bob.user], rotationMessages: 2, rotationMilliseconds: 3_600_000)
        try await alice.sync()
        try await bob.sync()
        var sessions: [String] = []
        for body in ["one", "two", "three"] {
            _ = try await alice.send(body, in: room)
            sessions.append(try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)).sessionID)
        }
        #expect(sessions[0] == sessions[1])
        #expect(sessions[1] != sessions[2])
        // One hour later the session (one message old) rotates by time.
        alice.clock.advance(by: 3601)
        _ = try await alice.send("four", in: room)
        let fourth = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)).sessionID
        #expect(fourth != sessions[2])
        #expect(try await bob.sync().bodies == ["one", "two", "three", "four"])
    }

    @Test("a member who left gets no key for the next session; a member who joined gets the current one")
    func membershipChanges() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let carol = try await Party("carol", on: hs, users: ["@carol:localhost"])
        let room = try await encryptedRoom("!members", on: hs, members: [alice.user, bob.user])
        for party in [alice, bob, carol] { try await party.sync() }
        _ = try await alice.send("before", in: room)
        #expect(try await bob.sync().bodies == ["before"])
        let firstSession = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)).sessionID

        // Bob leaves, Carol joins.
        await hs.sendRoomEvent(room, type: "m.room.member", content: ["membership": "leave"], sender: bob.user, stateKey: bob.user.rawValue)
        await hs.sendRoomEvent(room, type: "m.room.member", content: ["membership": "join"], sender: carol.user, stateKey: carol.user.rawValue)
        try await alice.sync()
        _ = try await alice.send("after", in: room)
        let secondSession = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user))
        #expect(secondSession.sessionID != firstSession)
        #expect(Set(secondSession.shares.map(\.userID)) == [carol.user])

        let bobView = try await bob.sync()
        #expect(bobView.toDevice.isEmpty)
        #expect(bobView.bodies.isEmpty)
        #expect(bobView.parked.count == 1)
        let carolView = try await carol.sync()
        #expect(carolView.bodies == ["after"])
        // Carol's view of the earlier message stays undecryptable: she never had that session.
        #expect(carolView.parked.map(\.sessionID) == [firstSession])
    }

    @Test("a device without one-time or fallback keys gets m.room_key.withheld m.no_olm; its event parks with that reason")
    func withheldNoOlm() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let dave = try await Party("dave", on: hs, users: ["@dave:localhost"])
        let room = try await encryptedRoom("!withheld", on: hs, members: [alice.user, dave.user])
        try await alice.sync()
        try await dave.sync()
        await hs.exhaustKeys(userID: dave.user, deviceID: dave.device)
        _ = try await alice.send("not for dave", in: room)
        let shares = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)).shares
        #expect(shares.map(\.withheldCode) == ["m.no_olm"])
        #expect(shares.map(\.messageIndex) == [nil])
        let view = try await dave.sync()
        #expect(view.toDevice.map(\.type) == ["m.room_key.withheld"])
        #expect(view.bodies.isEmpty)
        guard case .withheld(code: "m.no_olm", _) = view.parked.first?.reason else {
            Issue.record("expected a withheld reason, got \(String(describing: view.parked.first?.reason))")
            return
        }
    }

    @Test("a dehydrated device gets m.unverified instead of the key")
    func dehydratedWithheld() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let erin = try UserID("@erin:localhost"), erinDevice = try DeviceID("DEHYDRATED")
        let account = try Account.create()
        try account.generateOneTimeKeys(count: 1)
        var keys = try KeysUpload.signedDeviceKeys(of: account, userID: erin, deviceID: erinDevice)
        if case .object(var members) = keys {
            members["signatures"] = nil
            members["dehydrated"] = true
            keys = try SignedJSON.sign(.object(members), userID: erin, keyID: "ed25519:DEHYDRATED", with: account)
        }
        let otk = account.unpublishedOneTimeKeys[0]
        let signedOTK = try SignedJSON.sign(["key": .string(otk.publicKey)], userID: erin, keyID: "ed25519:DEHYDRATED", with: account)
        await hs.addForeignDevice(userID: erin, deviceID: erinDevice, keys: keys, oneTimeKeys: [("signed_curve25519:\(otk.keyID)", signedOTK)])
        let room = try await encryptedRoom("!dehydrated", on: hs, members: [alice.user, erin])
        try await alice.sync()
        _ = try await alice.send("hello", in: room)
        let shares = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)).shares
        #expect(shares.map(\.withheldCode) == ["m.unverified"])
        #expect(await hs.sentToDevice.map(\.type) == ["m.room_key.withheld"])
    }

    @Test("a wedged session is replaced with m.dummy (at most once per hour per device) and traffic resumes")
    func wedgedRecovery() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let room = try await encryptedRoom("!wedge", on: hs, members: [alice.user, bob.user], rotationMessages: 1)
        try await alice.sync()
        try await bob.sync()
        _ = try await alice.send("one", in: room)
        let first = try await bob.sync()
        #expect(first.bodies == ["one"])
        // Bob answers once so Alice's session has received a message (her next Olm message is normal, not pre-key).
        _ = try await bob.send("ack", in: room)
        try await alice.sync()
        // Bob loses his Olm session with Alice (a restored backup, a bug): her next room key cannot be read.
        await bob.store.forget(first.changes.olmSessions.map(\.sessionID))
        _ = try await alice.send("two", in: room)
        let wedged = try await bob.sync()
        guard case .wedgedSession = wedged.toDevice.first?.failure else {
            Issue.record("expected a wedged session, got \(String(describing: wedged.toDevice.first?.failure))")
            return
        }
        #expect(wedged.wedged.count == 1)
        let recovery = try #require(await hs.sentToDevice.last)
        #expect(recovery.sender == bob.user && recovery.olmType == 0)
        // Alice takes the m.dummy: the new session becomes her newest, and her next key uses it. Bob's
        // current room key comes again through the new session (the one sent before may be unread).
        let dummy = try await alice.sync()
        #expect(dummy.toDevice.map(\.type) == ["m.dummy", "m.room_key"])
        #expect(dummy.toDevice.allSatisfy { $0.failure == nil })
        let bobSession = try #require(try await bob.store.outboundGroupSession(roomID: room, senderUserID: bob.user)).sessionID
        #expect(try await alice.store.inboundGroupSessions(roomID: room, sessionID: bobSession).count == 1)
        _ = try await alice.send("three", in: room)
        let resumed = try await bob.sync()
        #expect(resumed.toDevice.allSatisfy { $0.failure == nil })
        #expect(resumed.bodies == ["three"])

        // Another wedge within the hour: reported, but no second recovery.
        await bob.store.forget(resumed.changes.olmSessions.map(\.sessionID))
        _ = try await alice.send("four", in: room)
        let again = try await bob.sync()
        #expect(again.toDevice.first?.failure != nil)
        #expect(again.wedged.isEmpty)
    }

    @Test("the homeserver delivers the event before its key: parked, then decrypted when the key arrives")
    func keyAfterEvent() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let room = try await encryptedRoom("!late", on: hs, members: [alice.user, bob.user])
        try await alice.sync()
        try await bob.sync()
        _ = try await alice.send("late key", in: room)
        let early = try await bob.sync(toDevice: false)
        #expect(early.bodies.isEmpty)
        guard case .unknownSession = early.parked.first?.reason else {
            Issue.record("expected unknownSession, got \(String(describing: early.parked.first?.reason))")
            return
        }
        let later = try await bob.sync()
        #expect(later.bodies == ["late key"])
        #expect(later.changes.releasedEvents.count == 1)
    }

    @Test("a replayed event (same session and index, new event id) is rejected")
    func replay() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let room = try await encryptedRoom("!replay", on: hs, members: [alice.user, bob.user])
        try await alice.sync()
        try await bob.sync()
        _ = try await alice.send("once", in: room)
        #expect(try await bob.sync().bodies == ["once"])
        let original = try #require(await hs.timeline.last)
        await hs.sendRoomEvent(room, type: "m.room.encrypted", content: original["content"]!, sender: alice.user)
        let replayed = try await bob.sync()
        guard case .failure(.replay) = replayed.roomEvents.first?.result else {
            Issue.record("expected a replay, got \(String(describing: replayed.roomEvents.first?.result))")
            return
        }
    }

    @Test("an m.forwarded_room_key from a stranger is refused and stores nothing")
    func forwardedKeyRefused() async throws {
        let hs = FakeHomeserver()
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        let mallory = try await Party("mallory", on: hs, users: ["@mallory:localhost"])
        let target = DeviceRef(userID: bob.user, deviceID: bob.device)
        let query = await hs.query([bob.user])
        try await mallory.engine.lock.withLock {
            try await mallory.store.save(try await mallory.machine.receiveKeysQuery(query, users: [bob.user]).changes)
            let claim = await hs.claim(CryptoMachine.keysClaimBody([target]))
            try await mallory.store.save(try await mallory.machine.receiveKeysClaim(claim, requested: [target], sender: mallory.user).changes)
        }
        let planted = try OutboundGroupSession.create()
        let forwarded: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": "!any", "session_id": .string(planted.sessionID),
            "session_key": .string(try InboundGroupSession(sessionKey: planted.sessionKey).export(at: 0)),
            "sender_key": "somebody", "sender_claimed_ed25519_key": "somebody", "forwarding_curve25519_key_chain": [],
        ]
        let (changes, request) = try await mallory.machine.encryptToDevice(sender: mallory.user, to: target, type: "m.forwarded_room_key", content: forwarded)
        try await mallory.store.save(changes)
        await hs.sendToDevice(request, sender: mallory.user)
        let step = try await bob.sync()
        guard case .forwardedKeyRefused = step.toDevice.first?.failure else {
            Issue.record("expected a refusal, got \(String(describing: step.toDevice.first?.failure))")
            return
        }
        #expect(step.changes.inboundGroupSessions.isEmpty)
        #expect(try await bob.store.inboundGroupSessions(roomID: try RoomID("!any"), sessionID: planted.sessionID).isEmpty)
    }

    @Test("keys that change under a known device id are refused; the old keys stay")
    func changedDeviceKeys() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        _ = try await encryptedRoom("!keys", on: hs, members: [alice.user, bob.user])
        try await alice.sync()
        let first = await hs.query([bob.user])
        let outcome = try await alice.machine.receiveKeysQuery(first, users: [bob.user])
        try await alice.store.save(outcome.changes)
        let original = try #require(try await alice.store.devices(userIDs: [bob.user])[bob.user]?.first)

        // A homeserver (or attacker) serves other, validly self-signed keys under the same device id.
        let impostor = try Account.create()
        let forged = try KeysUpload.signedDeviceKeys(of: impostor, userID: bob.user, deviceID: bob.device)
        let second: JSONValue = ["device_keys": [bob.user.rawValue: [bob.device.rawValue: forged]]]
        let refused = try await alice.machine.receiveKeysQuery(second, users: [bob.user])
        #expect(refused.rejected.count == 1)
        try await alice.store.save(refused.changes)
        #expect(try await alice.store.devices(userIDs: [bob.user])[bob.user] == [original])
    }
}

@Suite("Crypto engine: senders without MSC4147")
struct UnknownSenderTests {
    @Test("a room key from a device never queried and without sender_device_keys is accepted after the pipeline queries its owner")
    func queriesUnknownSender() async throws {
        let hs = FakeHomeserver()
        let bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
        // A client built on raw Olm that, like many, does not send sender_device_keys.
        let zoe = try UserID("@zoe:localhost"), zoeDevice = try DeviceID("ZOEPHONE")
        let account = try Account.create()
        await hs.addForeignDevice(
            userID: zoe, deviceID: zoeDevice, keys: try KeysUpload.signedDeviceKeys(of: account, userID: zoe, deviceID: zoeDevice), oneTimeKeys: [])
        let claim = await hs.claim(CryptoMachine.keysClaimBody([DeviceRef(userID: bob.user, deviceID: bob.device)]))
        let otk = try #require(claim["one_time_keys"]?[bob.user.rawValue]?[bob.device.rawValue]?.objectValue?.first?.value["key"]?.stringValue)
        let bobKeys = await hs.query([bob.user])["device_keys"]?[bob.user.rawValue]?[bob.device.rawValue]
        let bobCurve = try #require(bobKeys?["keys"]?["curve25519:\(bob.device.rawValue)"]?.stringValue)
        let bobEd = try #require(bobKeys?["keys"]?["ed25519:\(bob.device.rawValue)"]?.stringValue)
        let session = try Session.outbound(account: account, theirIdentityKey: bobCurve, theirOneTimeKey: otk)
        let group = try OutboundGroupSession.create()
        let payload: JSONValue = [
            "type": "m.room_key", "sender": .string(zoe.rawValue), "recipient": .string(bob.user.rawValue),
            "recipient_keys": ["ed25519": .string(bobEd)], "keys": ["ed25519": .string(account.identityKeys.ed25519)],
            "content": ["algorithm": .string(EncryptionAlgorithm.megolm), "room_id": "!zoe", "session_id": .string(group.sessionID),
                        "session_key": .string(group.sessionKey)],
        ]
        let message = try session.encrypt(payload.serialized())
        let content: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(account.identityKeys.curve25519),
            "ciphertext": [.init(stringLiteral: bobCurve): ["type": .integer(Int64(message.kind.rawValue)), "body": .string(message.ciphertext)]],
        ]
        await hs.sendToDevice(ToDeviceRequest(eventType: "m.room.encrypted", messages: [bob.user: [bob.device: content]]), sender: zoe)
        let step = try await bob.sync()
        // Decrypted in the transaction, kept waiting (no network inside it); acted on once the
        // follow-up fetched Zoe's devices after the commit.
        #expect(step.toDevice.map(\.type) == ["m.room_key", "m.room_key"])
        #expect(step.toDevice.first?.pending == true)
        #expect(step.toDevice.last?.failure == nil && step.toDevice.last?.pending == false)
        #expect(try await bob.store.devices(userIDs: [zoe])[zoe]?.map(\.deviceID) == [zoeDevice])
        #expect(try await bob.store.pendingToDevice(senders: [zoe]).isEmpty)
        #expect(try await bob.store.inboundGroupSessions(roomID: try RoomID("!zoe"), sessionID: group.sessionID).count == 1)
    }
}

@Suite("A failed claim is not a share")
struct FailedClaimTests {
    @Test("a device that got m.no_olm is tried again after its backoff (1 min, doubling) and then gets the key; until then it is not claimed again")
    func retriedAfterBackoff() async throws {
        let hs = FakeHomeserver()
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let dave = try await Party("dave", on: hs, users: ["@dave:localhost"])
        let room = try await encryptedRoom("!retry", on: hs, members: [alice.user, dave.user])
        try await alice.sync()
        try await dave.sync()
        await hs.exhaustKeys(userID: dave.user, deviceID: dave.device)
        _ = try await alice.send("first", in: room)
        var share = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)?.shares.first)
        #expect(share.withheldCode == "m.no_olm" && share.failedClaims == 1)
        #expect(share.retryAfter.map { $0.timeIntervalSince(alice.clock.now) } ?? 0 > 55)

        // A second failure before the backoff is over: not even tried (the device is not claimed again).
        _ = try await alice.send("second", in: room)
        #expect(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)?.shares.first?.failedClaims == 1)

        // Past the backoff, still no key: the second failure doubles the wait.
        alice.clock.advance(by: 61)
        _ = try await alice.send("third", in: room)
        share = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)?.shares.first)
        #expect(share.withheldCode == "m.no_olm" && share.failedClaims == 2)
        #expect(share.retryAfter.map { $0.timeIntervalSince(alice.clock.now) } ?? 0 > 115)

        // Dave's device has keys again; past the backoff, the next message reaches him.
        try await dave.engine.checkOneTimeKeys(DeviceRef(userID: dave.user, deviceID: dave.device))
        alice.clock.advance(by: 121)
        _ = try await alice.send("fourth", in: room)
        share = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)?.shares.first)
        #expect(share.withheldCode == nil && share.messageIndex != nil)
        #expect(try await dave.sync().bodies == ["fourth"])
    }
}
