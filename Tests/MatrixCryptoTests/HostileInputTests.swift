import Foundation
import MatrixCrypto
import MatrixModels
import Olm
import Testing

/// What a hostile member or sender can try against the machine: take over someone's session, wedge
/// an Olm session with a refused first message, plant withheld notices, contradict pinned keys, and
/// put NULs and garbage where ids belong.
@Suite("CryptoMachine: hostile senders")
struct HostileInputTests {
    /// Alice's event with the ciphertext at Megolm index `index` of her session (encrypting up to it).
    static func aliceEvent(_ alice: RemoteSender, id: String, sender: UserID? = nil) throws -> JSONValue {
        ["type": "m.room.encrypted", "event_id": .string(id), "room_id": "!room", "sender": .string((sender ?? alice.userID).rawValue),
         "content": try alice.megolmEvent("alice says \(id)")]
    }

    @Test("a second sender's copy of a room key never takes over the session: each owner's claim stays apart, events use their sender's claim")
    func sessionTakeover() async throws {
        for impostorFirst in [true, false] {
            let harness = try MachineHarness()
            let upload = try await harness.provision()
            var alice = RemoteClient()
            var mallory = RemoteClient(sender: RemoteSender(userID: "@mallory:localhost", deviceID: "MALLORYPC"), oneTimeKeyIndex: 1)
            // Mallory got Alice's key at index 0 (he was in the room first); we get it at index 2.
            let keyAtZero = alice.sender.group.sessionKey
            let early0 = try Self.aliceEvent(alice.sender, id: "$a0")
            let early1 = try Self.aliceEvent(alice.sender, id: "$a1")
            let aliceKey = try alice.roomKeyTransaction(to: upload)
            let impostorKey = try mallory.toDeviceTransaction(
                to: upload, type: "m.room_key", content: mallory.sender.roomKeyContent(sessionKey: keyAtZero, sessionID: alice.sender.group.sessionID))
            let first = try await harness.step(impostorFirst ? impostorKey : aliceKey)
            let second = try await harness.step(impostorFirst ? aliceKey : impostorKey)
            #expect(first.toDevice.first?.failure == nil && second.toDevice.first?.failure == nil)
            #expect(second.keyConflicts.count == 1, "the second claim on the session id is reported")
            let claims = try await harness.store.inboundGroupSessions(roomID: try RoomID("!room"), sessionID: alice.sender.group.sessionID)
            #expect(Set(claims.map(\.senderUserID)) == [alice.sender.userID, mallory.sender.userID])
            #expect(claims.first { $0.senderUserID == alice.sender.userID }?.firstKnownIndex == 2, "Alice's claim kept its owner and index")

            // Alice's next event decrypts as hers; her earlier ones are not decrypted with Mallory's copy.
            let live = try Self.aliceEvent(alice.sender, id: "$a2")
            let step = try await harness.step(AppserviceTransaction(events: [live, early0]))
            let decrypted = try #require(try step.roomEvents.first { $0.eventID.rawValue == "$a2" }?.result.get())
            #expect(decrypted.content["body"]?.stringValue == "alice says $a2")
            #expect(step.roomEvents.first { $0.eventID.rawValue == "$a2" }?.senderKey == alice.sender.account.identityKeys.curve25519)
            #expect(step.parked.map(\.eventID) == ["$a0"], "an index before Alice's own claim waits; Mallory's copy does not open it")

            // Mallory relabels Alice's ciphertexts as his: one we saw is a replay; the rest is what he
            // could have written himself (he can read the session), never attributed to Alice.
            var relabelled = live
            if case .object(var fields) = relabelled {
                fields["event_id"] = "$relabelled"
                fields["sender"] = .string(mallory.sender.userID.rawValue)
                relabelled = .object(fields)
            }
            let replay = try await harness.step(AppserviceTransaction(events: [relabelled]))
            guard case .failure(.replay) = replay.roomEvents.first?.result else {
                Issue.record("a relabelled copy of a seen ciphertext must be a replay, got \(String(describing: replay.roomEvents.first?.result))")
                return
            }
            _ = early1
        }
    }

    @Test("a refused first Olm message does not wedge its sender: the session is kept and the next message decrypts")
    func refusedFirstMessage() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        // The first (pre-key) message is genuine Olm, but its payload names another recipient.
        let refused = try await harness.step(try alice.toDeviceTransaction(
            to: upload, type: "m.room_key", content: alice.sender.roomKeyContent, overrides: ["recipient": "@someone_else:localhost"]))
        guard case .payloadMismatch = refused.toDevice.first?.failure else {
            Issue.record("expected payloadMismatch, got \(String(describing: refused.toDevice.first?.failure))")
            return
        }
        #expect(refused.changes.olmSessions.count == 1, "the session that spent a one-time key is kept")
        #expect(refused.changes.inboundGroupSessions.isEmpty)
        // The next message on the same session (still a pre-key message: Alice heard nothing back).
        let next = try await harness.step(try alice.roomKeyTransaction(to: upload))
        #expect(next.toDevice.first?.failure == nil)
        #expect(next.changes.inboundGroupSessions.count == 1)
        #expect(next.wedged.isEmpty)
    }

    @Test("withheld notices are hints: a third party's changes nothing, the sender's sets the reason, a later key is still accepted")
    func withheldHints() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        let mallory = try UserID("@mallory:localhost")
        func notice(from sender: UserID, code: String) -> ToDeviceEvent {
            ToDeviceEvent(
                type: "m.room_key.withheld", sender: sender,
                content: ["room_id": "!room", "session_id": .string(alice.sender.group.sessionID), "code": .string(code),
                          "sender_key": .string(alice.sender.account.identityKeys.curve25519), "algorithm": .string(EncryptionAlgorithm.megolm),
                          "reason": "a reason with a NUL \u{0} inside"],
                toUserID: upload.userID, toDeviceID: upload.deviceID)
        }
        // The key is made now (index 0) and delivered last.
        let key = try alice.roomKeyTransaction(to: upload)
        var event = try Self.aliceEvent(alice.sender, id: "$w")
        if case .object(var fields) = event, case .object(var content) = fields["content"]! {
            content["sender_key"] = .string(alice.sender.account.identityKeys.curve25519)
            fields["content"] = .object(content)
            event = .object(fields)
        }
        let planted = try await harness.step(AppserviceTransaction(events: [event], toDevice: [notice(from: mallory, code: "m.blacklisted")]))
        #expect(planted.parked.first?.reason == .unknownSession(sessionID: alice.sender.group.sessionID), "a third party's notice is ignored")
        let own = try await harness.step(AppserviceTransaction(toDevice: [notice(from: alice.sender.userID, code: "m.unverified")]))
        #expect(own.changes.withheldNotices.first?.reason?.contains("\u{0}") == false, "free text is cleaned before it is stored")
        let reasons = try await harness.machine.undecryptable(in: nil, limit: 10)
        #expect(reasons.first?.reason == .withheld(code: "m.unverified", reason: own.changes.withheldNotices.first?.reason))
        let keyed = try await harness.step(key)
        #expect(try keyed.roomEvents.first?.result.get().content["body"]?.stringValue == "alice says $w")
    }

    @Test("MSC4147 sender_device_keys that contradict the keys pinned for that device are refused")
    func pinnedDeviceKeys() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var impostor = RemoteClient()
        // The device ALICEPHONE is pinned with other keys (a real Alice queried earlier).
        let real = try Account.create()
        var pinned = CryptoChanges()
        pinned.trackedUsers = [impostor.sender.userID: false]
        pinned.deviceLists = [impostor.sender.userID: [VerifiedDeviceKeys(
            userID: impostor.sender.userID, deviceID: impostor.sender.deviceID, curve25519: real.identityKeys.curve25519,
            ed25519: real.identityKeys.ed25519)]]
        await harness.store.save(pinned)
        let step = try await harness.step(try impostor.roomKeyTransaction(to: upload))
        #expect(step.toDevice.first?.failure == .unverifiedSender(
            "sender_device_keys differ from the keys pinned for \(impostor.sender.userID) \(impostor.sender.deviceID)"))
        #expect(step.changes.inboundGroupSessions.isEmpty)
    }

    @Test("NULs and garbage where ids belong: a malformed session id fails its event (never parked or looked up); NUL in content parks fine")
    func garbageIDs() async throws {
        let harness = try MachineHarness()
        _ = try await harness.provision()
        let alice = RemoteSender()
        let good = try alice.megolmEvent("fine")
        func event(_ id: String, _ content: JSONValue) -> JSONValue {
            ["type": "m.room.encrypted", "event_id": .string(id), "room_id": "!room", "sender": "@alice:localhost", "content": content]
        }
        var nulSession = good.objectValue!
        nulSession["session_id"] = .string(alice.group.sessionID.dropLast() + "\u{0}")
        var longSession = good.objectValue!
        longSession["session_id"] = .string(String(repeating: "A", count: 100_000))
        var nulElsewhere = good.objectValue!
        nulElsewhere["k\u{0}ey"] = "v\u{0}alue"
        nulElsewhere["sender_key"] = "\u{0}"
        let step = try await harness.step(AppserviceTransaction(events: [
            event("$nul", .object(nulSession)), event("$long", .object(longSession)), event("$parks", .object(nulElsewhere)),
        ]))
        #expect(step.roomEvents.map(\.eventID.rawValue) == ["$nul", "$long"])
        for outcome in step.roomEvents {
            guard case .failure(.malformed) = outcome.result else {
                Issue.record("expected malformed, got \(outcome.result)")
                continue
            }
        }
        #expect(step.parked.map(\.eventID) == ["$parks"])
        #expect(step.parked.first?.senderKey == nil, "a sender key that is not a key is not kept")
    }

    @Test("an event parked too long is surfaced once as undecryptable with its reason; its key later delivers it late")
    func surfacedThenLate() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        let key = try alice.roomKeyTransaction(to: upload)
        _ = try await harness.step(AppserviceTransaction(events: [try Self.aliceEvent(alice.sender, id: "$late")]))
        let surfaced = try await harness.machine.surfaceParkedEvents(parkedBefore: Date().addingTimeInterval(60), limit: 10)
        #expect(surfaced.roomEvents.map(\.eventID.rawValue) == ["$late"])
        #expect(surfaced.roomEvents.first.map { (try? $0.result.get()) == nil } == true)
        #expect(surfaced.changes.surfacedEvents == ["$late"])
        await harness.store.save(surfaced.changes)
        // Surfaced once only.
        #expect(try await harness.machine.surfaceParkedEvents(parkedBefore: Date().addingTimeInterval(60), limit: 10).roomEvents.isEmpty)
        let keyed = try await harness.step(key)
        let outcome = try #require(keyed.roomEvents.first)
        #expect(try outcome.result.get().content["body"]?.stringValue == "alice says $late")
        #expect(outcome.late)
        #expect(keyed.changes.releasedEvents == ["$late"])
    }

    @Test("an account or session whose pickle does not open fails only the entries that need it, not the transaction")
    func unreadableRows() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        // Another local user's account and a stranger's session are damaged rows.
        let broken = try UserID("@sealbridge_broken:localhost")
        let bob = RemoteSender(userID: "@bob:localhost", deviceID: "BOBPHONE")
        var damage = CryptoChanges()
        damage.accounts = [StoredAccount(userID: broken, deviceID: try DeviceID("SBX"), pickle: "not a pickle", deviceKeysUploaded: true)]
        damage.inboundGroupSessions = [StoredInboundGroupSession(
            roomID: try RoomID("!room"), sessionID: bob.group.sessionID, senderKey: bob.account.identityKeys.curve25519, senderUserID: bob.userID,
            firstKnownIndex: 0, pickle: "not a pickle either")]
        await harness.store.save(damage)
        var transaction = try alice.roomKeyTransaction(to: upload)
        transaction.toDevice.append(ToDeviceEvent(
            type: "m.room.encrypted", sender: alice.sender.userID, content: transaction.toDevice[0].content, toUserID: broken,
            toDeviceID: try DeviceID("SBX")))
        transaction.events = [
            try Self.aliceEvent(alice.sender, id: "$fine"),
            ["type": "m.room.encrypted", "event_id": "$bobs", "room_id": "!room", "sender": .string(bob.userID.rawValue),
             "content": try bob.megolmEvent("unreadable")],
        ]
        transaction.oneTimeKeyCounts = [broken: [try DeviceID("SBX"): [:]]]
        let step = try await harness.step(transaction)
        #expect(step.toDevice.map(\.failure) == [nil, .unreadableAccount(broken)])
        #expect(try step.roomEvents.first { $0.eventID.rawValue == "$fine" }?.result.get().content["body"]?.stringValue == "alice says $fine")
        #expect(step.roomEvents.first { $0.eventID.rawValue == "$bobs" }.map { outcome in
            if case .failure(.unreadableSession) = outcome.result { true } else { false }
        } == true)
        #expect(step.uploads.isEmpty, "no upload for an account that does not open")
    }
}
