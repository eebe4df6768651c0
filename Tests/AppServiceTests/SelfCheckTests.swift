import AppService
import Bridge
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import SealbridgeApp
import Synchronization
import Testing

private let bot = try! UserID("@sealbridge:localhost")
private let botDevice = try! DeviceID("SEALBRIDGE")
private let mallory = try! UserID("@mallory:evil.example")

private func probe(_ nonce: String, sender: UserID = bot, to recipient: UserID = bot) -> ToDeviceEvent {
    ToDeviceEvent(type: ToDeviceProbes.eventType, sender: sender, content: ["nonce": .string(nonce)], toUserID: recipient, toDeviceID: botDevice)
}

private let withCounts = AppserviceTransaction(oneTimeKeyCounts: [bot: [botDevice: ["signed_curve25519": 50]]])

/// A homeserver stand-in: delivers each probe it is given in a transaction (or not), like Synapse with
/// or without `msc2409_to_device_messages_enabled` (and with or without MSC3202).
private func homeserver(_ probes: ToDeviceProbes, delivers: Bool, keyCounts: Bool = true) -> SelfCheckRunner.SendProbe {
    { nonce in
        guard delivers else { return true }
        Task {
            try await Task.sleep(for: .milliseconds(50))
            probes.observe(keyCounts ? withCounts : AppserviceTransaction(), probes: [probe(nonce)])
        }
        return true
    }
}

private func runner(
    _ probes: ToDeviceProbes, send: @escaping SelfCheckRunner.SendProbe, keys: LocalDeviceState? = .matches,
    registration: SelfCheckResult = SelfCheckResult(.registration, .ok, "fits")
) -> SelfCheckRunner {
    SelfCheckRunner(
        probes: probes, sendProbe: send, botKeys: { keys }, registration: { registration }, timeout: .milliseconds(500),
        poll: .milliseconds(20))
}

/// Sees what the crypto pipeline would see.
private final class Recording: TransactionHandler {
    let seen = Mutex<[AppserviceTransaction]>([])

    func handle(_ transaction: AppserviceTransaction, txnID: String, connection: PostgresConnection, logger: Logger) async throws -> AfterCommit {
        seen.withLock { $0.append(transaction) }
        return .nothing
    }
}

@Suite("Self-checks: probes, checks, /health and the doctor's endpoint")
struct SelfCheckTests {
    @Test("a probe counts only from the bot to the bot with a nonce this process issued, once")
    func probesCannotBeForged() {
        let probes = ToDeviceProbes(bot: bot)
        let nonce = probes.issue()
        // Another user sending the right nonce, the bot sending to someone else, an unknown nonce, no nonce.
        var noNonce = probe(nonce)
        noNonce.content = ["nonce": 7]
        probes.observe(withCounts, probes: [probe(nonce, sender: mallory), probe(nonce, to: mallory), probe("00ff00ff"), noNonce])
        #expect(probes.take(nonce) == nil)
        probes.observe(withCounts, probes: [probe(nonce)])
        #expect(probes.take(nonce)?.withKeyCounts == true)
        // Seen once: the same message again (a replay) counts for nothing.
        probes.observe(withCounts, probes: [probe(nonce)])
        #expect(probes.take(nonce) == nil)
        // A cancelled probe that comes late is ignored.
        let late = probes.issue()
        probes.cancel(late)
        probes.observe(withCounts, probes: [probe(late)])
        #expect(probes.take(late) == nil)
    }

    @Test("outstanding probes are bounded")
    func outstandingBounded() {
        let probes = ToDeviceProbes(bot: bot)
        let first = probes.issue(now: Date(timeIntervalSince1970: 0))
        for _ in 0..<40 { _ = probes.issue() }
        probes.observe(withCounts, probes: [probe(first)])
        #expect(probes.take(first) == nil)
    }

    @Test("a homeserver that pushes to-device and MSC3202: every check passes")
    func allPass() async {
        let probes = ToDeviceProbes(bot: bot)
        let report = await runner(probes, send: homeserver(probes, delivers: true)).run()
        #expect(report.failures.isEmpty, "\(report.results.map(\.line))")
        #expect(report.results.map(\.name) == [.toDevice, .keyCounts, .registration, .botKeys])
        #expect(report.results.allSatisfy { $0.state == .ok })
    }

    @Test("no to-device push: to_device fails and names the homeserver.yaml flag")
    func toDeviceOff() async {
        let probes = ToDeviceProbes(bot: bot)
        let report = await runner(probes, send: homeserver(probes, delivers: false)).run()
        let toDevice = report.results.first { $0.name == .toDevice }!
        #expect(toDevice.state == .failed)
        #expect(toDevice.fix?.hasPrefix("homeserver.yaml: experimental_features: msc2409_to_device_messages_enabled: true, then restart") == true)
        // Without a registration file to look at, the fix names its flags too.
        let unknown = await runner(
            probes, send: homeserver(probes, delivers: false), registration: SelfCheckResult(.registration, .skipped, "no file")
        ).run()
        #expect(unknown.results.first?.fix?.contains("receive_ephemeral: true and de.sorunome.msc2409.push_ephemeral: true") == true)
        // Nothing came at all: key counts cannot be judged, and say so rather than fail on a guess.
        #expect(report.results.first { $0.name == .keyCounts }?.state == .skipped)
        #expect(report.failures.count == 1)
    }

    @Test("to-device without MSC3202: key_counts fails and names msc3202_transaction_extensions")
    func keyCountsOff() async {
        let probes = ToDeviceProbes(bot: bot)
        let report = await runner(probes, send: homeserver(probes, delivers: true, keyCounts: false)).run()
        let counts = report.results.first { $0.name == .keyCounts }!
        #expect(report.results.first { $0.name == .toDevice }?.state == .ok)
        #expect(counts.state == .failed)
        #expect(counts.fix?.contains("msc3202_transaction_extensions: true") == true)
        #expect(counts.fix?.contains("org.matrix.msc3202: true") == true)
    }

    @Test("a probe that cannot be sent, a bot without a device, a bot whose keys differ")
    func otherOutcomes() async {
        struct Refused: Error {}
        let probes = ToDeviceProbes(bot: bot)
        let refused = await runner(probes, send: { _ in throw Refused() }, keys: .foreignKeys).run()
        #expect(refused.results.first { $0.name == .toDevice }?.state == .failed)
        #expect(refused.results.first { $0.name == .botKeys }?.state == .failed)
        let early = await runner(probes, send: { _ in false }, keys: nil).run()
        #expect(early.failures.isEmpty)
        #expect(early.results.first { $0.name == .toDevice }?.state == .skipped)
        let gone = await runner(probes, send: homeserver(probes, delivers: true), keys: .missing).run()
        #expect(gone.failures.map(\.name) == [.botKeys])
    }

    @Test("the report survives JSON (the doctor reads the daemon's)")
    func reportJSON() async {
        let probes = ToDeviceProbes(bot: bot)
        let report = await runner(probes, send: homeserver(probes, delivers: false)).run()
        let read = SelfCheckReport(json: try! JSONValue.parse(report.json.serialized()))
        #expect(read?.results == report.results)
    }

    @Test("in the pipeline: probes never reach the handler below, and count once the transaction committed")
    func pipelineHook() async throws {
        let harness = try await Harness.make()
        let probes = ToDeviceProbes(bot: bot)
        let recording = Recording()
        let nonce = probes.issue()
        let body = """
            {"events":[],"de.sorunome.msc2409.to_device":[
              {"type":"\(ToDeviceProbes.eventType)","sender":"@sealbridge:localhost","to_user_id":"@sealbridge:localhost","to_device_id":"SEALBRIDGE","content":{"nonce":"\(nonce)"}},
              {"type":"\(ToDeviceProbes.eventType)","sender":"@mallory:evil.example","to_user_id":"@sealbridge:localhost","to_device_id":"SEALBRIDGE","content":{"nonce":"\(nonce)"}},
              {"type":"m.dummy","sender":"@alice:localhost","to_user_id":"@sealbridge:localhost","to_device_id":"SEALBRIDGE","content":{}}],
             "org.matrix.msc3202.device_one_time_keys_count":{"@sealbridge:localhost":{"SEALBRIDGE":{"signed_curve25519":50}}}}
            """
        try await harness.application(handler: ProbeObservingHandler(recording, probes: probes)).test(.router) { client in
            try await client.execute(uri: "/_matrix/app/v1/transactions/p1", method: .put, headers: authorized, body: ByteBuffer(string: body)) {
                #expect($0.status == .ok)
            }
        }
        let seen = recording.seen.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first?.toDevice.map(\.type) == ["m.dummy"])
        #expect(probes.take(nonce)?.withKeyCounts == true)
        #expect(probes.sightings.keyCounts != nil)
        await harness.close()
    }

    @Test("/health says degraded with the failed check's line; the doctor's endpoint needs the hs_token")
    func healthDegraded() async throws {
        let harness = try await Harness.make()
        let probes = ToDeviceProbes(bot: bot)
        let service = SelfCheckService(
            runner: runner(probes, send: homeserver(probes, delivers: false)), interval: .seconds(3600), logger: Logger(label: "test"))
        let configuration = harness.configuration
        let app = buildAppServiceApplication(
            configuration: configuration, client: harness.client,
            pipeline: TransactionPipeline(
                configuration: configuration, client: harness.client, handler: TransactionLog(), cipher: nil, lock: nil, quarantine: nil,
                logger: Logger(label: "test")),
            metricsRegistry: nil, selfChecks: service, logger: Logger(label: "test"))
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "{\"status\":\"ok\"}")
            }
            try await client.execute(uri: "/_sealbridge/self-checks", method: .post, body: ByteBuffer(string: "{}")) {
                #expect($0.status == .unauthorized)
            }
            try await client.execute(uri: "/_sealbridge/self-checks?access_token=\(hsToken)", method: .post, body: ByteBuffer(string: "{}")) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/_sealbridge/self-checks", method: .post, headers: authorized, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .ok)
                let report = SelfCheckReport(json: try JSONValue.parse(response.body.readableBytesView))
                #expect(report?.failures.map(\.name) == [.toDevice])
            }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                let health = try JSONValue.parse(response.body.readableBytesView)
                #expect(health["status"]?.stringValue == "degraded")
                #expect(health["reasons"]?.arrayValue?.first?.stringValue?.contains("msc2409_to_device_messages_enabled") == true)
            }
        }
        await harness.close()
    }
}

@Suite("sealbridge doctor: findings without a homeserver or a daemon")
struct DoctorTests {
    @Test("the schema's state; an unreachable homeserver and no daemon fail with what to change")
    func findings() async throws {
        let harness = try await Harness.make()
        let lines = Mutex<[String]>([])
        var findings = await Doctor.run(configuration: harness.configuration, registrationFile: nil, print: { line in lines.withLock { $0.append(line) } })
        let byCheck = Dictionary(findings.map { ($0.check, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(byCheck["database"]?.state == .ok)
        #expect(byCheck["homeserver"]?.state == .failed)
        #expect(byCheck["homeserver"]?.fix?.contains("homeserver.url") == true)
        #expect(byCheck["registration"]?.state == .warning)
        #expect(byCheck["daemon"]?.state == .failed)
        #expect(byCheck["daemon"]?.fix?.contains("sealbridge run") == true)
        #expect(lines.withLock { $0 }.contains { $0.hasPrefix("FAILED  homeserver:") })

        // A migration not applied yet is a warning; one this build does not know fails.
        try await harness.client.execute("DELETE FROM sealbridge_schema_migrations WHERE version = (SELECT max(version) FROM sealbridge_schema_migrations)")
        findings = await Doctor.run(configuration: harness.configuration, registrationFile: nil, print: { _ in })
        #expect(findings.first { $0.check == "database" }?.state == .warning)
        try await harness.client.execute("INSERT INTO sealbridge_schema_migrations (version, name) VALUES (9999, 'from the future')")
        findings = await Doctor.run(configuration: harness.configuration, registrationFile: nil, print: { _ in })
        #expect(findings.first { $0.check == "database" }?.state == .failed)
        await harness.close()
    }
}
