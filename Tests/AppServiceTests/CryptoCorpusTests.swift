import AppService
import Bridge
import Foundation
import Hummingbird
import HummingbirdTesting
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import Testing
import TransactionCorpus

@Suite("Front door: the corpus through the full crypto handler on PostgreSQL")
struct CryptoCorpusTests {
    /// The daemon's handler (machine, PostgreSQL store, sealed outbox), with a homeserver that does not
    /// answer: nothing in a transaction may need it.
    static func cryptoHandler(_ harness: Harness) throws -> (CryptoTransactionHandler, PostgresCryptoStore, Outbox) {
        let cipher = try StoreCipher(secret: String(repeating: "c", count: 44))
        let store = PostgresCryptoStore(client: harness.client, cipher: cipher)
        let engine = CryptoEngine(
            machine: CryptoMachine(store: store, cipher: cipher), store: store,
            transport: HomeserverClient(baseURL: "http://127.0.0.1:1", asToken: "unused"))
        let users = LocalUsers(bot: try UserID("@bot:localhost"), puppetNamespaceRegex: "@sb_.+:localhost")
        let outbox = Outbox(client: harness.client, cipher: cipher)
        return (
            CryptoTransactionHandler(
                engine: engine, store: store, followUps: CryptoFollowUps(engine: engine), isLocal: { users.isLocal($0) }, outbox: (outbox, users)),
            store, outbox)
    }

    @Test("every corpus case gets the same answer and counts with the crypto handler; a normal transaction after each still gets 200")
    func corpus() async throws {
        let harness = try await Harness.make()
        let (handler, _, _) = try Self.cryptoHandler(harness)
        try await runTransactionCorpus(try TransactionCorpus.cases(), handler: handler, harness: harness)
        await harness.close()
    }

    @Test("NUL in an encrypted event's content, key names and sender key, with a well-formed unknown session: parked (sealed), committed, 200")
    func nulEventsPark() async throws {
        let harness = try await Harness.make()
        let (handler, store, outbox) = try Self.cryptoHandler(harness)
        let session = String(repeating: "A", count: 43)
        let body = #"""
            {"events":[
              {"type":"m.room.encrypted","room_id":"!r:localhost","sender":"@alice:localhost","event_id":"$n1","origin_server_ts":1,
               "content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgA\u0000","session_id":"\#(session)","sender_key":"\u0000","device_id":"D\u0000","k\u0000ey":"v\u0000"}},
              {"type":"m.room.encrypted","room_id":"!r:localhost","sender":"@alice:localhost","event_id":"$n2","origin_server_ts":2,
               "content":{"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AwgA","session_id":"\#(session.dropLast())\u0000","sender_key":"K"}},
              {"type":"m.room.message","room_id":"!r:localhost","sender":"@alice:localhost","event_id":"$n3","content":{"body":"plain \u0000 text","k\u0000":1}}
            ],
             "de.sorunome.msc2409.to_device":[{"type":"m.room_key.withheld","sender":"@alice:localhost","to_user_id":"@sb_1:localhost","to_device_id":"D",
               "content":{"room_id":"!r:localhost","session_id":"\#(session)","code":"m.unverified\u0000","reason":"\u0000","sender_key":"\u0000"}}]}
            """#
        try await harness.application(handler: handler).test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/nul", method: .put, headers: authorized, body: ByteBuffer(string: body)) {
                #expect($0.status == .ok, "\(String(buffer: $0.body))")
            }
        }
        #expect(try await harness.committedTransactionIDs() == ["nul"])
        #expect(try await store.parkedEvents(sessionIDs: [session]).map(\.eventID) == ["$n1"])
        let delivered = try await outbox.entries(after: 0, limit: 10).map(\.event)
        #expect(delivered.map { $0["event_id"] } == ["$n3", "$n2"])
        #expect(delivered.first?["content"]?["body"] == "plain \u{0} text")
        #expect(delivered.last?["encryption"]?["error"]?["code"] == "malformed")
        await harness.close()
    }
}
