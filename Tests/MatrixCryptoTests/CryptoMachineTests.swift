import Foundation
import MatrixCrypto
import MatrixModels
import Olm
import Testing

/// The machine with a memory store, and helpers to play a step and commit it as the pipeline would.
struct MachineHarness {
    let store = MemoryCryptoStore()
    let machine: CryptoMachine
    let puppet = try! UserID("@sealbridge_7:localhost")
    let device = try! DeviceID("SB7")

    init() throws {
        machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "s", count: 44)))
    }

    /// Creates the puppet's device and confirms its first upload; returns that upload.
    func provision() async throws -> KeysUpload {
        let (changes, upload) = try await machine.createDevice(userID: puppet, deviceID: device)
        await store.save(changes)
        await store.save(try await machine.confirmUpload(upload))
        return upload
    }

    func step(_ transaction: AppserviceTransaction, parked: [ParkedEvent] = []) async throws -> CryptoStep {
        let step = try await machine.process(transaction, parked: parked)
        await store.save(step.changes)
        return step
    }
}

/// A remote client sharing a Megolm session with the puppet, MSC4147-style (with sender_device_keys).
struct RemoteClient {
    var sender = RemoteSender()
    var olm: Session?

    /// Which of the upload's one-time keys this client claims (each may be used once).
    var oneTimeKeyIndex = 0

    mutating func roomKeyTransaction(to upload: KeysUpload, includeDeviceKeys: Bool = true, dehydrated: Bool = false) throws -> AppserviceTransaction {
        try toDeviceTransaction(to: upload, type: "m.room_key", content: sender.roomKeyContent, includeDeviceKeys: includeDeviceKeys, dehydrated: dehydrated)
    }

    /// An Olm-encrypted to-device message from this client to the upload's device (a pre-key message
    /// until the session has seen a reply); `overrides` replace payload fields.
    mutating func toDeviceTransaction(
        to upload: KeysUpload, type: String, content: JSONValue, includeDeviceKeys: Bool = true, dehydrated: Bool = false,
        overrides: [String: JSONValue] = [:]
    ) throws -> AppserviceTransaction {
        let curve = upload.deviceKeys!["keys"]!["curve25519:\(upload.deviceID.rawValue)"]!.stringValue!
        let ed = upload.deviceKeys!["keys"]!["ed25519:\(upload.deviceID.rawValue)"]!.stringValue!
        if olm == nil {
            let otk = upload.oneTimeKeys.sorted { $0.key < $1.key }[oneTimeKeyIndex].value["key"]!.stringValue!
            olm = try Session.outbound(account: sender.account, theirIdentityKey: curve, theirOneTimeKey: otk)
        }
        var deviceKeys = sender.deviceKeys
        if dehydrated {
            var members = deviceKeys.objectValue!.filter { $0.key != "signatures" }
            members["dehydrated"] = true
            deviceKeys = try SignedJSON.sign(.object(members), userID: sender.userID, keyID: "ed25519:\(sender.deviceID.rawValue)", with: sender.account)
        }
        var payload: [String: JSONValue] = [
            "type": .string(type), "content": content, "sender": .string(sender.userID.rawValue),
            "recipient": .string(upload.userID.rawValue), "recipient_keys": ["ed25519": .string(ed)],
            "keys": ["ed25519": .string(sender.account.identityKeys.ed25519)],
        ]
        if includeDeviceKeys { payload["sender_device_keys"] = deviceKeys }
        for (key, value) in overrides { payload[key] = value }
        let message = try olm!.encrypt(JSONValue.object(payload).serialized())
        let content: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(sender.account.identityKeys.curve25519),
            "ciphertext": [.init(stringLiteral: curve): ["type": .integer(Int64(message.kind.rawValue)), "body": .string(message.ciphertext)]],
        ]
        return AppserviceTransaction(toDevice: [ToDeviceEvent(type: "m.room.encrypted", sender: sender.userID, content: content, toUserID: upload.userID, toDeviceID: upload.deviceID)])
    }

    func roomEvent(_ body: String, id: String, sender override: String? = nil) throws -> JSONValue {
        ["type": "m.room.encrypted", "event_id": .string(id), "room_id": "!room", "sender": .string(override ?? sender.userID.rawValue),
         "content": try sender.megolmEvent(body)]
    }
}

extension JSONValue {
    init(stringLiteral value: String, _: Void = ()) { self = .string(value) }
}

@Suite("CryptoMachine: receiving")
struct CryptoMachineTests {
    @Test("a new device gets an account, signed device keys, a fallback key and 50 one-time keys; confirming publishes them")
    func provisioning() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        #expect(upload.oneTimeKeys.count == 50)
        #expect(upload.fallbackKeys.count == 1)
        #expect(upload.deviceKeys != nil)
        let stored = try #require(await harness.store.account(userID: harness.puppet))
        #expect(stored.deviceKeysUploaded)
        // Counts at target: nothing to upload.
        let full = try await harness.step(AppserviceTransaction(oneTimeKeyCounts: [harness.puppet: [harness.device: ["signed_curve25519": 50]]]))
        #expect(full.uploads.isEmpty)
    }

    @Test("an empty count map means zero keys: the machine tops up to the target; a used fallback key is replaced")
    func topUp() async throws {
        let harness = try MachineHarness()
        _ = try await harness.provision()
        let step = try await harness.step(AppserviceTransaction(
            oneTimeKeyCounts: [harness.puppet: [harness.device: [:]]],
            unusedFallbackKeyTypes: [harness.puppet: [harness.device: []]]))
        let upload = try #require(step.uploads.first)
        #expect(upload.oneTimeKeys.count == 50)
        #expect(upload.fallbackKeys.count == 1)
        #expect(upload.deviceKeys == nil)
        // Until the upload is confirmed, the generated keys stay pending and are not generated twice.
        let again = try await harness.step(AppserviceTransaction(oneTimeKeyCounts: [harness.puppet: [harness.device: [:]]]))
        #expect(again.uploads.first?.oneTimeKeys.count == 50)
        #expect(Set(again.uploads.first!.oneTimeKeys.keys) == Set(upload.oneTimeKeys.keys))
        await harness.store.save(try await harness.machine.confirmUpload(upload))
        let after = try await harness.step(AppserviceTransaction(oneTimeKeyCounts: [harness.puppet: [harness.device: ["signed_curve25519": 50]]]))
        #expect(after.uploads.isEmpty)
    }

    @Test("room key then messages in one transaction; a replay in a later transaction is refused")
    func keyAndMessages() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        var transaction = try alice.roomKeyTransaction(to: upload)
        transaction.events = [try alice.roomEvent("one", id: "$1"), try alice.roomEvent("two", id: "$2")]
        let step = try await harness.step(transaction)
        #expect(step.toDevice.first?.type == "m.room_key")
        #expect(step.toDevice.first?.failure == nil)
        #expect(step.roomEvents.map { try? $0.result.get().content["body"]?.stringValue } == ["one", "two"])
        #expect(step.roomEvents.first?.senderKey == alice.sender.account.identityKeys.curve25519)
        #expect(step.changes.inboundGroupSessions.count == 1)
        #expect(step.changes.olmSessions.count == 1)

        // The homeserver replays the first message under a new event id.
        let replayed = try await harness.step(AppserviceTransaction(events: [
            ["type": "m.room.encrypted", "event_id": "$evil", "room_id": "!room", "sender": .string(alice.sender.userID.rawValue),
             "content": transaction.events[0]["content"]!],
        ]))
        guard case .failure(.replay(_, 0, "$1")) = replayed.roomEvents.first?.result else {
            Issue.record("expected a replay failure, got \(String(describing: replayed.roomEvents.first?.result))")
            return
        }
    }

    @Test("an event that arrives before its key is parked, then decrypted when the key comes in a later transaction")
    func parking() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        // The client shares the key (from index 0) before sending, but the homeserver delivers the event first.
        let keyDelivery = try alice.roomKeyTransaction(to: upload)
        let early = try await harness.step(AppserviceTransaction(events: [try alice.roomEvent("early", id: "$early")]))
        #expect(early.roomEvents.isEmpty)
        #expect(early.parked.count == 1)
        #expect(early.changes.parkedEvents.map(\.eventID) == ["$early"])
        // The parked event is in the store: the key's transaction finds it without being handed it.
        let later = try await harness.step(keyDelivery)
        #expect(later.parked.isEmpty)
        #expect(try later.roomEvents.first?.result.get().content["body"]?.stringValue == "early")
        #expect(later.changes.releasedEvents == ["$early"])
        #expect(try await harness.store.parkedEvents(sessionIDs: [alice.sender.group.sessionID]).isEmpty)

        // A key that starts after the message (exported later) leaves the event parked, not failed.
        var bob = RemoteClient(oneTimeKeyIndex: 1)
        _ = try await harness.step(AppserviceTransaction(events: [try bob.roomEvent("too early", id: "$bob")]))
        let bobKey = try await harness.step(try bob.roomKeyTransaction(to: upload))
        #expect(bobKey.toDevice.first?.type == "m.room_key")
        #expect(bobKey.toDevice.first?.failure == nil)
        #expect(bobKey.roomEvents.isEmpty)
        #expect(bobKey.parked.map(\.sessionID) == [bob.sender.group.sessionID])
        #expect(try await harness.store.parkedEvents(sessionIDs: [bob.sender.group.sessionID]).count == 1)
    }

    @Test("a transaction with many events from several sessions is decrypted in parallel, with the same checks and order")
    func parallelDecryption() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient(), bob = RemoteClient(oneTimeKeyIndex: 1)
        _ = try await harness.step(try alice.roomKeyTransaction(to: upload))
        _ = try await harness.step(try bob.roomKeyTransaction(to: upload))
        var events: [JSONValue] = []
        for n in 0..<6 {
            events.append(try alice.roomEvent("a\(n)", id: "$a\(n)"))
            events.append(try bob.roomEvent("b\(n)", id: "$b\(n)"))
        }
        let sender = JSONValue.string(alice.sender.userID.rawValue)
        // A replay of alice's first message under another id, a payload for another room, and a
        // session nobody shared with us.
        events.append(["type": "m.room.encrypted", "event_id": "$replay", "room_id": "!room", "sender": sender, "content": events[0]["content"]!])
        events.append([
            "type": "m.room.encrypted", "event_id": "$elsewhere", "room_id": "!room", "sender": sender,
            "content": try alice.sender.megolmEvent("x", room: "!other"),
        ])
        let stranger = RemoteClient(oneTimeKeyIndex: 2)
        events.append(try stranger.roomEvent("unknown", id: "$unknown"))
        let batchesBefore = await harness.machine.parallelBatches
        let step = try await harness.step(AppserviceTransaction(events: events))
        if ProcessInfo.processInfo.activeProcessorCount >= 2 {
            #expect(await harness.machine.parallelBatches > batchesBefore, "the parallel path did not run")
        }
        let bodies = step.roomEvents.compactMap { try? $0.result.get().content["body"]?.stringValue }
        #expect(bodies == (0..<6).flatMap { ["a\($0)", "b\($0)"] })
        let failures = Dictionary(uniqueKeysWithValues: step.roomEvents.compactMap { outcome -> (String, DecryptionFailure)? in
            guard case .failure(let failure) = outcome.result else { return nil }
            return (outcome.eventID.rawValue, failure)
        })
        #expect(failures["$replay"] == .replay(sessionID: alice.sender.group.sessionID, messageIndex: 0, firstEventID: "$a0"))
        #expect(failures["$elsewhere"] == .roomMismatch(expected: "!room", found: "!other"))
        #expect(failures.count == 2)
        #expect(step.parked.map(\.eventID) == ["$unknown"])
        #expect(step.changes.replayEntries.count == 12)
    }

    @Test("events released from parking and new ones decrypted in parallel in one step keep their own ids, senders and plaintexts")
    func parallelBesideReleased() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient(), bob = RemoteClient(oneTimeKeyIndex: 1)
        _ = try await harness.step(try alice.roomKeyTransaction(to: upload))
        // Bob's key is shared before his first message, but the message is delivered first: parked.
        var keyDelivery = try bob.roomKeyTransaction(to: upload)
        let early = try await harness.step(AppserviceTransaction(events: [try bob.roomEvent("early", id: "$early")]))
        #expect(early.parked.map(\.eventID) == ["$early"])
        // The key's transaction also carries new events, a state event first: every position in
        // it differs from its position among the events the step goes through (released ones first).
        var events: [JSONValue] = [[
            "type": "m.room.member", "event_id": "$member", "room_id": "!room", "sender": .string(alice.sender.userID.rawValue),
            "state_key": .string(alice.sender.userID.rawValue), "content": ["membership": "join"],
        ]]
        for n in 0..<5 {
            events.append(try alice.roomEvent("a\(n)", id: "$a\(n)"))
            events.append(try bob.roomEvent("b\(n)", id: "$b\(n)"))
        }
        keyDelivery.events = events
        let batchesBefore = await harness.machine.parallelBatches
        let step = try await harness.step(keyDelivery)
        if ProcessInfo.processInfo.activeProcessorCount >= 2 {
            #expect(await harness.machine.parallelBatches > batchesBefore, "the parallel path did not run")
        }
        let seen = step.roomEvents.map { outcome in
            [outcome.eventID.rawValue, outcome.sender.rawValue, (try? outcome.result.get().content["body"]?.stringValue) ?? "failed"]
        }
        let alices = alice.sender.userID.rawValue, bobs = bob.sender.userID.rawValue
        #expect(seen == [["$early", bobs, "early"]] + (0..<5).flatMap { [["$a\($0)", alices, "a\($0)"], ["$b\($0)", bobs, "b\($0)"]] })
        #expect(step.changes.releasedEvents == ["$early"])
        #expect(step.parked.isEmpty)
    }

    @Test("another user's event cannot use someone's session: it waits for a key of its own sender")
    func impersonation() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        var transaction = try alice.roomKeyTransaction(to: upload)
        transaction.events = [try alice.roomEvent("not mallory's", id: "$m", sender: "@mallory:localhost")]
        let step = try await harness.step(transaction)
        // Alice's claim never decrypts Mallory's event (it would be relabelled as his); the event is
        // parked, since only a key Mallory himself shared could decrypt it.
        #expect(step.roomEvents.isEmpty)
        #expect(step.parked.map(\.eventID) == ["$m"])
        #expect(step.parked.first?.reason == .unknownSession(sessionID: alice.sender.group.sessionID))
    }

    @Test("without sender_device_keys and no known device, the room key waits for the device list, then is refused if it has no such device; a dehydrated sender is dropped")
    func unverifiedSenders() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        let step = try await harness.step(try alice.roomKeyTransaction(to: upload, includeDeviceKeys: false))
        // Decrypted, kept (sealed) until the sender's device list is fetched after the commit; the
        // Olm session it made is kept either way.
        #expect(step.toDevice.first?.pending == true && step.toDevice.first?.failure == nil)
        #expect(step.unknownSenders == [alice.sender.userID])
        #expect(step.changes.pendingToDevice.count == 1)
        #expect(step.changes.olmSessions.count == 1)
        #expect(step.changes.inboundGroupSessions.isEmpty)
        // The list arrives without a device that has this key: refused for good, and no longer waiting.
        var fresh = CryptoChanges()
        fresh.trackedUsers = [alice.sender.userID: false]
        fresh.deviceLists = [alice.sender.userID: []]
        await harness.store.save(fresh)
        let resolved = try await harness.machine.processPendingToDevice(senders: [alice.sender.userID])
        guard case .unverifiedSender = resolved.toDevice.first?.failure else {
            Issue.record("expected unverifiedSender, got \(String(describing: resolved.toDevice.first?.failure))")
            return
        }
        #expect(resolved.changes.releasedToDevice.count == 1)
        #expect(resolved.changes.inboundGroupSessions.isEmpty)
        var dehydrated = RemoteClient(oneTimeKeyIndex: 1)
        let second = try await harness.step(try dehydrated.roomKeyTransaction(to: upload, dehydrated: true))
        #expect(second.toDevice.first?.failure == .unverifiedSender("to-device from a dehydrated device"))
        #expect(second.changes.inboundGroupSessions.isEmpty)
    }

    @Test("a to-device message for a device we do not have is reported, not fatal")
    func unknownRecipient() async throws {
        let harness = try MachineHarness()
        let event = ToDeviceEvent(type: "m.room.encrypted", sender: try UserID("@a:localhost"), content: [:],
                                  toUserID: try UserID("@nobody:localhost"), toDeviceID: try DeviceID("X"))
        let step = try await harness.step(AppserviceTransaction(toDevice: [event]))
        #expect(step.toDevice.first?.failure == .notForThisDevice)
    }
}

@Suite("CryptoMachine: fallback key rotation")
struct FallbackRotationTests {
    final class Clock: @unchecked Sendable {
        // @unchecked: only mutated by the test between machine calls, never concurrently.
        var now = Date(timeIntervalSince1970: 1_800_000_000)
    }

    @Test("a used fallback key is replaced; the old one still opens sessions during the grace period, not after")
    func graceThenForget() async throws {
        let clock = Clock()
        let store = MemoryCryptoStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "f", count: 44)), now: { clock.now })
        let puppet = try UserID("@sb_f:localhost"), device = try DeviceID("SBF")
        let (changes, upload) = try await machine.createDevice(userID: puppet, deviceID: device)
        await store.save(changes)
        await store.save(try await machine.confirmUpload(upload))
        let oldFallback = try #require(upload.fallbackKeys.first?.value["key"]?.stringValue)
        let identity = try #require(upload.deviceKeys?["keys"]?["curve25519:SBF"]?.stringValue)

        // The server reports the fallback key used: a new one is generated and the rotation time recorded.
        let rotated = try await machine.process(AppserviceTransaction(unusedFallbackKeyTypes: [puppet: [device: []]]))
        await store.save(rotated.changes)
        #expect(rotated.uploads.first?.fallbackKeys.count == 1)
        #expect(rotated.uploads.first?.fallbackKeys.first?.value["key"]?.stringValue != oldFallback)
        #expect(await store.account(userID: puppet)?.fallbackRotatedAt == clock.now)

        // A peer that claimed the old fallback key before the rotation sends a pre-key message…
        func preKeyFromPeer() throws -> ToDeviceEvent {
            let peer = try Account.create()
            let session = try Session.outbound(account: peer, theirIdentityKey: identity, theirOneTimeKey: oldFallback)
            let message = try session.encrypt("{}")
            return ToDeviceEvent(
                type: "m.room.encrypted", sender: try UserID("@peer:localhost"),
                content: ["algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(peer.identityKeys.curve25519),
                          "ciphertext": [.init(stringLiteral: identity): ["type": 0, "body": .string(message.ciphertext)]]],
                toUserID: puppet, toDeviceID: device)
        }
        // …within the grace period, the session opens (the payload checks then fail, which is beside the point).
        clock.now += 600
        let within = try await machine.process(AppserviceTransaction(toDevice: [try preKeyFromPeer()], unusedFallbackKeyTypes: [puppet: [device: ["signed_curve25519"]]]))
        guard case .payloadMismatch = within.toDevice.first?.failure else {
            Issue.record("the old fallback key should still open a session, got \(String(describing: within.toDevice.first?.failure))")
            return
        }
        // After the grace period the next touch forgets it: the same kind of message no longer opens a session.
        clock.now += 3600
        let forget = try await machine.process(AppserviceTransaction(unusedFallbackKeyTypes: [puppet: [device: ["signed_curve25519"]]]))
        await store.save(forget.changes)
        #expect(await store.account(userID: puppet)?.fallbackRotatedAt == nil)
        let after = try await machine.process(AppserviceTransaction(toDevice: [try preKeyFromPeer()]))
        guard case .olm = after.toDevice.first?.failure else {
            Issue.record("expected libolm to refuse the forgotten key, got \(String(describing: after.toDevice.first?.failure))")
            return
        }
    }
}
