import AppService
import Bridge
import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

@Suite("Undecryptable events and late keys, on PostgreSQL with the outbox")
struct UndecryptableDeliveryTests {
    @Test("an event whose key does not come is delivered as undecryptable with its reason, once; when the key comes it is delivered again, decrypted and late")
    func surfacedThenLate() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(AppServiceMigrations.all + CryptoStoreMigrations.all + BridgeMigrations.all, on: client)
        let hs = FakeHomeserver()
        await hs.register(party: "bob")
        let cipher = try StoreCipher(secret: String(repeating: "u", count: 44))
        let store = PostgresCryptoStore(client: client, cipher: cipher)
        let bob = try UserID("@bob:localhost"), bobDevice = try DeviceID("BOBPG")
        let users = LocalUsers(bot: bob, puppetNamespaceRegex: "@sb_.+:localhost")
        let outbox = Outbox(client: client, cipher: cipher)
        let engine = CryptoEngine(
            machine: CryptoMachine(store: store, cipher: cipher), store: store, transport: FakeTransport(homeserver: hs),
            committer: PostgresStepCommitter(client: client, store: store, outbox: (outbox, users)), senderQueryInterval: 0)
        try await engine.ensureDevice(bob, deviceID: bobDevice, displayName: "bob")
        let handler = CryptoTransactionHandler(
            engine: engine, store: store, followUps: CryptoFollowUps(engine: engine), isLocal: { users.isLocal($0) }, outbox: (outbox, users))
        let processor = SerializedTransactionProcessor(PostgresTransactionProcessor(client: client, handler: handler), lock: engine.lock)
        let logger = Logger(label: "test")

        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let room = try await encryptedRoom("!late", on: hs, members: [alice.user, bob])
        try await alice.sync()
        _ = try await alice.send("sent before its key arrived", in: room)
        // The homeserver delivers the event; the room key (to-device) is held back.
        let (heldKeys, _) = await hs.drain(party: "bob", devices: [(bob, bobDevice)])
        #expect(heldKeys.count == 1)
        _ = try await processor.process(txnID: "1", body: [], AppserviceTransaction(events: await hs.timeline), logger: logger)
        #expect(try await outbox.entries(after: 0, limit: 10).filter { $0.event["type"] == "m.room.encrypted" }.isEmpty, "parked, not delivered yet")

        // Not yet due: nothing surfaces.
        #expect(try await engine.surfaceUndecryptable(olderThan: 3600).roomEvents.isEmpty)
        let surfaced = try await engine.surfaceUndecryptable(olderThan: -1)
        #expect(surfaced.roomEvents.count == 1)
        #expect(try await engine.surfaceUndecryptable(olderThan: -1).roomEvents.isEmpty, "surfaced once")
        var deliveries = try await outbox.entries(after: 0, limit: 20).filter { $0.event["encryption"]?["encrypted"] == true }
        #expect(deliveries.count == 1)
        #expect(deliveries.first?.event["encryption"]?["decrypted"] == false)
        #expect(deliveries.first?.event["encryption"]?["error"]?["reason"] == "unknown_session")
        #expect(deliveries.first?.event["late"] == nil)

        // The key arrives: the same event again, decrypted, late.
        _ = try await processor.process(txnID: "2", body: [], AppserviceTransaction(toDevice: heldKeys), logger: logger)
        deliveries = try await outbox.entries(after: 0, limit: 20).filter { $0.event["encryption"]?["encrypted"] == true }
        #expect(deliveries.map { $0.event["event_id"] } == [deliveries[0].event["event_id"], deliveries[0].event["event_id"]])
        #expect(deliveries.last?.event["late"] == true)
        #expect(deliveries.last?.event["content"]?["body"] == "sent before its key arrived")
        #expect(try await store.parkedEvents(sessionIDs: Set([deliveries.last?.event["encryption"]?["session_id"]?.stringValue ?? ""])).isEmpty)
        await TestDatabase.drop(client, name)
    }
}
