import AppService
import Bridge
import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Olm
import Postgres
import Store

/// Megolm room events through the machine: transactions of 50 events from many senders and
/// sessions, decrypted with replay protection and committed (with the txn id, on PostgreSQL).
struct DecryptWorkload {
    var events: Int
    var senders: Int
    var perTransaction = 50
    /// The pickle secret of the machine (and of the store the caller makes for it).
    static let secret = String(repeating: "b", count: 44)

    func run(store: any CryptoStore, client: PostgresClient?) async throws -> BenchResult {
        let cipher = try StoreCipher(secret: Self.secret)
        let machine = CryptoMachine(store: store, cipher: cipher, settings: Bench.cryptoSettings)
        let bot = try UserID("@bench_bot:bench"), room = try RoomID("!bench")
        let (account, _) = try await machine.createDevice(userID: bot, deviceID: try DeviceID("BENCH"))
        try await store.save(account)

        // Senders share their sessions with us (as if by m.room_key): stored inbound sessions.
        var outbound: [(UserID, OutboundGroupSession)] = []
        var initialKeys: [String] = []
        var keys = CryptoChanges()
        for index in 0..<senders {
            let user = try UserID("@sender_\(index):bench"), session = try OutboundGroupSession.create()
            let inbound = try InboundGroupSession(sessionKey: session.sessionKey)
            keys.inboundGroupSessions.append(StoredInboundGroupSession(
                roomID: room, sessionID: session.sessionID, senderKey: "curve-\(index)", senderUserID: user,
                firstKnownIndex: 0, pickle: try cipher.pickle { try inbound.pickle(key: $0) }))
            outbound.append((user, session))
            initialKeys.append(session.sessionKey)
        }
        try await store.save(keys)
        var allEvents: [JSONValue] = []
        var ciphertexts: [(Int, String)] = []
        for n in 0..<events {
            let (user, session) = outbound[n % senders]
            let payload: JSONValue = ["type": "m.room.message", "room_id": .string(room.rawValue),
                                      "content": ["msgtype": "m.text", "body": .string("benchmark message number \(n) with some text in it")]]
            let ciphertext = try session.encrypt(payload.serialized())
            ciphertexts.append((n % senders, ciphertext))
            allEvents.append(["type": "m.room.encrypted", "room_id": .string(room.rawValue), "sender": .string(user.rawValue),
                              "event_id": .string("$bench\(n)"), "origin_server_ts": .integer(Int64(n)),
                              "content": ["algorithm": .string(EncryptionAlgorithm.megolm), "session_id": .string(session.sessionID),
                                          "ciphertext": .string(ciphertext), "sender_key": .string("curve-\(n % senders)"), "device_id": "D"]])
        }
        let ceilingBefore = try Self.decryptCeiling(initialKeys, ciphertexts.prefix(min(events, 3000)))

        let processor: (any TransactionProcessing)? = client.map { client in
            let engine = CryptoEngine(machine: machine, store: store, transport: BenchTransport())
            let handler = CryptoTransactionHandler(engine: engine, store: store as! PostgresCryptoStore, followUps: CryptoFollowUps(engine: engine))
            return SerializedTransactionProcessor(PostgresTransactionProcessor(client: client, handler: handler), lock: engine.lock)
        }
        var latencies: [Double] = []
        var decrypted = 0
        let logger = Logger(label: "bench")
        let cpu0 = Measure.cpuSeconds(), start = Measure.now()
        for (batch, offset) in stride(from: 0, to: events, by: perTransaction).enumerated() {
            let transaction = AppserviceTransaction(events: Array(allEvents[offset..<min(events, offset + perTransaction)]))
            let t0 = Measure.now()
            if let processor {
                _ = try await processor.process(txnID: "bench-\(batch)", body: [], transaction, logger: logger)
            } else {
                let step = try await machine.process(transaction)
                try await store.save(step.changes)
                decrypted += step.roomEvents.filter { (try? $0.result.get()) != nil }.count
            }
            latencies.append((Measure.now() - t0) * 1000)
        }
        let wall = Measure.now() - start, cpu = Measure.cpuSeconds() - cpu0
        // Sampled before and after the row, the ratio against the mean (the VM's speed drifts).
        let ceilingAfter = try Self.decryptCeiling(initialKeys, ciphertexts.prefix(min(events, 3000)))
        let ceiling = (ceilingBefore + ceilingAfter) / 2
        if let client {
            decrypted = try await client.query("SELECT count(*) AS n FROM sealbridge_megolm_replay").first!.decode(Int.self, "n")
        }
        guard decrypted == events else { throw BenchError("decrypted \(decrypted) of \(events) events") }
        return BenchResult(
            workload: "megolm decrypt through the machine", store: client == nil ? "memory" : "postgresql", operations: events, unit: "events",
            wallSeconds: wall, cpuSeconds: cpu, throughputPerSecond: Double(events) / wall,
            p50Milliseconds: Measure.percentile(latencies, 0.5), p99Milliseconds: Measure.percentile(latencies, 0.99),
            peakRSSMiB: Measure.peakRSSMiB(), ceilingPerSecond: ceiling,
            notes: "\(events / perTransaction) transactions of \(perTransaction) events, \(senders) sender sessions; ceiling = libolm decrypt on 1 core, the mean of samples before and after the row (\(Int(ceilingBefore.rounded())) / \(Int(ceilingAfter.rounded()))/s); latency per transaction")
    }

    /// Raw libolm: Megolm decryptions per second on one core (signature check included), same ciphertexts.
    static func decryptCeiling(_ sessionKeys: [String], _ ciphertexts: ArraySlice<(Int, String)>) throws -> Double {
        let inbound = try sessionKeys.map { try InboundGroupSession(sessionKey: $0) }
        let start = Measure.now()
        for (index, ciphertext) in ciphertexts { _ = try inbound[index].decryptWithLibolm(ciphertext) }
        return Double(ciphertexts.count) / (Measure.now() - start)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
