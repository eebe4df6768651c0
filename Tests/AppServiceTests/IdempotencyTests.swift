import AppService
import Hummingbird
import HummingbirdTesting
import Logging
import MatrixModels
import Postgres
import Testing

/// The body Synapse 1.163 sends with MSC2409 and MSC3202 on (shape from homeserver-facts.md).
let synapseTransaction = """
    {"events":[{"type":"m.room.message","room_id":"!8enJMLhcAbCdEf","sender":"@alice:localhost","user_id":"@alice:localhost",
      "age":5,"event_id":"$e1","content":{"msgtype":"m.text","body":"hi"}},
      {"type":"m.room.encrypted","room_id":"!8enJMLhcAbCdEf","sender":"@alice:localhost","event_id":"$e2","content":{"algorithm":"m.megolm.v1.aes-sha2"}}],
     "de.sorunome.msc2409.ephemeral":[],
     "de.sorunome.msc2409.to_device":[{"type":"m.room.encrypted","sender":"@alice:localhost","content":{},
        "to_user_id":"@sealbridge_1:localhost","to_device_id":"SB1"}],
     "org.matrix.msc3202.device_lists":{"changed":["@alice:localhost"],"left":[]},
     "org.matrix.msc3202.device_one_time_keys_count":{"@sealbridge_1:localhost":{"SB1":{"signed_curve25519":50}}},
     "org.matrix.msc3202.device_one_time_key_counts":{"@sealbridge_1:localhost":{"SB1":{"signed_curve25519":50}}},
     "org.matrix.msc3202.device_unused_fallback_key_types":{"@sealbridge_1:localhost":{"SB1":["signed_curve25519"]}}}
    """

/// Counts calls, optionally failing once after writing, to prove rollback.
final class CountingHandler: TransactionHandler, @unchecked Sendable {
    // @unchecked: `calls` and `failNext` are guarded by `lock`.
    private let lock = NSLock()
    private var calls = 0
    private var failNext: Bool
    let delay: Duration

    init(failNext: Bool = false, delay: Duration = .zero) {
        self.failNext = failNext
        self.delay = delay
    }

    var count: Int { lock.withLock { calls } }

    func handle(_ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger) async throws -> AfterCommit {
        _ = try await TransactionLog().handle(transaction, txnID: txnID, connection: connection, logger: logger)
        if delay > .zero { try await Task.sleep(for: delay) }
        let fail = lock.withLock { () -> Bool in
            calls += 1
            defer { failNext = false }
            return failNext
        }
        if fail { throw CancellationError() }
        return .nothing
    }
}

import Foundation

@Suite("Front door: durable idempotency")
struct IdempotencyTests {
    @Test("Synapse's body is decoded and logged with its counts; a repeat is answered 200 and not processed again")
    func duplicateNotReprocessed() async throws {
        let harness = try await Harness.make()
        let handler = CountingHandler()
        try await harness.application(handler: handler).test(.router) { client in
            for _ in 0..<3 {
                try await client.execute(uri: "/_matrix/app/v1/transactions/17", method: .put, headers: authorized, body: body(synapseTransaction)) {
                    #expect($0.status == .ok)
                }
            }
        }
        #expect(handler.count == 1)
        let row = try #require(try await harness.client.query(
            "SELECT events, to_device, device_lists_changed, otk_count_devices, fallback_devices FROM sealbridge_transaction_log WHERE txn_id = \("17")").first)
        #expect(try row.decode(Int.self, "events") == 2)
        #expect(try row.decode(Int.self, "to_device") == 1)
        #expect(try row.decode(Int.self, "device_lists_changed") == 1)
        #expect(try row.decode(Int.self, "otk_count_devices") == 1)
        #expect(try row.decode(Int.self, "fallback_devices") == 1)
        await harness.close()
    }

    @Test("after a restart on the same database, a repeated txn id is still not processed")
    func acrossRestart() async throws {
        let harness = try await Harness.make()
        let first = CountingHandler(), second = CountingHandler()
        try await harness.application(handler: first).test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/40", method: .put, headers: authorized, body: body(synapseTransaction)) {
                #expect($0.status == .ok)
            }
        }
        try await harness.application(handler: second).test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/40", method: .put, headers: authorized, body: body(synapseTransaction)) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/_matrix/app/v1/transactions/41", method: .put, headers: authorized, body: body(synapseTransaction)) {
                #expect($0.status == .ok)
            }
        }
        #expect(first.count == 1)
        #expect(second.count == 1)
        #expect(try await harness.committedTransactionIDs() == ["40", "41"])
        await harness.close()
    }

    @Test("concurrent duplicate PUTs of one txn id are processed once")
    func concurrentDuplicates() async throws {
        let harness = try await Harness.make()
        let handler = CountingHandler(delay: .milliseconds(100))
        try await harness.application(handler: handler).test(.router) { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await client.execute(uri: "/_matrix/app/v1/transactions/99", method: .put, headers: authorized, body: body(synapseTransaction)) { $0.status }
                    }
                }
                for try await status in group { #expect(status == .ok) }
            }
        }
        #expect(handler.count == 1)
        #expect(try await harness.loggedTransactions() == ["99": 2])
        await harness.close()
    }

    @Test("a handler failure answers 500 and leaves nothing behind; the retry then succeeds once")
    func failureRollsBack() async throws {
        let harness = try await Harness.make()
        let handler = CountingHandler(failNext: true)
        try await harness.application(handler: handler).test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/7", method: .put, headers: authorized, body: body(synapseTransaction)) { response in
                #expect(response.status == .internalServerError)
                #expect(json(response.body)["errcode"] == "M_UNKNOWN")
            }
            #expect(try await harness.committedTransactionIDs().isEmpty)
            #expect(try await harness.loggedTransactions().isEmpty)
            try await client.execute(uri: "/_matrix/app/v1/transactions/7", method: .put, headers: authorized, body: body(synapseTransaction)) {
                #expect($0.status == .ok)
            }
        }
        #expect(handler.count == 2)
        #expect(try await harness.loggedTransactions() == ["7": 2])
        await harness.close()
    }
}
