import AppService
import Foundation
import Logging
import MatrixModels
import Postgres
import Synchronization
import Testing

/// The processor hands the txn id's claim to the handler instead of waiting for it first, so a
/// handler's step and the claim's round trip overlap; the handler writes only once claimed.
@Suite("Front door: the handler starts while the txn id is claimed")
struct ClaimOverlapTests {
    /// Notes that it started, then either waits for the claim and logs the transaction as the front
    /// door does, or breaks the contract: never asks for the claim and answers as if it had.
    final class ScriptedHandler: TransactionHandler {
        enum Mode {
            case waitsForClaim
            case skipsClaim(answering: Bool)
        }
        let mode: Mode
        let started = Mutex(0)

        init(_ mode: Mode) { self.mode = mode }

        func handle(_ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger) async throws -> AfterCommit {
            try await TransactionLog().handle(transaction, txnID: txnID, connection: connection, logger: logger)
        }

        func handle(
            _ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, claimed: @escaping @Sendable () async throws -> Bool,
            logger: Logger
        ) async throws -> AfterCommit? {
            started.withLock { $0 += 1 }
            switch mode {
            case .waitsForClaim:
                guard try await claimed() else { return nil }
                return try await handle(transaction, txnID: txnID, connection: connection, logger: logger)
            case .skipsClaim(let answer):
                return answer ? .nothing : nil
            }
        }
    }

    struct Rollback: Error {}

    /// Holds txn id `txnID`, uncommitted, on a connection of its own until `release` answers: true
    /// commits it, false rolls it back. The processor's claim of the same id waits on its row lock.
    static func holdClaim(_ txnID: String, client: PostgresClient, held: AsyncStream<Void>.Continuation, release: AsyncStream<Bool>)
        -> Task<Void, any Error>
    {
        Task {
            do {
                try await client.withTransaction { connection in
                    try await connection.execute("INSERT INTO sealbridge_appservice_transactions (txn_id) VALUES (\(txnID))")
                    held.yield()
                    var commit = false
                    for await answer in release {
                        commit = answer
                        break
                    }
                    if !commit { throw Rollback() }
                }
            } catch is Rollback {}
        }
    }

    @Test("the handler starts before the claim is answered; it processes when the other claim rolls back, answers duplicate when it commits")
    func handlerStartsBeforeClaim() async throws {
        let harness = try await Harness.make()
        let transaction = try AppserviceTransaction.decode(Array(synapseTransaction.utf8))
        for otherCommits in [false, true] {
            let txnID = otherCommits ? "held-committed" : "held-rolled-back"
            let (held, heldContinuation) = AsyncStream<Void>.makeStream()
            let (release, releaseContinuation) = AsyncStream<Bool>.makeStream()
            let holder = Self.holdClaim(txnID, client: harness.client, held: heldContinuation, release: release)
            for await _ in held { break }
            let handler = ScriptedHandler(.waitsForClaim)
            let processor = PostgresTransactionProcessor(client: harness.client, handler: handler)
            let processing = Task { try await processor.process(txnID: txnID, body: [], transaction, logger: Logger(label: "test")) }
            var waited = 0
            while handler.started.withLock({ $0 }) == 0 && waited < 1000 {
                try await Task.sleep(for: .milliseconds(10))
                waited += 1
            }
            // Waiting for the claim first, the handler could not start while the other claim is held.
            #expect(handler.started.withLock { $0 } == 1, "the handler did not start while the claim waited")
            releaseContinuation.yield(otherCommits)
            try await holder.value
            let outcome = try await processing.value
            #expect(outcome == (otherCommits ? .duplicate : .processed))
            let logged = try await harness.loggedTransactions()
            #expect(logged[txnID] == (otherCommits ? nil : 2), "the log row is written only when this claim won")
        }
        await harness.close()
    }

    @Test("a handler that returns without the claim's answer fails the transaction: never a 200 for a transaction nothing processed")
    func skippedClaimFails() async throws {
        let harness = try await Harness.make()
        let transaction = try AppserviceTransaction.decode(Array(synapseTransaction.utf8))
        for claimedAnswer in [false, true] {
            let processor = PostgresTransactionProcessor(client: harness.client, handler: ScriptedHandler(.skipsClaim(answering: claimedAnswer)))
            await #expect(throws: ClaimContractError.self) {
                _ = try await processor.process(txnID: "skipped-\(claimedAnswer)", body: [], transaction, logger: Logger(label: "test"))
            }
        }
        #expect(try await harness.committedTransactionIDs().isEmpty)
        await harness.close()
    }
}
