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

@Suite("Trust: senders judged unknown_device are queried after the commit")
struct TrustFollowUpTests {
    @Test("an event from a device never queried is unknown_device; the bot then fetches the sender's devices, and the next event is judged on them")
    func queriesUnjudgedSender() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(AppServiceMigrations.all + CryptoStoreMigrations.all + BridgeMigrations.all, on: client)
        let hs = FakeHomeserver()
        await hs.register(party: "bob")
        let cipher = try StoreCipher(secret: String(repeating: "u", count: 44))
        let store = PostgresCryptoStore(client: client, cipher: cipher)
        let bob = try UserID("@bob:localhost"), bobDevice = try DeviceID("BOBPG")
        var settings = CryptoSettings()
        settings.trustAnchor = bob
        let engine = CryptoEngine(
            machine: CryptoMachine(store: store, cipher: cipher, settings: settings), store: store, transport: FakeTransport(homeserver: hs),
            senderQueryInterval: 0)
        try await engine.ensureDevice(bob, deviceID: bobDevice, displayName: "bob")
        let followUps = CryptoFollowUps(engine: engine)
        let running = Task { try await followUps.run() }
        let users = LocalUsers(bot: bob, puppetNamespaceRegex: "@sb_.+:localhost")
        let outbox = Outbox(client: client, cipher: cipher)
        let handler = CryptoTransactionHandler(
            engine: engine, store: store, followUps: followUps, isLocal: { users.isLocal($0) }, outbox: (outbox, users))
        let processor = SerializedTransactionProcessor(PostgresTransactionProcessor(client: client, handler: handler), lock: engine.lock)
        let logger = Logger(label: "test")

        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        try await CrossSigner(alice.user).publish(on: hs, signing: alice.device)
        let room = try await encryptedRoom("!judge", on: hs, members: [alice.user, bob])
        try await alice.sync()
        var seen = 0
        /// Alice sends `body`; Bob's pipeline gets the new timeline and to-device messages as one
        /// transaction. Returns the trust of the delivered message.
        func deliver(_ body: String, txnID: String) async throws -> JSONValue? {
            _ = try await alice.send(body, in: room)
            let (keys, _) = await hs.drain(party: "bob", devices: [(bob, bobDevice)])
            let timeline = await hs.timeline
            defer { seen = timeline.count }
            _ = try await processor.process(
                txnID: txnID, body: [], AppserviceTransaction(events: Array(timeline[seen...]), toDevice: keys), logger: logger)
            let deliveries = try await outbox.entries(after: 0, limit: 50).filter { $0.event["content"]?["body"] == .string(body) }
            return deliveries.first?.event["encryption"]?["trust"]
        }
        #expect(try await deliver("first", txnID: "1") == "unknown_device")
        var known: [VerifiedDeviceKeys] = []
        for _ in 0..<200 where known.isEmpty {
            try await Task.sleep(for: .milliseconds(20))
            known = try await store.devices(userIDs: [alice.user])[alice.user] ?? []
        }
        #expect(known.map(\.deviceID) == [alice.device], "the follow-up fetched the sender's devices")
        #expect(try await deliver("second", txnID: "2") == "cross_signed")
        running.cancel()
        await TestDatabase.drop(client, name)
    }
}
