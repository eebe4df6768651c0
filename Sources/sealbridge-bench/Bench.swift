import ArgumentParser
import Foundation
import MatrixCrypto
import Postgres
import SealbridgeApp
import Store

/// `sealbridge-bench`: how fast the crypto engine is, next to libolm's own speed on this machine.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sealbridge-bench", abstract: "Benchmark Sealbridge's crypto engine against libolm's ceiling on this machine.")

    @Option(help: "PostgreSQL URL of a throwaway database (its Sealbridge tables are emptied); without it only the memory store runs.")
    var databaseURL: String?
    @Option(help: "Megolm events to decrypt.") var events = 10_000
    @Option(help: "Recipient devices for the fan-out.") var devices = 1_000
    @Option(help: "Messages after the first in the fan-out room.") var followUps = 100
    @Option(help: "Puppets to provision (and restart with).") var puppets = 10_000
    @Option(help: "Write the figures as JSON to this path.") var json: String?
    @Flag(help: "Only the memory-store crypto workloads and the HTTP ingest (a quick run).") var quick = false
    @Flag(help: "Decrypt on the machine's actor only (CryptoSettings.parallelDecryption off), to compare.") var serialDecrypt = false
    @Option(help: """
        Run only these rows: ingest (over HTTP, 100 and 50 events per transaction, and the storage rows; needs --database-url), \
        local-share (a portal room's puppets sharing their first room keys), provision (--puppets, 50 one-time keys), \
        storage (--storage-events ingested 100 per PUT, then the storage rows; needs --database-url), \
        scale (100, 10,000 and 100,000 puppets: restart, idle RSS and ingest at each size; needs --database-url).
        """) var only: String?
    @Option(help: "Events the storage rows of --only storage ingest first.") var storageEvents = 1_000_000
    @Option(help: "Also write the ingest workload (100 events per PUT) to this directory, for another implementation to replay.")
    var exportWorkload: String?

    /// The machine settings of the decrypt and ingest workloads (set once from the flags, before any runs).
    nonisolated(unsafe) static var cryptoSettings = CryptoSettings()

    func run() async throws {
        Self.cryptoSettings.parallelDecryption = !serialDecrypt
        // Metrics on, as the daemon runs by default (and the ingest rows read the transaction phases from them).
        _ = PhaseMeter.registry
        var results: [BenchResult] = []
        if only == "ingest" {
            guard let databaseURL else { throw BenchError("ingest needs --database-url") }
            let client = PostgresClient(configuration: PostgresConfiguration(connectionString: databaseURL, poolSize: 4))
            for perTransaction in [100, 50] {
                try await Self.resetDatabase(client)
                results.append(try await IngestWorkload(
                    events: events, sessions: 100, perTransaction: perTransaction, label: "ingest\(perTransaction)",
                    exportDirectory: perTransaction == 100 ? exportWorkload : nil
                ).run(databaseURL: databaseURL, client: client))
            }
            results += try await Self.storage(client: client)
            results += try await Self.transactionShapes(databaseURL: databaseURL, client: client)
            await client.close()
            try report(results)
            return
        }
        if only == "storage" {
            guard let databaseURL else { throw BenchError("storage needs --database-url") }
            let client = PostgresClient(configuration: PostgresConfiguration(connectionString: databaseURL, poolSize: 4))
            try await Self.resetDatabase(client)
            results.append(try await IngestWorkload(events: storageEvents, sessions: 100, perTransaction: 100, label: "storage", streamBodies: true)
                .run(databaseURL: databaseURL, client: client))
            results += try await Self.storage(client: client)
            await client.close()
            try report(results)
            return
        }
        if let only { return try await runOnly(only) }
        results.append(try await DecryptWorkload(events: events, senders: 20).run(store: MemoryCryptoStore(), client: nil))
        results += try await ShareWorkload(devices: devices, followUps: followUps).run(store: MemoryCryptoStore(), storeName: "memory")
        results.append(try await LocalShareWorkload().run(store: MemoryCryptoStore(), storeName: "memory"))
        if let databaseURL {
            let client = PostgresClient(configuration: PostgresConfiguration(connectionString: databaseURL, poolSize: 4))
            try await Self.resetDatabase(client)
            results.append(try await DecryptWorkload(events: events, senders: 20).run(
                store: PostgresCryptoStore(client: client, cipher: try StoreCipher(secret: DecryptWorkload.secret)), client: client))
            try await Self.resetDatabase(client)
            results += try await ShareWorkload(devices: devices, followUps: followUps).run(
                store: PostgresCryptoStore(client: client, cipher: try StoreCipher(secret: ShareWorkload.secret)), storeName: "postgresql")
            try await Self.resetDatabase(client)
            // The headline: as Synapse sends when we are the bottleneck (100 events, its maximum), then 50.
            for perTransaction in [100, 50] {
                try await Self.resetDatabase(client)
                results.append(try await IngestWorkload(events: events, sessions: 100, perTransaction: perTransaction, label: "ingest\(perTransaction)")
                    .run(databaseURL: databaseURL, client: client))
            }
            results += try await Self.storage(client: client)
            results += try await Self.transactionShapes(databaseURL: databaseURL, client: client)
            if !quick {
                try await Self.resetDatabase(client)
                // OTK strategy: the same provisioning with a lean pre-upload, to price the default.
                let lean = try await ProvisionWorkload(puppets: min(puppets, 1_000)).run(client: client, policy: OneTimeKeyPolicy(target: 5), label: "lean")
                await lean.2.stop()
                results.append(lean.0)
                // Cross-signed, as the daemon provisions by default (issue 12 point 4's row); then the
                // puppets the later rows use, without identities (the backfill rows sign them).
                try await Self.resetDatabase(client)
                let signed = try await ProvisionWorkload(puppets: min(puppets, 5_000), crossSigned: true).run(
                    client: client, policy: OneTimeKeyPolicy(), label: "signed")
                await signed.2.stop()
                results.append(signed.0)
                try await Self.resetDatabase(client)
                let (provisioned, keys, homeserver) = try await ProvisionWorkload(puppets: puppets).run(
                    client: client, policy: OneTimeKeyPolicy(), label: "puppet")
                results.append(provisioned)
                results.append(try await RestartWorkload().run(databaseURL: databaseURL, homeserverPort: homeserver.port, puppets: puppets))
                for active in [100, 1_000, 10_000] where active <= puppets {
                    results.append(try await IngestWorkload(events: events, sessions: 100, activePuppets: active, remoteKeys: keys, label: "scale\(active)")
                        .run(databaseURL: databaseURL, client: client))
                }
                // Cross-signing of existing devices: what a paced backfill costs the ingest beside it,
                // then how fast an unpaced one signs every provisioned puppet.
                results.append(try await IngestWorkload(events: events, sessions: 100, label: "backfill", backfillPerSecond: 20)
                    .run(databaseURL: databaseURL, client: client))
                results.append(try await BackfillWorkload().run(client: client, homeserverPort: homeserver.port))
                await homeserver.stop()
            }
            await client.close()
        }
        try report(results)
    }

    /// Prints the table and each row's notes (what ran, and each ceiling's samples), and writes the
    /// JSON when `--json` asks for it: the same for a full run and for `--only`.
    func report(_ results: [BenchResult]) throws {
        print(Self.table(results))
        for result in results { print("\(result.workload) (\(result.store)): \(result.notes)") }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(results).write(to: URL(fileURLWithPath: json))
        }
    }

    /// The rows of what else Synapse's transactions carry besides Megolm events, each on a fresh
    /// database: room setup, key counts of a portal room's puppets, room keys by Olm to puppets.
    static func transactionShapes(databaseURL: String, client: PostgresClient) async throws -> [BenchResult] {
        var results: [BenchResult] = []
        try await resetDatabase(client)
        results.append(try await portalSetup(databaseURL: databaseURL, client: client))
        try await resetDatabase(client)
        results.append(try await countedPuppets(databaseURL: databaseURL, client: client))
        try await resetDatabase(client)
        results.append(try await roomKeys(databaseURL: databaseURL, client: client))
        return results
    }

    /// Membership as a bridge setting up portal rooms sends it: 20 rooms, 100 puppets each invited and
    /// joined, 100 state events per PUT (the crypto lock's store reads for room state, not libolm).
    static func portalSetup(databaseURL: String, client: PostgresClient) async throws -> BenchResult {
        try await IngestWorkload(
            events: 0, sessions: 1, perTransaction: 100, label: "portal", title: "room setup over HTTP, 100 per PUT",
            portalSetup: .init(rooms: 20, puppetsPerRoom: 100)
        ).run(databaseURL: databaseURL, client: client)
    }

    /// The headline ingest in a portal room of 200 puppets: Synapse puts every puppet's one-time key
    /// counts and fallback key state on each transaction that touches the room.
    static func countedPuppets(databaseURL: String, client: PostgresClient) async throws -> BenchResult {
        try await IngestWorkload(
            events: 10_000, sessions: 100, perTransaction: 100, label: "counted", title: "ingest over HTTP, 100 per PUT, key counts of 200 puppets",
            countedPuppets: 200
        ).run(databaseURL: databaseURL, client: client)
    }

    /// Room keys reaching a portal room's 100 puppets by Olm, 100 to-device messages a PUT, 20 PUTs:
    /// the accounts and Olm sessions of the recipients, not Megolm.
    static func roomKeys(databaseURL: String, client: PostgresClient) async throws -> BenchResult {
        try await IngestWorkload(
            events: 2_000, sessions: 1, perTransaction: 100, label: "roomkeys", title: "room keys over HTTP, 100 Olm to-device per PUT",
            roomKeyPuppets: 100
        ).run(databaseURL: databaseURL, client: client)
    }

    /// The storage rows, on what the last ingest row (50 events per PUT) left in the database.
    static func storage(client: PostgresClient) async throws -> [BenchResult] {
        let events = try await client.query("SELECT count(*) AS n FROM sealbridge_megolm_replay").first?.decode(Int.self, "n") ?? 0
        return try await StorageWorkload(events: events).run(
            client: client, store: PostgresCryptoStore(client: client, cipher: try StoreCipher(secret: String(repeating: "k", count: 44))))
    }

    static func resetDatabase(_ client: PostgresClient) async throws {
        try await client.execute("DROP SCHEMA public CASCADE")
        try await client.execute("CREATE SCHEMA public")
        try await Migrator.migrate(SealbridgeMigrations.all, on: client)
    }

    static func table(_ results: [BenchResult]) -> String {
        func f(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        // The decrypt row's ceiling is libolm on one core (its workload runs on one), the ingest rows'
        // libolm on both cores (the daemon uses both): each row's notes say which.
        var lines = ["workload | store | n | wall s | cpu s | pg cpu s | rate/s | p50 ms | p99 ms | peak RSS MiB | libolm ceiling/s | ratio"]
        lines.append(String(repeating: "-", count: 120))
        for r in results {
            lines.append([
                r.workload, r.store, "\(r.operations) \(r.unit)", f(r.wallSeconds, 3), f(r.cpuSeconds, 3),
                r.postgresCPUSeconds.map { f($0, 3) } ?? "-", f(r.throughputPerSecond, 0),
                f(r.p50Milliseconds, 2), f(r.p99Milliseconds, 2), f(r.peakRSSMiB), r.ceilingPerSecond.map { f($0, 0) } ?? "-",
                r.ratio.map { f($0, 2) + " ×" } ?? "-",
            ].joined(separator: " | "))
        }
        return lines.joined(separator: "\n")
    }
}

