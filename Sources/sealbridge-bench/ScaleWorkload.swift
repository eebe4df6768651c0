import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store

/// Issue 12 point 5: the daemon with 100, 10,000 and 100,000 puppets in its database. At each size:
/// restart to `/health` and idle RSS, then the headline ingest (100 events per PUT, fsync on) with two
/// Olm pre-key room keys per PUT to puppets, so that account lookups, Olm session creation and the
/// session tables work at that size.
///
/// The first puppets are provisioned for real (register, device, 50 one-time keys on the loopback
/// homeserver): they are the ones the pre-key messages go to. The rest are bulk-loaded: a real
/// account each (own identity keys and fallback key, signed device keys served by the loopback
/// homeserver, so the daemon's device check finds them in place) but no one-time keys — generating 50
/// keys for 100,000 accounts would take this machine a quarter of an hour — and one Olm session
/// each, a copy of a real one under its own remote key, so the session table holds a row per puppet.
struct ScaleWorkload {
    var stages = [100, 10_000, 100_000]
    var events = 10_000

    func run(databaseURL: String, client: PostgresClient) async throws -> [BenchResult] {
        var results: [BenchResult] = []
        let provisioned = stages[0]
        let (_, keys, homeserver) = try await ProvisionWorkload(puppets: provisioned).run(client: client, policy: OneTimeKeyPolicy(), label: "puppet")
        defer { Task { await homeserver.stop() } }
        var loaded = provisioned
        for stage in stages {
            let loadStart = Measure.now()
            if stage > loaded {
                try await Self.bulkLoad(loaded..<stage, templates: provisioned, client: client, homeserver: keys)
                loaded = stage
            }
            let loadSeconds = Measure.now() - loadStart
            var restart = try await RestartWorkload().run(databaseURL: databaseURL, homeserverPort: homeserver.port, puppets: stage)
            if loadSeconds > 0.5 { restart.notes += String(format: "; bulk load before it %.0f s", loadSeconds) }
            results.append(restart)
            results.append(try await IngestWorkload(
                events: events, sessions: 100, perTransaction: 100, activePuppets: provisioned, remoteKeys: keys, label: "scale\(stage)",
                title: "ingest over HTTP, 100 per PUT, \(stage) puppets"
            ).run(databaseURL: databaseURL, client: client))
        }
        return results
    }

    /// Adds puppets `range` (`@puppet_N:bench`, device `PN`): accounts made on both cores, saved a
    /// thousand per commit, their device keys given to the loopback homeserver, and an Olm session each.
    static func bulkLoad(_ range: Range<Int>, templates: Int, client: PostgresClient, homeserver: BenchTransport) async throws {
        let cipher = try StoreCipher(secret: String(repeating: "k", count: 44))
        let store = PostgresCryptoStore(client: client, cipher: cipher)
        let machine = CryptoMachine(store: store, cipher: cipher, policy: OneTimeKeyPolicy(target: 0))
        for chunk in stride(from: range.lowerBound, to: range.upperBound, by: 1_000) {
            let indices = chunk..<min(range.upperBound, chunk + 1_000)
            let made = try await withThrowingTaskGroup(of: [(CryptoChanges, KeysUpload)].self) { group in
                for half in [indices.filter { $0 % 2 == 0 }, indices.filter { $0 % 2 == 1 }] {
                    group.addTask {
                        try half.map { index in try machine.newDevice(userID: try UserID("@puppet_\(index):bench"), deviceID: try DeviceID("P\(index)")) }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            var changes = CryptoChanges()
            for (change, upload) in made {
                changes.merge(change)
                _ = try await homeserver.uploadKeys(upload.body, as: upload.userID, device: upload.deviceID)
            }
            try await store.save(changes)
        }
        // One Olm session per bulk puppet: the real sessions the provisioned puppets hold, copied round
        // robin, each under a remote key of its own.
        try await client.execute("""
            WITH templates AS (
                SELECT row_number() OVER (ORDER BY local_user_id, session_id) - 1 AS n, session_id, pickle FROM sealbridge_olm_sessions
                WHERE local_user_id LIKE '@puppet_%' LIMIT \(templates)),
            total AS (SELECT count(*) AS c FROM templates)
            INSERT INTO sealbridge_olm_sessions (local_user_id, local_device_id, sender_key, session_id, pickle, last_used)
            SELECT '@puppet_' || i || ':bench', 'P' || i, 'bulk-remote-key-' || i, t.session_id, t.pickle, now()
            FROM generate_series(\(range.lowerBound), \(range.upperBound - 1)) AS i, total
            JOIN templates t ON true WHERE total.c > 0 AND t.n = i % total.c
            """)
    }
}
