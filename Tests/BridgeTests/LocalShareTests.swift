import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Testing

/// Room keys between devices of one daemon (the bot and its puppets) are stored, not sent: no Olm,
/// no one-time key claimed from our own devices, nothing through the homeserver.
@Suite("Sharing with local devices: no Olm to ourselves")
struct LocalShareTests {
    /// A bridge (bot + three puppets, one daemon) and Alice (remote) in a room; the third puppet is
    /// a local user who is not in it.
    func portal(settings: CryptoSettings = CryptoSettings(), crossSigning: Bool = false) async throws -> (FakeHomeserver, Party, Party, RoomID) {
        let hs = FakeHomeserver()
        var policy: (@Sendable (UserID) -> ForeignIdentityPolicy)?
        if crossSigning { policy = { _ in ForeignIdentityPolicy.refuse } }
        let bridge = try await Party(
            "bridge", on: hs, users: ["@bot:localhost", "@sb_1:localhost", "@sb_2:localhost", "@sb_3:localhost"], settings: settings,
            crossSigning: policy)
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        if crossSigning { try await CrossSigner(alice.user).publish(on: hs, signing: alice.device) }
        let room = try await encryptedRoom("!portal", on: hs, members: [alice.user] + bridge.users.prefix(3))
        try await bridge.sync()
        try await alice.sync()
        return (hs, bridge, alice, room)
    }

    /// One-time keys the homeserver holds for each local device.
    func oneTimeKeys(_ hs: FakeHomeserver, _ party: Party) async -> [Int] {
        var counts: [Int] = []
        for (user, device) in party.devices { counts.append(await hs.oneTimeKeyCount(user, device)) }
        return counts
    }

    @Test("a puppet's first message: Olm only to the remote device; the bot and the other puppet get share records at index 0, the local user outside the room nothing")
    func noOlmToOurselves() async throws {
        let (hs, bridge, alice, room) = try await portal()
        let sender = bridge.users[1]
        let keysBefore = await oneTimeKeys(hs, bridge)
        let sentBefore = await hs.sentToDevice.count

        _ = try await bridge.send("hello from the portal", in: room, as: sender)

        let sent = await Array(hs.sentToDevice.dropFirst(sentBefore))
        #expect(sent.map { $0.to.userID } == [alice.user], "to-device traffic to local devices: \(sent.map { $0.to })")
        #expect(sent.allSatisfy { $0.type == "m.room.encrypted" })
        #expect(await oneTimeKeys(hs, bridge) == keysBefore, "one-time keys were claimed from local devices")
        let record = try #require(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: sender))
        let shares = Dictionary(uniqueKeysWithValues: record.shares.map { ($0.userID, $0) })
        #expect(Set(shares.keys) == [alice.user, bridge.users[0], bridge.users[2]])
        for user in [bridge.users[0], bridge.users[2]] {
            #expect(shares[user]?.messageIndex == 0 && shares[user]?.withheldCode == nil)
            #expect(shares[user]?.deviceID == bridge.devices.first { $0.0 == user }?.1)
        }
        // No Olm session between our own devices, on either side.
        let inRoom = bridge.devices.prefix(3)
        for (user, device) in inRoom {
            for (other, _) in inRoom where other != user {
                let key = try #require(try await bridge.store.devices(userIDs: [other])[other]?.first?.curve25519)
                #expect(try await bridge.store.olmSessions(localUserID: user, localDeviceID: device, senderKey: key).isEmpty)
            }
        }

        // One inbound copy, with the sender data an Olm-delivered m.room_key would have left.
        let senderKeys = try #require(try await bridge.store.devices(userIDs: [sender])[sender]?.first)
        let claims = try await bridge.store.inboundGroupSessions(roomID: room, sessionID: record.sessionID)
        #expect(claims.count == 1)
        #expect(claims.first?.senderUserID == sender && claims.first?.senderKey == senderKeys.curve25519)
        #expect(claims.first?.senderEd25519 == senderKeys.ed25519 && claims.first?.firstKnownIndex == 0)

        // The daemon reads its own puppet's message; Alice reads it through Olm as before.
        let echo = try await bridge.sync()
        #expect(echo.toDevice.isEmpty)
        #expect(echo.bodies == ["hello from the portal"])
        #expect(echo.roomEvents.map(\.trust) == [.deviceOnly])
        #expect(try await alice.sync().bodies == ["hello from the portal"])
    }

    @Test("every puppet's first message in a portal room: no Olm between local devices, every message read by the daemon")
    func everyPuppetSpeaks() async throws {
        let (hs, bridge, alice, room) = try await portal()
        let sentBefore = await hs.sentToDevice.count
        for (index, user) in bridge.users.prefix(3).enumerated() { _ = try await bridge.send("message \(index)", in: room, as: user) }
        let sent = await Array(hs.sentToDevice.dropFirst(sentBefore))
        #expect(sent.count == 3 && sent.allSatisfy { $0.to.userID == alice.user })
        #expect(try await bridge.sync().bodies == ["message 0", "message 1", "message 2"])
        #expect(try await alice.sync().bodies == ["message 0", "message 1", "message 2"])
    }

    @Test("a local member who joins later gets a share record at the current index without Olm; one who leaves makes the session rotate")
    func membershipOfLocalUsers() async throws {
        let (hs, bridge, _, room) = try await portal()
        let sender = bridge.users[1], late = bridge.users[3]
        _ = try await bridge.send("one", in: room, as: sender)
        _ = try await bridge.send("two", in: room, as: sender)
        let first = try #require(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: sender))
        #expect(!first.shares.contains { $0.userID == late })

        await hs.sendRoomEvent(room, type: "m.room.member", content: ["membership": "join"], sender: late, stateKey: late.rawValue)
        var read = try await bridge.sync().bodies
        let sentBefore = await hs.sentToDevice.count
        _ = try await bridge.send("three", in: room, as: sender)
        #expect(await hs.sentToDevice.count == sentBefore)
        let joined = try #require(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: sender))
        #expect(joined.sessionID == first.sessionID)
        #expect(joined.shares.first { $0.userID == late }?.messageIndex == 2)
        // The copy stored at index 0 stays: a later copy of the same owner never replaces it.
        #expect(try await bridge.store.inboundGroupSessions(roomID: room, sessionID: first.sessionID).map(\.firstKnownIndex) == [0])

        await hs.sendRoomEvent(room, type: "m.room.member", content: ["membership": "leave"], sender: late, stateKey: late.rawValue)
        read += try await bridge.sync().bodies
        _ = try await bridge.send("four", in: room, as: sender)
        let rotated = try #require(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: sender))
        #expect(rotated.sessionID != first.sessionID)
        #expect(!rotated.shares.contains { $0.userID == late })
        read += try await bridge.sync().bodies
        #expect(read == ["one", "two", "three", "four"])
    }

    @Test("with cross-signing and sharing_policy cross_signed: local devices get the key, the daemon reads its puppet's message as cross_signed")
    func crossSignedLocalSender() async throws {
        var settings = CryptoSettings()
        settings.sharingPolicy = .crossSigned
        let (hs, bridge, alice, room) = try await portal(settings: settings, crossSigning: true)
        try await bridge.engine.refreshDevices(bridge.users + [alice.user], as: bridge.user)
        let sentBefore = await hs.sentToDevice.count
        _ = try await bridge.send("signed", in: room, as: bridge.users[1])
        let sent = await Array(hs.sentToDevice.dropFirst(sentBefore))
        #expect(sent.map { $0.to.userID } == [alice.user] && sent.first?.type == "m.room.encrypted")
        let echo = try await bridge.sync()
        #expect(echo.bodies == ["signed"])
        #expect(echo.roomEvents.map(\.trust) == [.crossSigned])
    }

    @Test("sharing_policy cross_signed without cross-signing: local devices still get the key (held here), the self-signed remote device a withheld notice; no rotation loop")
    func policyDoesNotWithholdFromOurselves() async throws {
        var settings = CryptoSettings()
        settings.sharingPolicy = .crossSigned
        let (hs, bridge, alice, room) = try await portal(settings: settings)
        let sentBefore = await hs.sentToDevice.count
        _ = try await bridge.send("one", in: room, as: bridge.users[1])
        _ = try await bridge.send("two", in: room, as: bridge.users[1])
        let sent = await Array(hs.sentToDevice.dropFirst(sentBefore))
        #expect(sent.map { $0.type } == ["m.room_key.withheld"] && sent.first?.to.userID == alice.user)
        let record = try #require(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: bridge.users[1]))
        #expect(record.shares.filter { $0.messageIndex == 0 }.map(\.userID).sorted() == [bridge.users[0], bridge.users[2]])
        #expect(try await bridge.sync().bodies == ["one", "two"])
    }

    @Test("a replaced local device: the old one (still listed) is not taken for ours; the new one gets the key without Olm once listed")
    func replacedLocalDevice() async throws {
        let (hs, bridge, _, room) = try await portal()
        let bot = bridge.users[0], sender = bridge.users[1]
        let old = bridge.devices[0].1
        try await bridge.engine.refreshDevices(Array(bridge.users.prefix(3)), as: sender)
        let oldKeys = try #require(try await bridge.store.devices(userIDs: [bot])[bot]?.first)
        let new = try await bridge.engine.replaceDevice(
            DeviceRef(userID: bot, deviceID: old), state: .missing, preferred: try DeviceID("SEALBRIDGE"), displayName: "bot")
        #expect(new != old)
        // Until the homeserver reports the change, the room's device list may still show the old device:
        // it is not ours any more (a claim for it fails: m.no_olm), and gets no key.
        var stale = CryptoChanges()
        stale.deviceLists = [bot: [oldKeys]]
        stale.trackedUsers = [bot: false]
        try await bridge.store.save(stale)
        _ = try await bridge.send("while stale", in: room, as: sender)
        var record = try #require(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: sender))
        let oldShare = try #require(record.shares.first { $0.userID == bot })
        #expect(oldShare.deviceID == old && oldShare.messageIndex == nil && oldShare.withheldCode == "m.no_olm")

        // Once the new device is listed, it is ours and gets the key at the current index without Olm.
        try await bridge.engine.refreshDevices([bot], as: sender)
        let sentBefore = await hs.sentToDevice.count
        _ = try await bridge.send("after", in: room, as: sender)
        let sent = await Array(hs.sentToDevice.dropFirst(sentBefore))
        #expect(!sent.contains { $0.to.userID == bot })
        record = try #require(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: sender))
        #expect(record.shares.first { $0.userID == bot && $0.deviceID == new }?.messageIndex == 1)
    }
}
