import Bridge
import Foundation
import HomeserverClient
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

/// Two puppets, each with its own machine, in an encrypted room on the real Synapse that scripts/test
/// starts: every request of the send path (query, claim, sendToDevice, room send) goes to Synapse.
@Suite("Crypto engine against a real Synapse")
struct SynapseRoundTripTests {
    struct Missing: Error {}

    @Test("a puppet's encrypted message, with its room key by Olm to-device, is decrypted by another puppet's machine")
    func roundTrip() async throws {
        let (url, token) = try TestHomeserver.environment()
        let client = HomeserverClient(baseURL: url, asToken: token)
        let suffix = UInt32.random(in: 0...UInt32.max)
        let alice = try UserID("@sbtest_ra\(suffix):localhost"), bob = try UserID("@sbtest_rb\(suffix):localhost")
        func engine(_ secret: String) throws -> (CryptoEngine, MemoryCryptoStore) {
            let store = MemoryCryptoStore()
            let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: secret, count: 40)))
            return (CryptoEngine(machine: machine, store: store, transport: client), store)
        }
        let (aliceEngine, _) = try engine("a"), (bobEngine, bobStore) = try engine("b")
        let aliceDevice = try await aliceEngine.ensureDevice(alice, deviceID: try DeviceID("RA\(suffix)"), displayName: "alice")
        let bobDevice = try await bobEngine.ensureDevice(bob, deviceID: try DeviceID("RB\(suffix)"), displayName: "bob")

        let created = try await client.request(.POST, "/_matrix/client/v3/createRoom", as: .init(userID: alice), body: [
            "preset": "private_chat", "invite": [.string(bob.rawValue)],
            "initial_state": [["type": "m.room.encryption", "state_key": "", "content": ["algorithm": .string(EncryptionAlgorithm.megolm)]]],
        ])
        let room = try RoomID(try #require(created["room_id"]?.stringValue))
        _ = try await client.request(.POST, "/_matrix/client/v3/join/\(HomeserverClient.encode(room.rawValue))", as: .init(userID: bob), body: [:])
        try await aliceEngine.updateRoom(room, encryption: RoomEncryption(algorithm: EncryptionAlgorithm.megolm), members: [alice: "join", bob: "join"])

        let eventID = try await aliceEngine.send(
            roomID: room, sender: alice, type: "m.room.message", content: ["msgtype": "m.text", "body": "through Synapse"], txnID: "rt\(suffix)")

        // Bob's device collects its to-device messages (/sync as that device) and fetches the event.
        let sync = try await client.request(.GET, "/_matrix/client/v3/sync", query: [("timeout", "0")], as: .init(userID: bob, deviceID: bobDevice))
        let toDevice = try (sync["to_device"]?["events"]?.arrayValue ?? []).map { event in
            ToDeviceEvent(
                type: event["type"]?.stringValue ?? "", sender: try UserID(event["sender"]?.stringValue ?? ""), content: event["content"] ?? [:],
                toUserID: bob, toDeviceID: bobDevice)
        }
        #expect(toDevice.map(\.type) == ["m.room.encrypted"])
        #expect(toDevice.first?.sender == alice)
        let event = try await client.request(
            .GET, "/_matrix/client/v3/rooms/\(HomeserverClient.encode(room.rawValue))/event/\(HomeserverClient.encode(eventID.rawValue))",
            as: .init(userID: bob))
        #expect(event["content"]?["device_id"]?.stringValue == aliceDevice.rawValue)
        let step = try await bobEngine.machine.process(AppserviceTransaction(events: [event], toDevice: toDevice))
        await bobStore.save(step.changes)
        #expect(step.toDevice.map(\.type) == ["m.room_key"])
        #expect(step.toDevice.first?.failure == nil)
        #expect(step.roomEvents.count == 1)
        #expect(try step.roomEvents.first?.result.get().content["body"]?.stringValue == "through Synapse")
    }
}
