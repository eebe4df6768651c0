import Bridge
import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Postgres
import Store

/// The cross-signing backfill over provisioned puppets, unpaced, through the real homeserver client
/// against the loopback homeserver: how fast existing devices get an identity (keys committed, two
/// uploads, two commits each).
struct BackfillWorkload {
    var concurrency = 1

    func run(client: PostgresClient, homeserverPort: Int) async throws -> BenchResult {
        let cipher = try StoreCipher(secret: String(repeating: "k", count: 44))
        let store = PostgresCryptoStore(client: client, cipher: cipher)
        let machine = CryptoMachine(store: store, cipher: cipher)
        let homeserver = HomeserverClient(baseURL: "http://127.0.0.1:\(homeserverPort)", asToken: "bench")
        let engine = CryptoEngine(
            machine: machine, store: store, transport: homeserver, logger: Logger(label: "bench.crypto", factory: { _ in SwiftLogNoOpLogHandler() }))
        let service = CrossSigningBackfillService(
            engine: engine, store: store, perSecond: 1_000_000, skip: nil, policy: { _ in .replace },
            logger: Logger(label: "bench.backfill", factory: { _ in SwiftLogNoOpLogHandler() }))
        let before = try await store.crossSigningProgress()
        let cpu0 = Measure.cpuSeconds(), start = Measure.now()
        let published = await service.pass()
        let wall = Measure.now() - start, cpu = Measure.cpuSeconds() - cpu0
        let after = try await store.crossSigningProgress()
        guard after.complete == after.devices, service.progress.failed == 0 else {
            throw BenchError("backfill left \(after.devices - after.complete) devices unsigned (\(service.progress.failed) failures: \(service.progress.lastError ?? "-"))")
        }
        return BenchResult(
            workload: "cross-signing backfill of existing devices", store: "postgresql", operations: published, unit: "users",
            wallSeconds: wall, cpuSeconds: cpu, throughputPerSecond: Double(published) / wall, p50Milliseconds: wall * 1000 / Double(max(1, published)),
            p99Milliseconds: 0, peakRSSMiB: Measure.peakRSSMiB(), ceilingPerSecond: nil,
            notes: String(format: "%d of %d devices were signed before; unpaced (the daemon paces it at backfill_per_second, default 20); %.2f ms CPU per user; p50 = mean", before.complete, before.devices, cpu * 1000 / Double(max(1, published))))
    }
}
