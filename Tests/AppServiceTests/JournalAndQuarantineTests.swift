import AppService
import Bridge
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import Primitives
@testable import SealbridgeApp
import TestSupport
import Testing

/// A handler that fails while `failing` is set, and remembers what it processed.
final class SwitchableHandler: TransactionHandler, @unchecked Sendable {
    // @unchecked: every var is guarded by `lock`.
    private let lock = NSLock()
    private var failing: Bool
    private var processed: [(txnID: String, toDevice: Int)] = []

    init(failing: Bool) { self.failing = failing }

    func set(failing: Bool) { lock.withLock { self.failing = failing } }
    var seen: [(txnID: String, toDevice: Int)] { lock.withLock { processed } }

    struct Bug: Error, CustomStringConvertible { var description: String { "a bug that retrying does not fix" } }

    func handle(_ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger) async throws -> AfterCommit {
        _ = try await TransactionLog().handle(transaction, txnID: txnID, connection: connection, logger: logger)
        let fail = lock.withLock { failing }
        if fail { throw Bug() }
        lock.withLock { processed.append((txnID, transaction.toDevice.count + transaction.droppedToDevice)) }
        return .nothing
    }
}

/// A processor in front of another that acts as if the database were down while `down` is set.
final class Outage: TransactionProcessing, @unchecked Sendable {
    // @unchecked: `down` is guarded by `lock`.
    private let lock = NSLock()
    private var down = false
    let inner: any TransactionProcessing

    init(_ inner: any TransactionProcessing) { self.inner = inner }

    func set(down: Bool) { lock.withLock { self.down = down } }

    func process(txnID: String, body: [UInt8], _ transaction: AppserviceTransaction, logger: Logger) async throws -> TransactionOutcome {
        if lock.withLock({ down }) { throw PostgresError(code: .connectionFailed, message: "simulated outage") }
        return try await inner.process(txnID: txnID, body: body, transaction, logger: logger)
    }
}

struct TestSealing: TransactionSealing {
    let cipher: StoreCipher
    init(_ secret: String = String(repeating: "j", count: 44)) { cipher = try! StoreCipher(secret: secret) }
    func seal(_ bytes: [UInt8], context: String) throws -> [UInt8] { try cipher.seal(bytes, context: context) }
    func open(_ sealed: [UInt8], context: String) throws -> [UInt8] { try cipher.open(sealed, context: context) }
}

@Suite("Front door: journal while the database is away, quarantine for poison")
struct JournalAndQuarantineTests {
    static let logger = Logger(label: "test")

    static func body(_ toDevice: Bool, marker: String = "m") -> [UInt8] {
        let device = toDevice
            ? #","de.sorunome.msc2409.to_device":[{"type":"m.room.encrypted","sender":"@a:localhost","content":{},"to_user_id":"@sb_1:localhost","to_device_id":"D"}]"#
            : ""
        return Array(#"{"events":[{"type":"m.room.message","room_id":"!r","sender":"@a:localhost","event_id":"$\#(marker)","content":{"body":"\#(marker)"}}]\#(device)}"#.utf8)
    }

    static func decode(_ body: [UInt8]) throws -> AppserviceTransaction { try AppserviceTransaction.decode(body) }

    @Test("a transaction that keeps failing: errors, then quarantined with its first (richest) body and answered 200; admins can retry it once fixed")
    func poisonIsQuarantined() async throws {
        let harness = try await Harness.make()
        let handler = SwitchableHandler(failing: true)
        let notified = NotificationLog()
        let quarantine = TransactionQuarantine(client: harness.client, sealing: TestSealing(), threshold: 3, onQuarantine: { await notified.add($0) })
        let processor = PostgresTransactionProcessor(client: harness.client, handler: handler, quarantine: quarantine)
        // The first attempt carries a to-device message; the homeserver's retries carry the events only.
        let first = Self.body(true), retry = Self.body(false)
        await #expect(throws: SwitchableHandler.Bug.self) { _ = try await processor.process(txnID: "p1", body: first, try Self.decode(first), logger: Self.logger) }
        await #expect(throws: SwitchableHandler.Bug.self) { _ = try await processor.process(txnID: "p1", body: retry, try Self.decode(retry), logger: Self.logger) }
        let outcome = try await processor.process(txnID: "p1", body: retry, try Self.decode(retry), logger: Self.logger)
        guard case .quarantined(let id) = outcome else {
            Issue.record("expected quarantined, got \(outcome)")
            return
        }
        #expect(await notified.waitFor(1).map(\.id) == [id])
        // Its txn id is committed: the homeserver's next retry is a duplicate, the stream goes on.
        #expect(try await processor.process(txnID: "p1", body: retry, try Self.decode(retry), logger: Self.logger) == .duplicate)
        handler.set(failing: false)
        #expect(try await processor.process(txnID: "p2", body: retry, try Self.decode(retry), logger: Self.logger) == .processed)
        let listed = try await quarantine.list()
        #expect(listed.map(\.id) == [id] && listed.first?.attempts == 3 && listed.first?.resolvedAt == nil)
        #expect(listed.first?.error.contains("retrying does not fix") == true)
        // Sealed at rest.
        let plain = try await harness.client.query(
            "SELECT count(*) AS n FROM sealbridge_quarantine WHERE position('to_device' in encode(sealed, 'escape')) > 0").first?.decode(Int.self, "n")
        #expect(plain == 0)
        // Retried after the fix: the kept body is the first one, with its to-device message.
        try await quarantine.retry(id: id, handler: handler, logger: Self.logger)
        #expect(handler.seen.map(\.txnID) == ["p2", "p1"])
        #expect(handler.seen.last?.toDevice == 1)
        #expect(try await quarantine.list().first?.resolvedAt != nil)
        await #expect(throws: QuarantineError.self) { try await quarantine.retry(id: id, handler: handler, logger: Self.logger) }
        await harness.close()
    }

    @Test("database away: the transaction is held, then journaled (sealed) and answered 200; the journal is applied in order when it is back, also after a restart")
    func journalWhileAway() async throws {
        let harness = try await Harness.make()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-journal-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let handler = SwitchableHandler(failing: false)
        let committed = PostgresTransactionProcessor(client: harness.client, handler: handler)
        let outage = Outage(committed)
        let signal = JournalReplaySignal()
        let journal = TransactionJournal(directory: directory, sealing: TestSealing())
        let front = JournalingTransactionProcessor(outage, journal: journal, replay: signal, holdFor: .milliseconds(300))

        outage.set(down: true)
        let clock = ContinuousClock(), start = clock.now
        let b1 = Self.body(true, marker: "secret1"), b2 = Self.body(false, marker: "secret2")
        #expect(try await front.process(txnID: "j1", body: b1, try Self.decode(b1), logger: Self.logger) == .journaled)
        #expect(clock.now - start >= .milliseconds(250), "held for a while before journaling")
        // Once something is journaled, later transactions go behind it even if the database answers.
        outage.set(down: false)
        #expect(try await front.process(txnID: "j2", body: b2, try Self.decode(b2), logger: Self.logger) == .journaled)
        #expect(try await journal.count == 2)
        #expect(handler.seen.isEmpty)
        // Sealed on disk.
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let bytes = try #require(FileManager.default.contents(atPath: directory + "/" + name))
            #expect(!String(decoding: bytes, as: UTF8.self).contains("secret"))
        }

        // A restart: a new journal on the same directory finds both and applies them in order.
        let reopened = TransactionJournal(directory: directory, sealing: TestSealing())
        let replay = JournalReplayService(journal: reopened, processor: outage, signal: signal, logger: Self.logger)
        #expect(await replay.drain() == 2)
        #expect(handler.seen.map(\.txnID) == ["j1", "j2"])
        #expect(handler.seen.first?.toDevice == 1, "the journaled body kept its to-device part")
        #expect(try await reopened.count == 0)
        // Applying again is harmless (idempotent on the txn id), and the next one goes straight through.
        let front2 = JournalingTransactionProcessor(outage, journal: reopened, replay: signal, holdFor: .milliseconds(300))
        let b3 = Self.body(false, marker: "three")
        #expect(try await front2.process(txnID: "j3", body: b3, try Self.decode(b3), logger: Self.logger) == .processed)
        #expect(try await harness.committedTransactionIDs() == ["j1", "j2", "j3"])
        await harness.close()
    }

    @Test("a journal entry sealed under another pickle key is set aside, not applied and not blocking")
    func foreignJournalEntry() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-journal-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TransactionJournal(directory: directory, sealing: TestSealing(String(repeating: "x", count: 44)))
            .append(txnID: "old", body: Self.body(false))
        let journal = TransactionJournal(directory: directory, sealing: TestSealing())
        let harness = try await Harness.make()
        let handler = SwitchableHandler(failing: false)
        let replay = JournalReplayService(
            journal: journal, processor: PostgresTransactionProcessor(client: harness.client, handler: handler), signal: JournalReplaySignal(),
            logger: Self.logger)
        #expect(await replay.drain() == 0)
        #expect(try await journal.count == 0)
        #expect(FileManager.default.fileExists(atPath: directory + "/rejected/1.txn"))
        #expect(handler.seen.isEmpty)
        await harness.close()
    }

    @Test("the same txn id with another body is answered 200 without processing; the first body's digest is what is stored; a txn id that is not storable text is stored by its digest")
    func redeliveredWithOtherBody() async throws {
        let harness = try await Harness.make()
        let handler = SwitchableHandler(failing: false)
        let processor = PostgresTransactionProcessor(client: harness.client, handler: handler)
        let a = Self.body(true), b = Self.body(false)
        #expect(try await processor.process(txnID: "d1", body: a, try Self.decode(a), logger: Self.logger) == .processed)
        #expect(try await processor.process(txnID: "d1", body: b, try Self.decode(b), logger: Self.logger) == .duplicate)
        let digest = try await harness.client.query("SELECT body_sha256 FROM sealbridge_appservice_transactions WHERE txn_id = 'd1'").first?.decode([UInt8].self, "body_sha256")
        #expect(digest == SHA256.hash(a))
        #expect(try await processor.process(txnID: "n\u{0}ul", body: a, try Self.decode(a), logger: Self.logger) == .processed)
        #expect(try await harness.committedTransactionIDs().contains { $0.hasPrefix("sha256:") })
        #expect(handler.seen.count == 2)
        await harness.close()
    }

    @Test("over HTTP, with the daemon's pipeline: a poison transaction ends in 200 and the next one is processed")
    func poisonOverHTTP() async throws {
        let harness = try await Harness.make()
        let handler = SwitchableHandler(failing: true)
        let quarantine = TransactionQuarantine(client: harness.client, sealing: TestSealing(), threshold: 2)
        let app = harness.application(handler: handler, quarantine: quarantine)
        try await app.test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/h1", method: .put, headers: authorized, body: ByteBuffer(bytes: Self.body(true))) {
                #expect($0.status == .internalServerError)
            }
            try await client.execute(uri: "/_matrix/app/v1/transactions/h1", method: .put, headers: authorized, body: ByteBuffer(bytes: Self.body(false))) {
                #expect($0.status == .ok)
            }
            handler.set(failing: false)
            try await client.execute(uri: "/_matrix/app/v1/transactions/h2", method: .put, headers: authorized, body: ByteBuffer(bytes: Self.body(false))) {
                #expect($0.status == .ok)
            }
        }
        #expect(handler.seen.map(\.txnID) == ["h2"])
        #expect(try await quarantine.list().count == 1)
        await harness.close()
    }
}

/// A processor whose calls hang (a connect to a database that went away) for `delay`.
struct Hanging: TransactionProcessing {
    let delay: Duration
    func process(txnID: String, body: [UInt8], _ transaction: AppserviceTransaction, logger: Logger) async throws -> TransactionOutcome {
        try? await Task.sleep(for: delay)
        throw PostgresError(code: .connectionFailed, message: "simulated hang")
    }
}

extension JournalAndQuarantineTests {
    @Test("hold_seconds bounds the hold even when an attempt hangs: the transaction is journaled on time")
    func holdIsAnUpperBound() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-journal-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = TransactionJournal(directory: directory, sealing: TestSealing())
        let front = JournalingTransactionProcessor(
            Hanging(delay: .seconds(60)), journal: journal, replay: JournalReplaySignal(), holdFor: .milliseconds(300))
        let clock = ContinuousClock(), start = clock.now
        let b = Self.body(true)
        #expect(try await front.process(txnID: "slow", body: b, try Self.decode(b), logger: Self.logger) == .journaled)
        // Far less than the hanging attempt (60 s); the rest is the journal's fsync on a busy machine.
        #expect(clock.now - start < .seconds(10))
        #expect(try await journal.count == 1)
    }

    @Test("a body over max_body_size is answered 200 unprocessed, recorded in the quarantine (not kept), and the stream goes on")
    func oversizedBody() async throws {
        let harness = try await Harness.make(maxBodySize: 2048)
        let handler = SwitchableHandler(failing: false)
        let notified = NotificationLog()
        let quarantine = TransactionQuarantine(client: harness.client, sealing: TestSealing(), threshold: 3, onQuarantine: { await notified.add($0) })
        let app = harness.application(handler: handler, quarantine: quarantine)
        let big = "{\"events\":[{\"type\":\"m.room.message\",\"content\":{\"body\":\"" + String(repeating: "a", count: 4096) + "\"}}]}"
        try await app.test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/big", method: .put, headers: authorized, body: ByteBuffer(string: big)) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/_matrix/app/v1/transactions/next", method: .put, headers: authorized, body: ByteBuffer(bytes: Self.body(false))) {
                #expect($0.status == .ok)
            }
        }
        #expect(handler.seen.map(\.txnID) == ["next"])
        #expect(try await harness.committedTransactionIDs() == ["big", "next"])
        let entry = try #require(try await quarantine.list().first)
        #expect(entry.txnID == "big" && entry.error.contains("max_body_size"))
        #expect(await notified.waitFor(1).count == 1)
        await #expect(throws: QuarantineError.self) { try await quarantine.retry(id: entry.id, handler: handler, logger: Self.logger) }
        await harness.close()
    }
}

actor NotificationLog {
    var entries: [TransactionQuarantine.Entry] = []
    func add(_ entry: TransactionQuarantine.Entry) { entries.append(entry) }

    /// The entries, once `count` have come (or after 10 s).
    func waitFor(_ count: Int) async -> [TransactionQuarantine.Entry] {
        for _ in 0..<200 where entries.count < count { try? await Task.sleep(for: .milliseconds(50)) }
        return entries
    }
}

extension JournalAndQuarantineTests {
    @Test("telling the admins of a quarantine never waits inside the transaction: a notification that needs the crypto lock (an encrypted reply) cannot deadlock it")
    func notificationOutsideTheLock() async throws {
        let harness = try await Harness.make()
        let lock = AsyncLock()
        let notified = NotificationLog()
        // Like the bot's notice to an encrypted management room: it takes the crypto lock to send.
        let quarantine = TransactionQuarantine(client: harness.client, sealing: TestSealing(), threshold: 1, onQuarantine: { entry in
            _ = try? await lock.withLock { await notified.add(entry) }
        })
        let processor = SerializedTransactionProcessor(
            PostgresTransactionProcessor(client: harness.client, handler: SwitchableHandler(failing: true), quarantine: quarantine), lock: lock)
        let b = Self.body(false)
        let attempt = Task { try await processor.process(txnID: "dl", body: b, try Self.decode(b), logger: Self.logger) }
        let timer = Task { try await Task.sleep(for: .seconds(10)); attempt.cancel() }
        let outcome = try await attempt.value
        timer.cancel()
        guard case .quarantined = outcome else {
            Issue.record("expected the transaction to be quarantined, got \(outcome)")
            return
        }
        #expect(await notified.waitFor(1).count == 1)
        await harness.close()
    }
}

@Suite("Management commands: quarantine, utd")
struct QuarantineCommandTests {
    @Test("quarantine lists set-aside transactions and retries one; utd lists waiting events with their reason")
    func commands() async throws {
        let harness = try await Harness.make()
        let handler = SwitchableHandler(failing: true)
        let quarantine = TransactionQuarantine(client: harness.client, sealing: TestSealing(), threshold: 1)
        let command = QuarantineCommand(quarantine: quarantine, retry: { id in
            try await quarantine.retry(id: id, handler: handler, logger: Logger(label: "test"))
        })
        #expect(await command.reply([]).body == "No transaction is quarantined.")
        let body = JournalAndQuarantineTests.body(true)
        let processor = PostgresTransactionProcessor(client: harness.client, handler: handler, quarantine: quarantine)
        guard case .quarantined(let id) = try await processor.process(
            txnID: "q1", body: body, try AppserviceTransaction.decode(body), logger: Logger(label: "test"))
        else {
            Issue.record("expected the transaction to be quarantined")
            return
        }
        let listed = await command.reply([]).body
        #expect(listed.contains("\(id)") && listed.contains("txn q1") && listed.contains("waiting"))
        #expect(await command.reply(["retry", "\(id)"]).body.contains("failed again"))
        handler.set(failing: false)
        #expect(await command.reply(["retry", "\(id)"]).body == "Quarantined transaction \(id) was processed and committed.")
        #expect(await command.reply([]).body.contains("retried successfully"))
        #expect(await command.reply(["retry", "nope"]).body == "usage: quarantine retry ID")
        await harness.close()

        let store = MemoryCryptoStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "t", count: 44)))
        let utd = UndecryptableCommand(machine: machine)
        #expect(await utd.reply([]).body == "No event is waiting for its key.")
        var park = CryptoChanges()
        let session = String(repeating: "A", count: 43)
        park.parkedEvents = [ParkedEvent(
            event: ["event_id": "$wait", "room_id": "!r:hs", "sender": "@alice:hs",
                    "content": ["algorithm": .string(EncryptionAlgorithm.megolm), "session_id": .string(session), "ciphertext": "AwgA"]],
            sessionID: session, roomID: try RoomID("!r:hs"), sender: try UserID("@alice:hs"))]
        await store.save(park)
        let waiting = await utd.reply(["!r:hs"]).body
        #expect(waiting.contains("$wait") && waiting.contains("unknown_session") && waiting.contains("@alice:hs"))
        #expect(waiting.contains("key not requested") && waiting.contains(session))
        var asked = CryptoChanges()
        asked.keyRequests = [OutgoingKeyRequest(
            roomID: try RoomID("!r:hs"), sessionID: session, requestID: "req", senderUserID: try UserID("@alice:hs"), senderKey: nil,
            requester: DeviceRef(userID: try UserID("@bot:hs"), deviceID: try DeviceID("BOT")),
            recipients: [DeviceRef(userID: try UserID("@alice:hs"), deviceID: try DeviceID("PHONE"))], requestedAt: Date())]
        await store.save(asked)
        #expect(await utd.reply(["!r:hs"]).body.contains("key requested 0s ago from 1 device(s)"))
        // request ROOM SESSION: usage, and a request for a session nobody waits for.
        let withRequest = UndecryptableCommand(machine: machine, requestKey: { _, sessionID in sessionID == session })
        #expect(withRequest.commands.map(\.name) == ["utd", "request"])
        #expect(await withRequest.request(["!r:hs"]).body == "usage: request !room:server SESSION_ID")
        #expect(await withRequest.request(["!r:hs", session]).body.hasPrefix("Asked the sender's devices"))
        #expect(await withRequest.request(["!r:hs", String(repeating: "B", count: 43)]).body.hasPrefix("Nothing was asked"))
        #expect(await utd.reply(["!other:hs"]).body == "No event is waiting for its key in !other:hs.")
    }
}
