import AppService
import Foundation
import Hummingbird
import HummingbirdTesting
import MatrixModels
import Postgres
import Testing
import TransactionCorpus

/// PUTs every corpus case to the transaction endpoint of an application running `handler`, and after
/// each one a normal transaction, which must still get its 200: the daemon stays alive and nothing after
/// a bad body is lost.
///
/// Checks each answer (status, errcode) and what `sealbridge_transaction_log` recorded, so `handler` must
/// log through ``TransactionLog`` (it does, and so does the crypto handler, as its first step). A refused
/// case must leave no trace.
/// - Parameter handler: The handler under test: ``TransactionLog`` here; the full crypto handler can be
///   run over the same cases.
func runTransactionCorpus(
    _ cases: [TransactionCorpus.Case], handler: any TransactionHandler, harness: Harness
) async throws {
    try await harness.application(handler: handler).test(.router) { client in
        for corpusCase in cases {
            let name = corpusCase.name, txnID = "corpus-\(corpusCase.name)"
            try await client.execute(
                uri: "/_matrix/app/v1/transactions/\(txnID)", method: .put, headers: authorized, body: ByteBuffer(bytes: corpusCase.body)
            ) { response in
                #expect(response.status.code == corpusCase.expected.status, "\(name): \(String(buffer: response.body))")
                if let errcode = corpusCase.expected.errcode {
                    #expect(json(response.body)["errcode"] == errcode, "\(name)")
                }
            }
            let logged = try await harness.loggedCounts(txnID)
            if let counts = corpusCase.expected.counts {
                #expect(logged == counts, "\(name)")
            } else {
                #expect(logged == nil, "\(name)")
                #expect(try await !harness.committedTransactionIDs().contains(txnID), "\(name)")
            }
            let next = "after-\(corpusCase.name)"
            try await client.execute(uri: "/_matrix/app/v1/transactions/\(next)", method: .put, headers: authorized, body: body(synapseTransaction)) {
                #expect($0.status == .ok, "after \(name)")
            }
            #expect(try await harness.loggedCounts(next)?.values["events"] == 2, "after \(name)")
        }
    }
}

extension Harness {
    /// What the transaction log recorded for `txnID`, nil if there is no row.
    func loggedCounts(_ txnID: String) async throws -> TransactionCorpus.Counts? {
        let columns = TransactionCorpus.Counts.names.joined(separator: ", ")
        guard let row = try await client.query(
            "SELECT \(unescaped: columns), skipped::text AS skipped FROM sealbridge_transaction_log WHERE txn_id = \(txnID)"
        ).first else { return nil }
        var values: [String: Int] = [:]
        for name in TransactionCorpus.Counts.names { values[name] = try row.decode(Int.self, name) }
        var skipped: [String: Int] = [:]
        for (reason, count) in try JSONValue.parse(try row.decode(String.self, "skipped")).objectValue ?? [:] {
            skipped[reason] = count.integerValue.map(Int.init)
        }
        return TransactionCorpus.Counts(values: values, skipped: skipped)
    }
}

@Suite("Front door: transaction corpus")
struct TransactionCorpusFrontDoorTests {
    @Test("every corpus case gets its answer and logged counts; a normal transaction after each still gets 200")
    func corpus() async throws {
        let harness = try await Harness.make()
        try await runTransactionCorpus(try TransactionCorpus.cases(), handler: TransactionLog(), harness: harness)
        await harness.close()
    }
}
