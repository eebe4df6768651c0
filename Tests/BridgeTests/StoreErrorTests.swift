import MatrixCrypto
import MatrixModels
import Olm
import Testing

/// The database going away while a to-device message is handled must fail the whole transaction
/// (which is then held and journaled with its to-device part), never be recorded as that message's
/// failure: that would commit the message as handled, and a room key in it would be lost. A row that
/// does not read fails only that message.
@Suite("Store errors on the to-device path")
struct StoreErrorTests {
    /// A machine on a store whose reads can be made to fail, with one puppet device, its keys accepted.
    static func puppet() async throws -> (ForgetfulStore, CryptoMachine, KeysUpload) {
        let store = ForgetfulStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "e", count: 44)))
        let (changes, upload) = try await machine.createDevice(userID: try UserID("@puppet:bridge.test"), deviceID: try DeviceID("P"))
        try await store.save(changes)
        try await store.save(try await machine.confirmUpload(upload))
        return (store, machine, upload)
    }

    @Test("reading the sender's device list fails after decryption: the step throws, nothing is committed; then the room key is stored")
    func deviceListReadFailsTheStep() async throws {
        let (store, machine, upload) = try await Self.puppet()
        let puppet = upload.userID, device = upload.deviceID
        let curve = try #require(upload.deviceKeys?["keys"]?["curve25519:P"]?.stringValue)
        let ed = try #require(upload.deviceKeys?["keys"]?["ed25519:P"]?.stringValue)
        let otk = try #require(upload.oneTimeKeys.first?.value["key"]?.stringValue)
        let remote = try Account.create(), sender = try UserID("@remote:elsewhere.test"), senderDevice = try DeviceID("R")
        let group = try OutboundGroupSession.create()
        let payload: JSONValue = [
            "type": "m.room_key", "sender": .string(sender.rawValue), "recipient": .string(puppet.rawValue),
            "recipient_keys": ["ed25519": .string(ed)], "keys": ["ed25519": .string(remote.identityKeys.ed25519)],
            "sender_device_keys": try KeysUpload.signedDeviceKeys(of: remote, userID: sender, deviceID: senderDevice),
            "content": ["algorithm": .string(EncryptionAlgorithm.megolm), "room_id": "!room:elsewhere.test", "session_id": .string(group.sessionID),
                        "session_key": .string(group.sessionKey)],
        ]
        let message = try Session.outbound(account: remote, theirIdentityKey: curve, theirOneTimeKey: otk).encrypt(payload.serialized())
        let event = ToDeviceEvent(
            type: "m.room.encrypted", sender: sender,
            content: ["algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(remote.identityKeys.curve25519),
                      "ciphertext": [.init(stringLiteral: curve): ["type": .integer(Int64(message.kind.rawValue)), "body": .string(message.ciphertext)]]],
            toUserID: puppet, toDeviceID: device)

        await store.failDeviceReads(true)
        await #expect(throws: DatabaseDown.self) { _ = try await machine.process(AppserviceTransaction(toDevice: [event])) }
        #expect(await store.saveCount == 2, "nothing may be committed for the failed step")
        await store.failDeviceReads(false)
        // The transaction again (as the journal replays it): the same ciphertext decrypts, the key is kept.
        let step = try await machine.process(AppserviceTransaction(toDevice: [event]))
        #expect(step.toDevice.first?.failure == nil)
        #expect(step.changes.inboundGroupSessions.map(\.sessionID) == [group.sessionID])
    }

    /// An Olm pre-key message with an empty payload from a new remote device to the puppet of ``puppet()``.
    static func olmMessage(to upload: KeysUpload) throws -> ToDeviceEvent {
        let curve = try #require(upload.deviceKeys?["keys"]?["curve25519:P"]?.stringValue)
        let otk = try #require(upload.oneTimeKeys.first?.value["key"]?.stringValue)
        let remote = try Account.create()
        let message = try Session.outbound(account: remote, theirIdentityKey: curve, theirOneTimeKey: otk).encrypt("{}")
        return ToDeviceEvent(
            type: "m.room.encrypted", sender: try UserID("@remote:elsewhere.test"),
            content: ["algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(remote.identityKeys.curve25519),
                      "ciphertext": [.init(stringLiteral: curve): ["type": .integer(Int64(message.kind.rawValue)), "body": .string(message.ciphertext)]]],
            toUserID: upload.userID, toDeviceID: upload.deviceID)
    }

    @Test("reading Olm sessions fails: the database away fails the step, a bad row only the message; then the same message decrypts")
    func olmSessionReadFailsTheStep() async throws {
        let (store, machine, upload) = try await Self.puppet()
        let event = try Self.olmMessage(to: upload)

        await store.failOlmSessionReads(with: DatabaseDown())
        await #expect(throws: DatabaseDown.self) { _ = try await machine.process(AppserviceTransaction(toDevice: [event])) }
        // A row that does not read is this message's failure, not the stream's: the step goes on.
        await store.failOlmSessionReads(with: BadRow())
        let refused = try await machine.process(AppserviceTransaction(toDevice: [event]))
        guard case .malformed = refused.toDevice.first?.failure else {
            Issue.record("expected the message alone to fail, got \(String(describing: refused.toDevice.first?.failure))")
            return
        }
        await store.failOlmSessionReads(with: nil)
        let step = try await machine.process(AppserviceTransaction(toDevice: [event]))
        // Decrypted (a new session, its one-time key spent); the empty payload is then refused on its own terms.
        #expect(step.changes.olmSessions.count == 1)
        guard case .payloadMismatch = step.toDevice.first?.failure else {
            Issue.record("expected the payload to be refused after decryption, got \(String(describing: step.toDevice.first?.failure))")
            return
        }
    }
}
