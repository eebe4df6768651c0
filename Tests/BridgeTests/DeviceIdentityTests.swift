import Bridge
import Foundation
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
