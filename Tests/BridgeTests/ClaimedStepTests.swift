import AppService
import Bridge
import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Olm
import Postgres
import Store
import TestSupport
import Testing

/// The crypto handler runs its step while the txn id's claim is on its way to PostgreSQL, and writes
/// only once the claim succeeded: a duplicate's step is dropped and leaves nothing.
@Suite("Crypto pipeline on PostgreSQL: the step runs while the txn id is claimed")
struct ClaimedStepTests {
    /// A claim answered only when the test says so, with the given answer; claimed, the txn id row
    /// is inserted as the processor's claim does (the log row refers to it).
    final class Gate: Sendable {
        let (stream, continuation) = AsyncStream<Bool>.makeStream()
        func claim(_ txnID: String, on connection: PostgresConnection) -> @Sendable () async throws -> Bool {
            let stream = stream
            return {
                for await answer in stream {
                    if answer { try await connection.execute("INSERT INTO sealbridge_appservice_transactions (txn_id) VALUES (\(txnID))") }
                    return answer
                }
                return false
            }
        }
        func answer(_ claimed: Bool) { continuation.yield(claimed) }
    }

    static func waitUntil(_ condition: () async -> Bool) async throws -> Bool {
        for _ in 0..<1000 {
            if await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test("the step is done before the claim is answered; a claim answered false writes nothing, one answered true commits")
    func stepBeforeClaim() async throws {
        let pipeline = try await CrashSafetyTests.Pipeline.make(roomID: "!claimed", message: "claimed first")
        let client = pipeline.client, machine = pipeline.machine, handler = pipeline.handler, transaction = pipeline.transaction
        let before = try await CrashSafetyTests.snapshot(client)

        for answer in [false, true] {
            let steps = await machine.processedSteps
            let gate = Gate()
            let handled = Task {
                try await client.withTransaction { connection in
                    try await handler.handle(transaction, txnID: "claimed", connection: connection, claimed: gate.claim("claimed", on: connection), logger: Logger(label: "test")) != nil
                }
            }
            // Without the overlap the step would wait for the claim, which waits for this test.
            #expect(try await Self.waitUntil { await machine.processedSteps == steps + 1 }, "the step did not run before the claim was answered")
            gate.answer(answer)
            #expect(try await handled.value == answer)
            let after = try await CrashSafetyTests.snapshot(client)
            if answer {
                #expect(after.contains("sealbridge_inbound_group_sessions=1"))
                #expect(after.contains("sealbridge_megolm_replay=1"))
                #expect(after.contains("sealbridge_transaction_log=1"))
            } else {
                #expect(after == before, "a step whose claim failed wrote something")
            }
        }
        await TestDatabase.drop(client, pipeline.name)
    }

    @Test("a step that fails for a duplicate answers duplicate (nil), not the step's error; claimed, the error is thrown")
    func failedStepOfDuplicate() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(AppServiceMigrations.all + CryptoStoreMigrations.all, on: client)
        let cipher = try StoreCipher(secret: String(repeating: "e", count: 44))
        // The machine reads a store whose Olm session reads fail (the database away); nothing is
        // written through the handler's PostgreSQL store in this test.
        let (memory, machine, upload) = try await StoreErrorTests.puppet()
        let engine = CryptoEngine(machine: machine, store: memory, transport: FakeTransport(homeserver: FakeHomeserver()))
        let handler = CryptoTransactionHandler(
            engine: engine, store: PostgresCryptoStore(client: client, cipher: cipher), followUps: CryptoFollowUps(engine: engine))
        let event = try StoreErrorTests.olmMessage(to: upload)
        await memory.failOlmSessionReads(with: DatabaseDown())
        let before = try await CrashSafetyTests.snapshot(client)

        let duplicate = try await client.withTransaction { connection in
            try await handler.handle(
                AppserviceTransaction(toDevice: [event]), txnID: "dup", connection: connection, claimed: { false }, logger: Logger(label: "test"))
        }
        #expect(duplicate == nil)
        await #expect(throws: DatabaseDown.self) {
            _ = try await client.withTransaction { connection in
                try await handler.handle(
                    AppserviceTransaction(toDevice: [event]), txnID: "new", connection: connection, claimed: { true }, logger: Logger(label: "test"))
            }
        }
        #expect(try await CrashSafetyTests.snapshot(client) == before)
        await TestDatabase.drop(client, name)
    }
}
