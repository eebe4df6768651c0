import Bridge
import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Testing

@Suite("A device the database does not know")
struct DeviceIdentityTests {
    @Test("after a lost database the old device is deleted and a fresh one (new id) takes its place; peers reach the new keys")
    func lostDatabase() async throws {
        let homeserver = FakeHomeserver()
        let old = try await Party("sb", on: homeserver, users: ["@bot:hs"])
        let oldKeys = try #require(await homeserver.query([old.user])["device_keys"]?["@bot:hs"]?[old.device.rawValue])

        // Same homeserver, empty database: the same preferred device id.
        let new = try await Party("sb", on: homeserver, users: ["@bot:hs"])
        #expect(new.device != old.device)
        #expect(new.device.rawValue.hasPrefix(old.device.rawValue))
        #expect(await homeserver.deviceIDs(of: new.user) == [new.device])
        let served = try #require(await homeserver.query([new.user])["device_keys"]?["@bot:hs"]?[new.device.rawValue])
        #expect(served["keys"] != oldKeys["keys"])
        #expect(await homeserver.oneTimeKeyCount(new.user, new.device) == 50)

        // A peer shares a room key with the new device and its message decrypts there.
        let alice = try await Party("alice", on: homeserver, users: ["@alice:hs"])
        let room = try await encryptedRoom("!reset", on: homeserver, members: [alice.user, new.user])
        try await alice.sync()
        try await new.sync()
        _ = try await alice.send("after the reset", in: room)
        #expect(try await new.sync().bodies == ["after the reset"])
    }

    @Test("a first device on a clean homeserver keeps the preferred id")
    func cleanStart() async throws {
        let homeserver = FakeHomeserver()
        let party = try await Party("sb", on: homeserver, users: ["@bot:hs"])
        #expect(party.device.rawValue == "SB0")
    }
}

@Suite("Lost local devices found by the periodic pass")
struct LostDeviceTests {
    /// The bridge (bot and a puppet) and alice in an encrypted room, a first message each way delivered.
    static func setUp() async throws -> (FakeHomeserver, Party, Party, RoomID) {
        let homeserver = FakeHomeserver()
        let bridge = try await Party("sb", on: homeserver, users: ["@bot:hs", "@puppet_1:hs"])
        let alice = try await Party("alice", on: homeserver, users: ["@alice:hs"])
        let room = try await encryptedRoom("!lost", on: homeserver, members: [alice.user, bridge.users[1]])
        try await alice.sync()
        try await bridge.sync()
        _ = try await alice.send("before", in: room)
        #expect(try await bridge.sync().bodies == ["before"])
        return (homeserver, bridge, alice, room)
    }

    static func pass(_ bridge: Party) async throws -> OneTimeKeyCheckService {
        let service = OneTimeKeyCheckService(
            engine: bridge.engine, store: bridge.store,
            deviceCheck: .init(requester: bridge.users[0], preferredDeviceID: try DeviceID("SB"), displayName: { _ in "Sealbridge" }),
            devicesPerSecond: 1_000, logger: Logger(label: "test"))
        try await service.pass()
        return service
    }

    @Test(
        "a device deleted on the homeserver is replaced under a new id; peers' next messages decrypt on it, and its own messages use a new session",
        arguments: [LocalDeviceState.missing, .foreignKeys])
    func replaced(_ loss: LocalDeviceState) async throws {
        let (homeserver, bridge, alice, room) = try await Self.setUp()
        let puppet = bridge.users[1], old = bridge.devices[1].1
        let before = try await bridge.store.outboundGroupSession(roomID: room, senderUserID: puppet)
        _ = try await bridge.send("from the old device", in: room, as: puppet)
        #expect(try await alice.sync().bodies == ["before", "from the old device"])  // her own echo first
        let oldSession = try #require(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: puppet)).sessionID
        #expect(before == nil)
        switch loss {
        case .missing: await homeserver.delete(old, of: puppet)
        default:
            // A database restored from an older backup: the homeserver holds other keys under the id.
            let other = try await Party("other", on: FakeHomeserver(), users: [puppet.rawValue])
            let foreign = try #require(await other.homeserver.query([puppet])["device_keys"]?[puppet.rawValue]?[other.device.rawValue])
            await homeserver.replaceDeviceKeys(puppet, old, with: foreign)
        }

        let service = try await Self.pass(bridge)
        #expect(service.progress.replaced == 1)
        let new = try #require(try await bridge.machine.deviceID(of: puppet))
        #expect(new != old && new.rawValue.hasPrefix("SB"))
        #expect(await homeserver.deviceIDs(of: puppet) == [new])
        #expect(await homeserver.oneTimeKeyCount(puppet, new) == 50)
        // The bot's device was fine and is untouched.
        #expect(try await bridge.machine.deviceID(of: bridge.users[0]) == bridge.devices[0].1)

        try await alice.sync()
        _ = try await alice.send("after", in: room)
        // The puppet's own first message comes back to the bridge too, readable from its inbound copy.
        #expect(try await bridge.sync().bodies == ["from the old device", "after"])
        _ = try await bridge.send("from the new device", in: room, as: puppet)
        #expect(try await alice.sync().bodies == ["after", "from the new device"])
        #expect(try await bridge.store.outboundGroupSession(roomID: room, senderUserID: puppet)?.sessionID != oldSession)

        // Nothing left to replace on the next pass.
        #expect(try await Self.pass(bridge).progress.replaced == 0)
    }
}
