import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Testing

@Suite("Key requests: answering a device that lost a room key of ours, and nobody else")
struct KeyRequestAnswerTests {
    /// Alice (Sealbridge) and Bob share an encrypted room; Alice's first message gives Bob the key.
    /// Eve has a device but is not in the room.
    struct Setup {
        let hs = FakeHomeserver()
        let alice: Party, bob: Party, eve: Party
        let room: RoomID
        let sessionID: String

        init(settings: CryptoSettings = CryptoSettings()) async throws {
            alice = try await Party("alice", on: hs, users: ["@alice:localhost"], settings: settings)
            bob = try await Party("bob", on: hs, users: ["@bob:localhost"])
            eve = try await Party("eve", on: hs, users: ["@eve:localhost"])
            room = try await encryptedRoom("!keys", on: hs, members: [alice.user, bob.user])
            try await alice.sync()
            try await bob.sync()
            try await eve.sync()
            _ = try await alice.send("one", in: room)
            #expect(try await bob.sync().bodies == ["one"])
            sessionID = try #require(try await alice.store.outboundGroupSession(roomID: room, senderUserID: alice.user)).sessionID
        }

        /// The request body a client sends, as a plaintext to-device message from `from` to Alice's device.
        func body(room: RoomID? = nil, session: String? = nil, senderKey: String? = nil) async throws -> JSONValue {
            var body: [String: JSONValue] = [
                "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string((room ?? self.room).rawValue),
                "session_id": .string(session ?? sessionID),
            ]
            if let senderKey { body["sender_key"] = .string(senderKey) }
            return .object(body)
        }

        func request(
            from: Party, to: Party? = nil, action: String = "request", body: JSONValue? = nil, requestID: String = "r1"
        ) async throws -> JSONValue {
            var content: [String: JSONValue] = [
                "action": .string(action), "requesting_device_id": .string(from.device.rawValue), "request_id": .string(requestID),
            ]
            if action == "request" {
                if let body { content["body"] = body } else { content["body"] = try await self.body() }
            }
            return .object(content)
        }

        /// Delivers `contents` from `from` to `to` (Alice by default) in one transaction; returns the requests it took.
        func deliver(_ contents: [JSONValue], from: Party, to: Party? = nil) async throws -> CryptoStep {
            let target = to ?? alice
            for content in contents {
                await hs.sendToDevice(
                    ToDeviceRequest(eventType: "m.room_key_request", messages: [target.user: [target.device: content]]), sender: from.user)
            }
            return try await target.sync()
        }

        func ask(from: Party, to: Party? = nil, body: JSONValue? = nil) async throws -> KeyRequestRefusal? {
            let step = try await deliver([try await request(from: from, body: body)], from: from, to: to)
            let request = try #require(step.keyRequests.first)
            return try await (to ?? alice).engine.answer(request)
        }
    }

    @Test("a device that was given the key gets it again, Olm-encrypted as m.forwarded_room_key from its index")
    func answered() async throws {
        let setup = try await Setup()
        let before = await setup.hs.sentToDevice.filter { $0.sender == setup.alice.user }.count
        #expect(try await setup.ask(from: setup.bob) == nil)
        let sent = await setup.hs.sentToDevice
        #expect(sent.filter { $0.sender == setup.alice.user }.count == before + 1)
        #expect(sent.last?.type == "m.room.encrypted" && sent.last?.sender == setup.alice.user && sent.last?.to.userID == setup.bob.user)
        // Bob's machine reads it as an m.forwarded_room_key from Alice's device (and, having asked for
        // nothing itself, refuses to import it).
        let received = try await setup.bob.sync()
        #expect(received.toDevice.map(\.type) == ["m.forwarded_room_key"])
        #expect(received.toDevice.first?.failure?.code == "forwarded_key_refused")
    }

    @Test("a device never given the key (not in the room) gets no key, and is told so once: m.room_key.withheld, m.unauthorised")
    func notShared() async throws {
        let setup = try await Setup()
        let before = await setup.hs.sentToDevice.filter { $0.sender == setup.alice.user }.count
        #expect(try await setup.ask(from: setup.eve) == .notSharedWithDevice)
        let sent = await setup.hs.sentToDevice.filter { $0.sender == setup.alice.user }
        #expect(sent.count == before + 1)
        #expect(sent.last?.type == "m.room_key.withheld" && sent.last?.to == DeviceRef(userID: setup.eve.user, deviceID: setup.eve.device))
        #expect(sent.last?.olmType == nil)
        // Eve's machine takes it as a notice from Alice's device about this very session.
        _ = try await setup.eve.sync()
        let notice = try #require(try await setup.eve.store.withheldNotices(roomID: setup.room, sessionID: setup.sessionID).first)
        let aliceKeys = try #require(await setup.hs.devices[setup.alice.user]?[setup.alice.device]?.keys)
        let aliceKey = try #require(aliceKeys["keys"]?["curve25519:\(setup.alice.device.rawValue)"]?.stringValue)
        #expect(notice.code == "m.unauthorised" && notice.senderUserID == setup.alice.user && notice.senderKey == aliceKey)
        // Asking again at once is refused without a second notice; after the interval, told again.
        #expect(try await setup.ask(from: setup.eve) == .rateLimited)
        #expect(await setup.hs.sentToDevice.filter { $0.sender == setup.alice.user }.count == before + 1)
        setup.alice.clock.advance(by: 61)
        #expect(try await setup.ask(from: setup.eve) == .notSharedWithDevice)
        #expect(await setup.hs.sentToDevice.filter { $0.sender == setup.alice.user }.count == before + 2)
    }

    @Test("an unknown session, or one the asked device did not create, gets nothing: not even a notice")
    func notOurs() async throws {
        let setup = try await Setup()
        let notices = { await setup.hs.sentToDevice.filter { $0.type == "m.room_key.withheld" }.count }
        let before = await notices()
        #expect(try await setup.ask(from: setup.bob, body: try await setup.body(session: String(repeating: "A", count: 43))) == .notOurSession)
        // Bob's device is asked (by Eve, say) for Alice's session: not Bob's to give.
        #expect(try await setup.ask(from: setup.eve, to: setup.bob) == .notOurSession)
        #expect(await notices() == before)
    }

    @Test("a request naming another room or another sender key than the session's gets nothing")
    func mismatch() async throws {
        let setup = try await Setup()
        #expect(try await setup.ask(from: setup.bob, body: try await setup.body(room: try RoomID("!other"))) == .mismatch)
        let bobKey = try #require(try await setup.alice.store.devices(userIDs: [setup.bob.user])[setup.bob.user]?.first).curve25519
        #expect(try await setup.ask(from: setup.bob, body: try await setup.body(senderKey: bobKey)) == .mismatch)
    }

    @Test("a device whose keys changed since it was given the key gets no key, and is told m.unauthorised")
    func deviceChanged() async throws {
        let setup = try await Setup()
        var device = try #require(try await setup.alice.store.devices(userIDs: [setup.bob.user])[setup.bob.user]?.first)
        device.curve25519 = String(repeating: "B", count: 43)
        var changes = CryptoChanges()
        changes.deviceLists = [setup.bob.user: [device]]
        try await setup.alice.store.save(changes)
        let before = await setup.hs.sentToDevice.filter { $0.sender == setup.alice.user }.count
        #expect(try await setup.ask(from: setup.bob) == .deviceChanged)
        let sent = await setup.hs.sentToDevice.filter { $0.sender == setup.alice.user }
        #expect(sent.count == before + 1 && sent.last?.type == "m.room_key.withheld" && sent.last?.to.userID == setup.bob.user)
    }

    @Test("answers to one device for one session are rate-limited")
    func rateLimited() async throws {
        let setup = try await Setup()
        #expect(try await setup.ask(from: setup.bob) == nil)
        #expect(try await setup.ask(from: setup.bob) == .rateLimited)
        setup.alice.clock.advance(by: 61)
        #expect(try await setup.ask(from: setup.bob) == nil)
    }

    @Test("malformed requests are counted and skipped; a cancellation in the same transaction withdraws the request")
    func malformedAndCancelled() async throws {
        let setup = try await Setup()
        let good = try await setup.request(from: setup.bob)
        var bad: [JSONValue] = []
        for (key, value) in [
            ("action", JSONValue.string("steal")), ("requesting_device_id", .integer(5)), ("request_id", .string("")),
            ("request_id", .string(String(repeating: "x", count: 300))), ("request_id", .string("a\u{0}b")),
            ("body", .string("nope")),
        ] {
            guard case .object(var content) = good else { continue }
            content[key] = value
            bad.append(.object(content))
        }
        for (key, value) in [("algorithm", JSONValue.string("m.olm.v1.curve25519-aes-sha2")), ("room_id", .string("nope")),
                             ("session_id", .string("short")), ("sender_key", .integer(1)), ("session_id", .null)] {
            guard case .object(var content) = good, case .object(var body) = content["body"]! else { continue }
            body[key] = value
            content["body"] = .object(body)
            bad.append(.object(content))
        }
        let step = try await setup.deliver(bad, from: setup.bob)
        #expect(step.keyRequests.isEmpty)
        #expect(step.toDevice.count == bad.count && step.toDevice.allSatisfy { $0.failure != nil })

        let cancel = try await setup.request(from: setup.bob, action: "request_cancellation")
        let withdrawn = try await setup.deliver([good, cancel], from: setup.bob)
        #expect(withdrawn.keyRequests.isEmpty && withdrawn.toDevice.allSatisfy { $0.failure == nil })
    }

    @Test("a rotated session stays answerable to the devices it was given to, until its retention")
    func rotated() async throws {
        let setup = try await Setup()
        try await setup.alice.engine.rotate(roomID: setup.room, sender: setup.alice.user)
        _ = try await setup.alice.send("two", in: setup.room)
        #expect(try await setup.bob.sync().bodies == ["two"])
        let current = try #require(try await setup.alice.store.outboundGroupSession(roomID: setup.room, senderUserID: setup.alice.user)).sessionID
        #expect(current != setup.sessionID)
        #expect(try await setup.ask(from: setup.bob) == nil)
        #expect(try await setup.ask(from: setup.eve) == .notSharedWithDevice)
        _ = await setup.alice.store.inner.pruneRetiredOutboundSessions(retiredBefore: .distantFuture)
        setup.alice.clock.advance(by: 61)
        #expect(try await setup.ask(from: setup.bob) == .notOurSession)
    }
}
