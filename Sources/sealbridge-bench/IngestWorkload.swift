import AppService
import AsyncHTTPClient
import Bridge
import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import NIOCore
import Olm
import Postgres
import Primitives
import SealbridgeApp
import SealbridgeConfig
import Store

/// The full appservice path: HTTP `PUT /_matrix/app/v1/transactions/{txnId}` over loopback with 50
/// Megolm events each from many senders and sessions, through auth, decode, decrypt, replay
/// protection and commit, to the 200; one transaction at a time, as a homeserver sends them.
struct IngestWorkload {
    var events: Int
    var sessions: Int
    var perTransaction = 50
    /// Puppets with a device in the database (the scaling curve varies it).
    var puppets = 0
    /// Provisioned puppets (`@puppet_N:bench`, keys in `keys`) that receive Olm room keys: each
    /// transaction then carries two pre-key to-device messages to them, round robin.
    var activePuppets = 0
    var remoteKeys: BenchTransport?
    var label = "ingest"
    /// Runs the cross-signing backfill at this pace on the same engine (and crypto lock) while the
    /// transactions go in, to see what it costs them; nil: no backfill.
    var backfillPerSecond: Int?
    /// Writes the workload here (a directory) for another implementation to replay; nil: not written.
    var exportDirectory: String?
    /// Builds each transaction's body just before it is sent instead of all of them first (for a run
    /// of a million events, whose bodies would not fit in memory side by side).
    var streamBodies = false
    /// The row's name, when the default (from the other settings) does not say what it measures.
    var title: String?
    /// Instead of messages, portal rooms being set up as a bridge makes them (state events only): each
    /// room turns encryption on, then each of its puppets (seeded, with a device here) is invited by
    /// the bot and joins; nil: messages.
    var portalSetup: PortalSetup?
    /// Seeded puppets whose one-time key counts and unused fallback key types ride on every PUT, as
    /// Synapse sends them for every appservice user in the rooms a transaction touches (a portal
    /// room's puppets, on each message in it); 0: none.
    var countedPuppets = 0
    /// Instead of messages, rounds of room keys by Olm to this many seeded puppets, one each, from one
    /// remote device (``RoomKeyBurst``), `perTransaction` to-device messages a PUT; 0: messages.
    var roomKeyPuppets = 0

    struct PortalSetup {
        var rooms: Int
        var puppetsPerRoom: Int
        var events: Int { rooms * (1 + 2 * puppetsPerRoom) }
    }

    func run(databaseURL: String, client: PostgresClient) async throws -> BenchResult {
        let hsToken = "hs-bench-" + String(repeating: "t", count: 32), port = freePort()
        let configuration = try SealbridgeConfiguration.parse("""
            homeserver: {url: "http://127.0.0.1:1", server_name: bench}
            appservice: {port: \(port), as_token: "as-bench-\(String(repeating: "a", count: 32))", hs_token: "\(hsToken)",
                         journal: {path: "\(FileManager.default.temporaryDirectory.appendingPathComponent("sealbridge-bench-journal-\(label)").path)"}}
            database: {uri: "\(databaseURL)"}
            encryption: {pickle_key: "\(String(repeating: "k", count: 44))"}
            logging: {level: warning}
            """)
        let cipher = try StoreCipher(secret: String(repeating: "k", count: 44))
        // Fenced as the daemon is: every write of crypto state proves this instance's epoch.
        let fence = InstanceFence()
        try await fence.takeOver(client: client, holder: "sealbridge-bench")
        let store = PostgresCryptoStore(client: client, cipher: cipher, fence: fence)
        let machine = CryptoMachine(store: store, cipher: cipher, settings: Bench.cryptoSettings)
        let engine = CryptoEngine(
            machine: machine, store: store, transport: BenchTransport(), logger: Logger(label: "bench.crypto", factory: { _ in SwiftLogNoOpLogHandler() }))
        // With the bridge API's outbox, as the daemon runs when bridge_api.token is set: every decrypted
        // event is sealed and queued in the transaction.
        let users = LocalUsers(bot: try UserID("@bot:bench"), puppetNamespaceRegex: "@puppet_.+:bench")
        let handler = CryptoTransactionHandler(
            engine: engine, store: store, followUps: CryptoFollowUps(engine: engine), isLocal: { users.isLocal($0) },
            outbox: (Outbox(client: client, cipher: cipher), users))
        let room = try RoomID("!\(label):bench")
        let seeded = try await ProvisionWorkload.seedPuppets(
            max(puppets, portalSetup?.puppetsPerRoom ?? 0, countedPuppets, roomKeyPuppets), machine: machine, store: store)
        let burst = roomKeyPuppets > 0 ? try RoomKeyBurst(uploads: Array(seeded.prefix(roomKeyPuppets)), room: "!burst-\(label):bench") : nil
        // What Synapse reports for each counted puppet once its keys are up: 50 one-time keys, the fallback key unused.
        let counts = JSONValue.object(Dictionary(uniqueKeysWithValues: (0..<countedPuppets).map {
            ("@seed_\($0):bench", JSONValue.object(["S\($0)": ["signed_curve25519": 50]]))
        }))
        let fallbacks = JSONValue.object(Dictionary(uniqueKeysWithValues: (0..<countedPuppets).map {
            ("@seed_\($0):bench", JSONValue.object(["S\($0)": ["signed_curve25519"]]))
        }))
        let portalEvents = try portalSetup.map { try Self.portalEvents($0, label: label) }
        let events = portalEvents?.count ?? self.events
        var burstSent = 0

        // Senders' sessions, shared with us earlier (stored inbound sessions).
        var outbound: [(UserID, OutboundGroupSession)] = [], initialKeys: [String] = []
        var keys = CryptoChanges()
        for index in 0..<sessions {
            let user = try UserID("@sender_\(index % 50):bench"), session = try OutboundGroupSession.create()
            keys.inboundGroupSessions.append(StoredInboundGroupSession(
                roomID: room, sessionID: session.sessionID, senderKey: Self.senderKey(index), senderUserID: user, firstKnownIndex: 0,
                pickle: try cipher.pickle { try InboundGroupSession(sessionKey: session.sessionKey).pickle(key: $0) }))
            outbound.append((user, session))
            initialKeys.append(session.sessionKey)
        }
        try await store.save(keys)
        var ciphertexts: [(Int, String)] = []
        var nextPuppet = 0
        /// The body of the transaction starting at event `offset`.
        func body(at offset: Int) async throws -> [UInt8] {
            var batch: [JSONValue] = []
            var toDevice: [JSONValue] = []
            if activePuppets > 0, let remoteKeys {
                for _ in 0..<2 {
                    toDevice.append(try await Self.roomKeyMessage(to: nextPuppet % activePuppets, keys: remoteKeys, room: "!keys-\(label)"))
                    nextPuppet += 1
                }
            }
            if let burst {
                var messages: [JSONValue] = []
                for n in offset..<min(events, offset + perTransaction) { messages.append(contentsOf: try burst.round((n % roomKeyPuppets)..<(n % roomKeyPuppets + 1))) }
                burstSent += messages.count
                return JSONValue.object(["events": [], "de.sorunome.msc2409.to_device": .array(messages)]).serialized()
            }
            if let portalEvents {
                return JSONValue.object(["events": .array(Array(portalEvents[offset..<min(events, offset + perTransaction)]))]).serialized()
            }
            for n in offset..<min(events, offset + perTransaction) {
                let (user, session) = outbound[n % sessions]
                // A chat message of a realistic size (~160 bytes of text, with mentions), not a 30-byte stub.
                let payload: JSONValue = ["type": "m.room.message", "room_id": .string(room.rawValue),
                                          "content": ["msgtype": "m.text", "body": .string("ingest benchmark message \(n): " + Self.filler),
                                                      "m.mentions": ["user_ids": [.string(user.rawValue)]]]]
                let ciphertext = try session.encrypt(payload.serialized())
                if ciphertexts.count < 4_000 { ciphertexts.append((n % sessions, ciphertext)) }
                batch.append(["type": "m.room.encrypted", "room_id": .string(room.rawValue), "sender": .string(user.rawValue),
                              "event_id": .string("$\(label)\(n)"), "origin_server_ts": .integer(Int64(n)), "user_id": .string(user.rawValue), "age": 5,
                              "content": ["algorithm": .string(EncryptionAlgorithm.megolm), "session_id": .string(session.sessionID),
                                          "ciphertext": .string(ciphertext), "sender_key": .string(Self.senderKey(n % sessions)), "device_id": "D"]])
            }
            var body: [String: JSONValue] = ["events": .array(batch), "de.sorunome.msc2409.to_device": .array(toDevice)]
            if countedPuppets > 0 {
                body["org.matrix.msc3202.device_one_time_keys_count"] = counts
                body["org.matrix.msc3202.device_unused_fallback_key_types"] = fallbacks
            }
            return JSONValue.object(body).serialized()
        }
        // Built before the clock starts; a streamed run (too many events to hold) builds each body
        // just before its PUT, outside the per-transaction latency.
        let offsets = Array(stride(from: 0, to: events, by: perTransaction))
        var bodies: [[UInt8]] = []
        if !streamBodies {
            for offset in offsets { bodies.append(try await body(at: offset)) }
        }
        if let exportDirectory {
            try Self.export(
                to: exportDirectory, room: room, keys: zip(outbound, initialKeys).enumerated().map { ($1.0.0, $1.0.1.sessionID, Self.senderKey($0), $1.1) },
                bodies: bodies, label: label, hsToken: hsToken)
        }
        // A streamed run measures storage, not speed: no ceiling (its sample would be built inside the run).
        let measuresCeiling = !streamBodies && portalSetup == nil && burst == nil
        let ceilingBefore = measuresCeiling ? try await Self.twoCoreCeiling(initialKeys, Array(ciphertexts.prefix(4000))) : nil

        let server = try await Background.start { ready in
            buildAppServiceApplication(
                configuration: configuration, client: client,
                pipeline: TransactionPipeline(
                    configuration: configuration, client: client, handler: handler, cipher: cipher, lock: engine.lock, quarantine: nil,
                    fence: fence, logger: Logger(label: "bench.appservice", factory: { _ in SwiftLogNoOpLogHandler() })),
                metricsRegistry: nil,
                logger: Logger(label: "bench.appservice", factory: { _ in SwiftLogNoOpLogHandler() }), onServerRunning: { await ready(port) })
        }
        defer { Task { await server.stop() } }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        var latencies: [Double] = []
        let backfill = backfillPerSecond.map { rate in
            CrossSigningBackfillService(
                engine: engine, store: store, perSecond: rate, skip: nil, policy: { _ in .replace },
                logger: Logger(label: "bench.backfill", factory: { _ in SwiftLogNoOpLogHandler() }))
        }
        let backfillTask = backfill.map { service in Task { await service.pass() } }
        _ = try await client.query("SELECT 1")
        let pgCPU0 = await Measure.postgresCPU(client)
        let phases0 = PhaseMeter.snapshot()
        Measure.profiler("enable")
        let cpu0 = Measure.cpuSeconds(), start = Measure.now()
        for (index, offset) in offsets.enumerated() {
            let body = streamBodies ? try await body(at: offset) : bodies[index]
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/_matrix/app/v1/transactions/\(label)-\(index)")
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(hsToken)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
            let t0 = Measure.now()
            let response = try await http.execute(request, timeout: .seconds(60))
            _ = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw BenchError("transaction \(index) answered \(response.status)") }
            latencies.append((Measure.now() - t0) * 1000)
        }
        let wall = Measure.now() - start, cpu = Measure.cpuSeconds() - cpu0
        Measure.profiler("disable")
        let pgCPU = Measure.postgresCPUSeconds(from: pgCPU0, to: await Measure.postgresCPU(client))
        let phases = PhaseMeter.describe(from: phases0, to: PhaseMeter.snapshot(), puts: offsets.count)
        // Sampled again right after the row: this VM's speed drifts by a quarter within minutes, and one
        // sample taken before the row moved the ratio as much as any change did. The ratio uses the mean.
        let ceilingAfter = measuresCeiling ? try await Self.twoCoreCeiling(initialKeys, Array(ciphertexts.prefix(4000))) : nil
        let ceiling: Double? = if let ceilingBefore, let ceilingAfter { (ceilingBefore + ceilingAfter) / 2 } else { nil }
        backfillTask?.cancel()
        _ = await backfillTask?.value
        try await http.shutdown()
        if let portalSetup {
            try await Self.verifyPortals(portalSetup, label: label, client: client)
        } else if let burst {
            let stored = try await client.query("SELECT count(*) AS n FROM sealbridge_inbound_group_sessions WHERE room_id = \(burst.room)").first!.decode(Int.self, "n")
            guard stored == burstSent else { throw BenchError("accepted \(stored) of \(burstSent) room keys sent to puppets") }
        } else {
            let decrypted = try await client.query(
                "SELECT count(*) AS n FROM sealbridge_megolm_replay r JOIN sealbridge_inbound_group_sessions s USING (session_id) WHERE s.room_id = \(room.rawValue)"
            ).first!.decode(Int.self, "n")
            guard decrypted == events else { throw BenchError("decrypted \(decrypted) of \(events) events") }
            let queued = try await client.query("SELECT count(*) AS n FROM sealbridge_outbox WHERE room_id = \(room.rawValue)").first!.decode(Int.self, "n")
            guard queued == events else { throw BenchError("queued \(queued) of \(events) events for the bridge logic") }
            if activePuppets > 0 {
                let received = try await client.query("SELECT count(*) AS n FROM sealbridge_inbound_group_sessions WHERE room_id = \("!keys-\(label)")").first!.decode(Int.self, "n")
                guard received == nextPuppet else { throw BenchError("accepted \(received) of \(nextPuppet) room keys sent to puppets") }
            }
        }
        var workload = title ?? (activePuppets == 0 ? "ingest over HTTP, \(perTransaction) per PUT" : "ingest over HTTP, \(activePuppets) active puppets")
        var notes = "\(offsets.count) PUTs of \(perTransaction) Megolm events, \(sessions) sessions, outbox on; \(ceiling == nil ? "no ceiling (bodies built during the run)" : "ceiling = libolm decrypt on 2 cores, the mean of samples before and after the row (\(Self.rounded(ceilingBefore)) / \(Self.rounded(ceilingAfter))/s)"); p50/p99 per transaction; \(phases); \(Measure.cpuBound(events: events, wall: wall, cpu: cpu, postgresCPU: pgCPU, ceiling: ceiling))"
        if burst != nil {
            notes = "\(offsets.count) PUTs of \(perTransaction) Olm to-device room keys to \(roomKeyPuppets) puppets (one each, round robin; the first round opens the Olm sessions, then pre-key messages on them); p50/p99 per transaction; \(phases)"
        }
        if let portalSetup {
            notes = "\(offsets.count) PUTs of \(perTransaction) state events: \(portalSetup.rooms) rooms turn encryption on, \(portalSetup.puppetsPerRoom) puppets with a device here invited and joined in each; p50/p99 per transaction; \(phases)"
        }
        if let backfill, let backfillPerSecond {
            workload += ", cross-signing backfill at \(backfillPerSecond)/s"
            notes += "; \(backfill.progress.published) identities published meanwhile (\(backfill.progress.failed) failed)"
        }
        return BenchResult(
            workload: workload, store: "postgresql", operations: events,
            unit: "events", wallSeconds: wall, cpuSeconds: cpu, throughputPerSecond: Double(events) / wall,
            p50Milliseconds: Measure.percentile(latencies, 0.5), p99Milliseconds: Measure.percentile(latencies, 0.99),
            peakRSSMiB: Measure.peakRSSMiB(), postgresCPUSeconds: pgCPU, ceilingPerSecond: ceiling, notes: notes)
    }

    /// The workload as files (docs/benchmarks.md, "Replaying the workload elsewhere"): `room_keys.json`
    /// holds the `m.room_key` contents a receiver must have before the first transaction;
    /// `transactions.jsonl` one line per transaction, `{"txn_id", "body"}`, to PUT in order, one at a time.
    static func export(
        to directory: String, room: RoomID, keys: [(UserID, String, String, String)], bodies: [[UInt8]], label: String, hsToken: String
    ) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let roomKeys = JSONValue.array(keys.map { user, sessionID, senderKey, sessionKey in
            ["sender": .string(user.rawValue), "sender_key": .string(senderKey),
             "content": ["algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(room.rawValue), "session_id": .string(sessionID),
                         "session_key": .string(sessionKey)]]
        })
        try Data(roomKeys.serialized()).write(to: URL(fileURLWithPath: directory).appendingPathComponent("room_keys.json"))
        var lines: [UInt8] = []
        for (index, body) in bodies.enumerated() {
            lines += JSONValue.object(["txn_id": .string("\(label)-\(index)"), "body": try JSONValue.parse(body)]).serialized()
            lines.append(UInt8(ascii: "\n"))
        }
        try Data(lines).write(to: URL(fileURLWithPath: directory).appendingPathComponent("transactions.jsonl"))
        let readme = """
            Sealbridge ingest workload (\(label)): \(bodies.count) appservice transactions in one room, \(room.rawValue).
            Give the receiver the Megolm sessions in room_keys.json (each entry is the content of the m.room_key a
            sender shared, with its sender and sender_key), then PUT each line's body of transactions.jsonl to
            /_matrix/app/v1/transactions/{txn_id}, one at a time (the next after the 200), as a homeserver does.
            Every m.room.encrypted event must decrypt; each plaintext is an m.room.message with the room's id.
            """
        try Data(readme.utf8).write(to: URL(fileURLWithPath: directory).appendingPathComponent("README.txt"))
    }

    /// The state events of `setup`'s portal rooms, in the order a bridge makes them: `m.room.encryption`,
    /// then for each puppet the bot's invite and the puppet's join.
    static func portalEvents(_ setup: PortalSetup, label: String) throws -> [JSONValue] {
        var events: [JSONValue] = []
        func state(_ room: String, _ type: String, sender: String, stateKey: String, content: JSONValue) {
            events.append(["type": .string(type), "room_id": .string(room), "sender": .string(sender), "state_key": .string(stateKey),
                           "event_id": .string("$\(label)-\(events.count)"), "origin_server_ts": .integer(Int64(events.count)), "content": content])
        }
        for room in (0..<setup.rooms).map({ "!portal-\(label)-\($0):bench" }) {
            state(room, "m.room.encryption", sender: "@bot:bench", stateKey: "", content: ["algorithm": .string(EncryptionAlgorithm.megolm)])
            for puppet in (0..<setup.puppetsPerRoom).map({ "@seed_\($0):bench" }) {
                state(room, "m.room.member", sender: "@bot:bench", stateKey: puppet, content: ["membership": "invite"])
                state(room, "m.room.member", sender: .init(puppet), stateKey: puppet, content: ["membership": "join"])
            }
        }
        return events
    }

    /// Every puppet joined every portal room, its invite recorded, and is tracked.
    static func verifyPortals(_ setup: PortalSetup, label: String, client: PostgresClient) async throws {
        let pattern = "!portal-\(label)-%"
        let joined = try await client.query(
            "SELECT count(*) AS n FROM sealbridge_room_members WHERE room_id LIKE \(pattern) AND membership = 'join'").first!.decode(Int.self, "n")
        let invites = try await client.query("SELECT count(*) AS n FROM sealbridge_room_invites WHERE room_id LIKE \(pattern)").first!.decode(Int.self, "n")
        let encrypted = try await client.query("SELECT count(*) AS n FROM sealbridge_rooms WHERE room_id LIKE \(pattern)").first!.decode(Int.self, "n")
        let tracked = try await client.query("SELECT count(*) AS n FROM sealbridge_tracked_users WHERE user_id LIKE '@seed\\_%'").first!.decode(Int.self, "n")
        let expected = setup.rooms * setup.puppetsPerRoom
        guard joined == expected, invites == expected, encrypted == setup.rooms, tracked == setup.puppetsPerRoom else {
            throw BenchError("portal setup: \(joined) joins, \(invites) invites, \(encrypted) encrypted rooms, \(tracked) tracked puppets")
        }
    }

    /// A well-formed (43-character base64) stand-in for sender `index`'s Curve25519 key.
    static func senderKey(_ index: Int) -> String { Base64.encodeUnpadded(SHA256.hash(Array("bench sender \(index)".utf8))) }

    static let filler = "the quick brown fox jumps over the lazy dog while the bridge keeps every room readable, "
        + "and nobody sees unable to decrypt in their timeline"

    /// An Olm pre-key to-device message carrying a new room key (in `room`) to puppet `index`, from a
    /// new remote device that proves itself with MSC4147 `sender_device_keys`.
    static func roomKeyMessage(to index: Int, keys: BenchTransport, room: String) async throws -> JSONValue {
        let puppet = try UserID("@puppet_\(index):bench"), device = try DeviceID("P\(index)")
        let published = try await keys.queryKeys([puppet], as: puppet)["device_keys"]?[puppet.rawValue]?[device.rawValue]
        guard let curve = published?["keys"]?["curve25519:P\(index)"]?.stringValue, let ed = published?["keys"]?["ed25519:P\(index)"]?.stringValue,
            let otk = try await keys.claimKeys(CryptoMachine.keysClaimBody([DeviceRef(userID: puppet, deviceID: device)]), as: puppet, device: device)[
                "one_time_keys"]?[puppet.rawValue]?[device.rawValue]?.objectValue?.first?.value["key"]?.stringValue
        else { throw BenchError("no keys for puppet \(index)") }
        let sender = try UserID("@remote_sender_\(index % 97):bench"), senderDevice = try DeviceID("RS\(UInt32.random(in: 0...UInt32.max))")
        let account = try Account.create()
        let session = try Session.outbound(account: account, theirIdentityKey: curve, theirOneTimeKey: otk)
        let group = try OutboundGroupSession.create()
        let payload: JSONValue = [
            "type": "m.room_key", "sender": .string(sender.rawValue), "recipient": .string(puppet.rawValue),
            "recipient_keys": ["ed25519": .string(ed)], "keys": ["ed25519": .string(account.identityKeys.ed25519)],
            "sender_device_keys": try KeysUpload.signedDeviceKeys(of: account, userID: sender, deviceID: senderDevice),
            "content": ["algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(room), "session_id": .string(group.sessionID),
                        "session_key": .string(group.sessionKey)],
        ]
        let message = try session.encrypt(payload.serialized())
        return [
            "type": "m.room.encrypted", "sender": .string(sender.rawValue), "to_user_id": .string(puppet.rawValue), "to_device_id": .string(device.rawValue),
            "content": ["algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(account.identityKeys.curve25519),
                        "ciphertext": [.init(stringLiteral: curve): ["type": .integer(Int64(message.kind.rawValue)), "body": .string(message.ciphertext)]]],
        ]
    }

    private static func rounded(_ value: Double?) -> String { value.map { String(Int($0.rounded())) } ?? "-" }

    /// libolm Megolm decryptions per second with both cores busy (two threads, each its own sessions).
    static func twoCoreCeiling(_ sessionKeys: [String], _ ciphertexts: [(Int, String)]) async throws -> Double {
        let halves = [ciphertexts.enumerated().filter { $0.offset % 2 == 0 }.map(\.element), ciphertexts.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)]
        let start = Measure.now()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for half in halves {
                group.addTask {
                    let inbound = try sessionKeys.map { try InboundGroupSession(sessionKey: $0) }
                    for (index, ciphertext) in half { _ = try inbound[index].decryptWithLibolm(ciphertext) }
                }
            }
            try await group.waitForAll()
        }
        return Double(ciphertexts.count) / (Measure.now() - start)
    }
}
