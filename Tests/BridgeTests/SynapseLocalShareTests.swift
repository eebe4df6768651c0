import Bridge
import Foundation
import HomeserverClient
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

/// Two puppets of one daemon (one store) and a third user of another machine in an encrypted room
/// on the real Synapse that scripts/test starts.
@Suite("Sharing with local devices against a real Synapse")
struct SynapseLocalShareTests {
    @Test("a puppet's room key reaches the other puppet without Synapse (nothing in its /sync), the remote device by Olm; both read the message")
    func localAndRemote() async throws {
        let (url, token) = try TestHomeserver.environment()
        let client = HomeserverClient(baseURL: url, asToken: token)
        let suffix = UInt32.random(in: 0...UInt32.max)
        let alice = try UserID("@sbtest_la\(suffix):localhost"), bob = try UserID("@sbtest_lb\(suffix):localhost")
        let carol = try UserID("@sbtest_lc\(suffix):localhost")
        let store = MemoryCryptoStore(), carolStore = MemoryCryptoStore()
        let bridge = CryptoEngine(
            machine: CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "l", count: 40))), store: store, transport: client)
        let remote = CryptoEngine(
            machine: CryptoMachine(store: carolStore, cipher: try StoreCipher(secret: String(repeating: "c", count: 40))), store: carolStore,
            transport: client)
        try await bridge.ensureDevice(alice, deviceID: try DeviceID("LA\(suffix)"), displayName: "alice")
        let bobDevice = try await bridge.ensureDevice(bob, deviceID: try DeviceID("LB\(suffix)"), displayName: "bob")
        let carolDevice = try await remote.ensureDevice(carol, deviceID: try DeviceID("LC\(suffix)"), displayName: "carol")

        let created = try await client.request(.POST, "/_matrix/client/v3/createRoom", as: .init(userID: alice), body: [
            "preset": "private_chat", "invite": [.string(bob.rawValue), .string(carol.rawValue)],
            "initial_state": [["type": "m.room.encryption", "state_key": "", "content": ["algorithm": .string(EncryptionAlgorithm.megolm)]]],
        ])
        let room = try RoomID(try #require(created["room_id"]?.stringValue))
        for user in [bob, carol] {
            _ = try await client.request(.POST, "/_matrix/client/v3/join/\(HomeserverClient.encode(room.rawValue))", as: .init(userID: user), body: [:])
        }
        try await bridge.updateRoom(
            room, encryption: RoomEncryption(algorithm: EncryptionAlgorithm.megolm), members: [alice: "join", bob: "join", carol: "join"])

        let eventID = try await bridge.send(
            roomID: room, sender: alice, type: "m.room.message", content: ["msgtype": "m.text", "body": "kept local"], txnID: "ls\(suffix)")

        func toDevice(_ user: UserID, _ device: DeviceID) async throws -> [ToDeviceEvent] {
            let sync = try await client.request(.GET, "/_matrix/client/v3/sync", query: [("timeout", "0")], as: .init(userID: user, deviceID: device))
            return try (sync["to_device"]?["events"]?.arrayValue ?? []).map { event in
                ToDeviceEvent(
                    type: event["type"]?.stringValue ?? "", sender: try UserID(event["sender"]?.stringValue ?? ""), content: event["content"] ?? [:],
                    toUserID: user, toDeviceID: device)
            }
        }
        #expect(try await toDevice(bob, bobDevice).isEmpty, "the room key went through the homeserver to a local device")
        let carolMessages = try await toDevice(carol, carolDevice)
        #expect(carolMessages.map(\.type) == ["m.room.encrypted"])
        let event = try await client.request(
            .GET, "/_matrix/client/v3/rooms/\(HomeserverClient.encode(room.rawValue))/event/\(HomeserverClient.encode(eventID.rawValue))",
            as: .init(userID: bob))

        // The daemon reads its puppet's message as it comes back; the remote machine through Olm.
        let local = try await bridge.machine.process(AppserviceTransaction(events: [event]))
        #expect(try local.roomEvents.first?.result.get().content["body"]?.stringValue == "kept local")
        let far = try await remote.machine.process(AppserviceTransaction(events: [event], toDevice: carolMessages))
        #expect(try far.roomEvents.first?.result.get().content["body"]?.stringValue == "kept local")
        let record = try #require(await store.outboundGroupSession(roomID: room, senderUserID: alice))
        #expect(record.shares.first { $0.userID == bob }?.messageIndex == 0)
    }
}
