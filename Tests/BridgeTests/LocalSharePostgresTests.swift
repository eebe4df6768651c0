import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

@Suite("Sharing with local devices on PostgreSQL")
struct LocalSharePostgresTests {
    @Test("a puppet's key for the bot and another puppet is committed as one inbound copy and share records; a restarted machine reads the echo")
    func committedLocally() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let hs = FakeHomeserver()
        await hs.register(party: "bridge")
        let cipher = try StoreCipher(secret: String(repeating: "q", count: 40))
        let store = PostgresCryptoStore(client: client, cipher: cipher)
        let engine = CryptoEngine(machine: CryptoMachine(store: store, cipher: cipher), store: store, transport: FakeTransport(homeserver: hs))
        let bot = try UserID("@bot:localhost"), puppet = try UserID("@sb_1:localhost"), other = try UserID("@sb_2:localhost")
        for (index, user) in [bot, puppet, other].enumerated() {
            try await engine.ensureDevice(user, deviceID: try DeviceID("PG\(index)"), displayName: "local")
        }
        let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
        let room = try await encryptedRoom("!pgportal", on: hs, members: [alice.user, bot, puppet, other])
        try await alice.sync()
        try await engine.updateRoom(
            room, encryption: RoomEncryption(algorithm: EncryptionAlgorithm.megolm), members: [alice.user: "join", bot: "join", puppet: "join", other: "join"])
        let keysBefore = [await hs.oneTimeKeyCount(bot, try DeviceID("PG0")), await hs.oneTimeKeyCount(other, try DeviceID("PG2"))]
        let sentBefore = await hs.sentToDevice.count

        _ = try await engine.send(roomID: room, sender: puppet, type: "m.room.message", content: ["msgtype": "m.text", "body": "kept here"], txnID: "t1")

        let sent = await Array(hs.sentToDevice.dropFirst(sentBefore))
        #expect(sent.map { $0.to.userID } == [alice.user])
        #expect([await hs.oneTimeKeyCount(bot, try DeviceID("PG0")), await hs.oneTimeKeyCount(other, try DeviceID("PG2"))] == keysBefore)
        let record = try #require(try await store.outboundGroupSession(roomID: room, senderUserID: puppet))
        #expect(Set(record.shares.filter { $0.messageIndex == 0 }.map(\.userID)) == [alice.user, bot, other])
        let claims = try await store.inboundGroupSessions(roomID: room, sessionID: record.sessionID)
        let senderKeys = try #require(try await store.devices(userIDs: [puppet])[puppet]?.first)
        #expect(claims.map(\.senderKey) == [senderKeys.curve25519] && claims.map(\.senderEd25519) == [senderKeys.ed25519])
        #expect(claims.map(\.senderUserID) == [puppet])
        let olmRows = try await client.query("SELECT count(*) AS n FROM sealbridge_olm_sessions").first!.decode(Int.self, "n")
        #expect(olmRows == 1, "only the Olm session with Alice's device")

        // Another machine on the same database (a restart) decrypts the puppet's message as it comes back.
        let restarted = CryptoMachine(store: store, cipher: cipher)
        let step = try await restarted.process(AppserviceTransaction(events: await hs.timeline))
        #expect(step.bodies == ["kept here"])
        #expect(try await alice.sync().bodies == ["kept here"])
        await TestDatabase.drop(client, name)
    }
}
