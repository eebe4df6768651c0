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

/// Fails after the crypto handler wrote its changes: the transaction must roll back as a whole.
struct FailingAfterCrypto: TransactionHandler {
    let inner: CryptoTransactionHandler
    struct Crash: Error {}

    func handle(_ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger) async throws -> AfterCommit {
        _ = try await inner.handle(transaction, txnID: txnID, connection: connection, logger: logger)
        throw Crash()
    }
}

@Suite("Crypto pipeline on PostgreSQL: crash safety")
struct CrashSafetyTests {
    /// Row counts of every crypto table and the account pickle: what "unchanged" means.
    static func snapshot(_ client: PostgresClient) async throws -> [String] {
        var state: [String] = []
        for table in [
            "sealbridge_appservice_transactions", "sealbridge_olm_sessions", "sealbridge_inbound_group_sessions", "sealbridge_megolm_replay",
            "sealbridge_parked_events", "sealbridge_transaction_log",
        ] {
            let count = try await client.query("SELECT count(*) AS n FROM \(unescaped: table)").first!.decode(Int.self, "n")
            state.append("\(table)=\(count)")
        }
        state += try await client.query("SELECT md5(pickle) AS h FROM sealbridge_crypto_accounts ORDER BY user_id").map { try $0.decode(String.self, "h") }
        return state
    }

    /// Bob's device on a fresh PostgreSQL database behind the crypto handler, and the transaction that
    /// brings him Alice's first message in `roomID` (its Olm-wrapped room key and the Megolm event).
    struct Pipeline {
        let client: PostgresClient
        let name: String
        let machine: CryptoMachine
        let engine: CryptoEngine
        let handler: CryptoTransactionHandler
        let transaction: AppserviceTransaction

        static func make(roomID: String, message: String) async throws -> Pipeline {
            let (client, name) = try await TestDatabase.fresh()
            try await Migrator.migrate(AppServiceMigrations.all + CryptoStoreMigrations.all, on: client)
            let hs = FakeHomeserver()
            await hs.register(party: "bob")
            let cipher = try StoreCipher(secret: String(repeating: "p", count: 40))
            let store = PostgresCryptoStore(client: client, cipher: cipher)
            let machine = CryptoMachine(store: store, cipher: cipher)
            let engine = CryptoEngine(machine: machine, store: store, transport: FakeTransport(homeserver: hs))
            let bob = try UserID("@bob:localhost"), bobDevice = try DeviceID("BOBPG")
            try await engine.ensureDevice(bob, deviceID: bobDevice, displayName: "bob")
            let handler = CryptoTransactionHandler(engine: engine, store: store, followUps: CryptoFollowUps(engine: engine))
            let alice = try await Party("alice", on: hs, users: ["@alice:localhost"])
            let room = try await encryptedRoom(roomID, on: hs, members: [alice.user, bob])
            try await alice.sync()
            _ = try await alice.send(message, in: room)
            let (toDevice, _) = await hs.drain(party: "bob", devices: [(bob, bobDevice)])
            let transaction = AppserviceTransaction(events: await hs.timeline, toDevice: toDevice)
            return Pipeline(client: client, name: name, machine: machine, engine: engine, handler: handler, transaction: transaction)
        }
    }

    @Test("a failure after the crypto step, before commit, leaves nothing; the retry applies it once; a repeat is a no-op")
    func failureBeforeCommitAndRetry() async throws {
        let pipeline = try await Pipeline.make(roomID: "!pg", message: "durable")
        let client = pipeline.client, name = pipeline.name, engine = pipeline.engine, handler = pipeline.handler
        let transaction = pipeline.transaction
        let before = try await Self.snapshot(client)

        let crashing = SerializedTransactionProcessor(
            PostgresTransactionProcessor(client: client, handler: FailingAfterCrypto(inner: handler)), lock: engine.lock)
        await #expect(throws: FailingAfterCrypto.Crash.self) {
            _ = try await crashing.process(txnID: "41", body: [], transaction, logger: Logger(label: "test"))
        }
        #expect(try await Self.snapshot(client) == before)

        // The homeserver retries: now it commits, with the Olm session, the room key and the replay entry.
        let processor = SerializedTransactionProcessor(PostgresTransactionProcessor(client: client, handler: handler), lock: engine.lock)
        #expect(try await processor.process(txnID: "41", body: [], transaction, logger: Logger(label: "test")) == .processed)
        let after = try await Self.snapshot(client)
        #expect(after != before)
        #expect(after.contains("sealbridge_inbound_group_sessions=1"))
        #expect(after.contains("sealbridge_olm_sessions=1"))
        #expect(after.contains("sealbridge_megolm_replay=1"))

        // Committed but the 200 was lost (a kill between commit and response): the retry changes nothing.
        #expect(try await processor.process(txnID: "41", body: [], transaction, logger: Logger(label: "test")) == .duplicate)
        #expect(try await Self.snapshot(client) == after)
        await TestDatabase.drop(client, name)
    }
}
