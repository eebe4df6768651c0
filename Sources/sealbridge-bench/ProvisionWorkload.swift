import AsyncHTTPClient
import Bridge
import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import Store

/// Puppets get devices, accounts, device keys, a fallback key and their one-time keys, through the
/// real homeserver client against the loopback homeserver (register, MSC4190 device, keys upload),
/// and, with `crossSigned` (the daemon's default, `encryption.cross_signing.enabled`), an identity:
/// master, self-signing and user-signing keys committed, `/keys/device_signing/upload`, the device's
/// signature committed and `/keys/signatures/upload`.
struct ProvisionWorkload {
    var puppets: Int
    var concurrency = 8
    var crossSigned = false

    /// - Returns: The figures, and the loopback state (holding the uploaded keys) for later workloads.
    func run(client: PostgresClient, policy: OneTimeKeyPolicy, label: String) async throws -> (BenchResult, BenchTransport, Background) {
        let state = BenchTransport()
        let server = try await Background.start { ready in LoopbackHomeserver.application(state, ready: ready) }
        let homeserver = HomeserverClient(baseURL: "http://127.0.0.1:\(server.port)", asToken: "bench")
        let cipher = try StoreCipher(secret: String(repeating: "k", count: 44))
        let store = PostgresCryptoStore(client: client, cipher: cipher)
        let machine = CryptoMachine(store: store, cipher: cipher, policy: policy)
        let engine = CryptoEngine(
            machine: machine, store: store, transport: homeserver,
            crossSigning: crossSigned ? { @Sendable _ in ForeignIdentityPolicy.replace } : nil,
            logger: Logger(label: "bench.crypto", factory: { _ in SwiftLogNoOpLogHandler() }))
        var latencies: [Double] = []
        let pgCPU0 = await Measure.postgresCPU(client)
        let cpu0 = Measure.cpuSeconds(), start = Measure.now()
        try await withThrowingTaskGroup(of: Double.self) { group in
            var next = 0
            func add() {
                let index = next
                next += 1
                group.addTask {
                    let t0 = Measure.now()
                    try await engine.ensureDevice(try UserID("@\(label)_\(index):bench"), deviceID: try DeviceID("P\(index)"), displayName: "Puppet \(index)")
                    return (Measure.now() - t0) * 1000
                }
            }
            for _ in 0..<min(concurrency, puppets) { add() }
            while let latency = try await group.next() {
                latencies.append(latency)
                if next < puppets { add() }
            }
        }
        let wall = Measure.now() - start, cpu = Measure.cpuSeconds() - cpu0
        let pgCPU = Measure.postgresCPUSeconds(from: pgCPU0, to: await Measure.postgresCPU(client))
        let stored = try await client.query("SELECT count(*) AS n FROM sealbridge_crypto_accounts WHERE user_id LIKE \("@\(label)_%")").first!.decode(Int.self, "n")
        guard stored == puppets else { throw BenchError("provisioned \(stored) of \(puppets) puppets") }
        if crossSigned {
            let progress = try await store.crossSigningProgress()
            guard progress.complete == progress.devices else {
                throw BenchError("\(progress.devices - progress.complete) of \(progress.devices) provisioned devices are not cross-signed")
            }
        }
        let result = BenchResult(
            workload: "provision puppets, \(policy.target) one-time keys each\(crossSigned ? ", cross-signed" : "")", store: "postgresql", operations: puppets, unit: "puppets",
            wallSeconds: wall, cpuSeconds: cpu, throughputPerSecond: Double(puppets) / wall,
            p50Milliseconds: Measure.percentile(latencies, 0.5), p99Milliseconds: Measure.percentile(latencies, 0.99),
            peakRSSMiB: Measure.peakRSSMiB(), postgresCPUSeconds: pgCPU, ceilingPerSecond: nil,
            notes: String(
                format: "%.2f ms CPU per puppet (PostgreSQL %.2f ms); register + MSC4190 device + account + keys upload%@ over loopback HTTP, %d at a time",
                cpu * 1000 / Double(puppets), pgCPU * 1000 / Double(puppets), crossSigned ? " + cross-signing identity and device signature" : "", concurrency))
        return (result, state, server)
    }

    /// Puppets with accounts, without the homeserver round trips (setup for other workloads).
    /// - Returns: Each puppet's first upload (its device keys and one-time keys, as the homeserver serves them).
    @discardableResult
    static func seedPuppets(_ count: Int, machine: CryptoMachine, store: any CryptoStore) async throws -> [KeysUpload] {
        var uploads: [KeysUpload] = []
        for index in 0..<count {
            let (changes, upload) = try await machine.createDevice(userID: try UserID("@seed_\(index):bench"), deviceID: try DeviceID("S\(index)"))
            try await store.save(changes)
            // As provisioning leaves a device: its keys accepted by the homeserver.
            try await store.save(try await machine.confirmUpload(upload))
            uploads.append(upload)
        }
        return uploads
    }
}

/// Restarts the real daemon on a database holding the provisioned puppets: time until it serves,
/// and its resident memory once idle.
struct RestartWorkload {
    func run(databaseURL: String, homeserverPort: Int, puppets: Int) async throws -> BenchResult {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sealbridge").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw BenchError("no sealbridge binary next to the benchmark (\(binary)): build both products") }
        let port = freePort()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("sealbridge-bench-\(getpid()).yaml")
        try """
            homeserver: {url: "http://127.0.0.1:\(homeserverPort)", server_name: bench}
            appservice: {port: \(port), as_token: "as-bench-\(String(repeating: "a", count: 32))", hs_token: "hs-bench-\(String(repeating: "h", count: 32))"}
            database: {uri: "\(databaseURL)"}
            encryption: {pickle_key: "\(String(repeating: "k", count: 44))"}
            logging: {level: warning}
            """.write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["run", "--config", config.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let start = Measure.now()
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
        }
        var ready: Double?
        while Measure.now() - start < 30 {
            if let (_, status) = try? await Self.get("http://127.0.0.1:\(port)/health"), status == 200 {
                ready = Measure.now() - start
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let ready else { throw BenchError("the daemon did not answer /health within 30 s") }
        try await Task.sleep(for: .seconds(3))
        let rss = Self.residentMiB(pid: process.processIdentifier)
        process.terminate()
        return BenchResult(
            workload: "restart with \(puppets) puppets", store: "postgresql", operations: 1, unit: "start", wallSeconds: ready, cpuSeconds: 0,
            throughputPerSecond: 1 / ready, p50Milliseconds: ready * 1000, p99Milliseconds: ready * 1000, peakRSSMiB: rss, ceilingPerSecond: nil,
            notes: "process start to /health 200 (lock, migrations, listener); RSS after 3 s idle")
    }

    static func get(_ url: String) async throws -> (Data, Int) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Data(body.readableBytesView), Int(response.status.code))
    }

    static func residentMiB(pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return (Double(line.split(separator: " ").dropFirst().first.map(String.init) ?? "0") ?? 0) / 1024
    }
}
