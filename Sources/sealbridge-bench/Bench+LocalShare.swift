import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Olm
import Postgres
import Store
import Synchronization

/// A portal room: `puppets` local puppets (one daemon, one store) and `remoteDevices` remote users
/// with one device each; every puppet sends its first message. Whatever the daemon sends to its own
/// devices comes back to it as an appservice transaction (as Synapse would push it), so the row
/// prices the whole round: claims, Olm encryption, and the Olm decryption on the way back in.
struct LocalShareWorkload {
    var puppets = 200
    var remoteDevices = 5
    static let secret = String(repeating: "l", count: 44)

    func run(store: any CryptoStore, storeName: String) async throws -> BenchResult {
        let transport = LocalShareTransport()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: Self.secret))
        let engine = CryptoEngine(machine: machine, store: store, transport: transport)
        let room = try RoomID("!portal")
        var members: [UserID: String] = [:]
        var local: [UserID] = []
        for index in 0..<puppets {
            let user = try UserID("@portal_\(index):bench")
            try await engine.ensureDevice(user, deviceID: try DeviceID("LP\(index)"), displayName: "Puppet \(index)")
            local.append(user)
            members[user] = "join"
        }
        transport.localUsers = Set(local)
        for index in 0..<remoteDevices {
            let user = try UserID("@remote_\(index):bench"), device = try DeviceID("R\(index)")
            let account = try Account.create()
            try account.generateFallbackKey()
            try account.generateOneTimeKeys(count: 50)
            _ = try await transport.uploadKeys(
                KeysUpload.pending(from: account, userID: user, deviceID: device, includeDeviceKeys: true).body, as: user, device: device)
            members[user] = "join"
        }
        try await engine.updateRoom(room, encryption: RoomEncryption(algorithm: EncryptionAlgorithm.megolm), members: members)
        transport.resetCounts()

        let content: JSONValue = ["msgtype": "m.text", "body": "a puppet's first words in the portal"]
        var latencies: [Double] = []
        var olmDecryptions = 0
        let cpu0 = Measure.cpuSeconds(), start = Measure.now()
        for (index, puppet) in local.enumerated() {
            let t0 = Measure.now()
            _ = try await engine.send(roomID: room, sender: puppet, type: "m.room.message", content: content, txnID: "first\(index)")
            // What the homeserver would push back to the daemon's own devices, as one transaction.
            let inbound = transport.takeLocalToDevice()
            if !inbound.isEmpty {
                let step = try await engine.lock.withLock {
                    let step = try await engine.machine.process(AppserviceTransaction(events: [], toDevice: inbound))
                    try await store.save(step.changes)
                    return step
                }
                olmDecryptions += step.toDevice.filter { $0.type == "m.room_key" }.count
            }
            latencies.append((Measure.now() - t0) * 1000)
        }
        let wall = Measure.now() - start, cpu = Measure.cpuSeconds() - cpu0

        // Every puppet's session must be readable by the daemon (its local readers), and every remote device must have had it.
        for puppet in local {
            guard let session = try await store.outboundGroupSession(roomID: room, senderUserID: puppet),
                !(try await store.inboundGroupSessions(roomID: room, sessionID: session.sessionID)).isEmpty
            else { throw BenchError("the daemon cannot read \(puppet)'s session") }
        }
        let counts = transport.counts()
        guard counts.remoteRoomKeys == puppets * remoteDevices else {
            throw BenchError("remote devices got \(counts.remoteRoomKeys) room keys, expected \(puppets * remoteDevices)")
        }
        return BenchResult(
            workload: "portal room: \(puppets) puppets' first messages, \(remoteDevices) remote devices", store: storeName,
            operations: puppets, unit: "messages", wallSeconds: wall, cpuSeconds: cpu, throughputPerSecond: Double(puppets) / wall,
            p50Milliseconds: Measure.percentile(latencies, 0.5), p99Milliseconds: Measure.percentile(latencies, 0.99),
            peakRSSMiB: Measure.peakRSSMiB(), ceilingPerSecond: nil,
            notes: "Olm encryptions \(counts.olmEncryptions) (to local devices \(counts.localOlmEncryptions)), one-time keys claimed \(counts.claimed), Olm decryptions \(olmDecryptions)")
    }
}

/// The bench homeserver for the portal room: keys, claims (one-time keys, then the fallback key, as
/// Synapse does) and counts of what is sent; to-device messages for local users are kept to be pushed back.
final class LocalShareTransport: CryptoTransport, @unchecked Sendable {
    // @unchecked: `localUsers` is set once before the first send; everything else is behind Mutexes.
    let inner = BenchTransport()
    var localUsers: Set<UserID> = []
    private let fallbacks = Mutex<[UserID: [DeviceID: (String, JSONValue)]]>([:])
    private let inbox = Mutex<[ToDeviceEvent]>([])
    struct Counts {
        var olmEncryptions = 0, localOlmEncryptions = 0, claimed = 0, remoteRoomKeys = 0
    }
    private let tally = Mutex(Counts())

    func counts() -> Counts { tally.withLock { $0 } }
    func resetCounts() { tally.withLock { $0 = Counts() } }

    func takeLocalToDevice() -> [ToDeviceEvent] {
        inbox.withLock { events in
            defer { events = [] }
            return events
        }
    }

    func registerUser(_ userID: UserID) async throws -> Bool { true }
    func createDevice(_ deviceID: DeviceID, for userID: UserID, displayName: String) async throws {}
    func listDevices(of userID: UserID) async throws -> [DeviceID] { [] }
    func deleteDevice(_ deviceID: DeviceID, of userID: UserID) async throws {}
    func uploadSigningKeys(_ body: JSONValue, as userID: UserID) async throws {}
    func uploadSignatures(_ body: JSONValue, as userID: UserID) async throws -> [String: JSONValue] { [:] }

    func uploadKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> [String: Int] {
        if let (id, key) = body["fallback_keys"]?.objectValue?.first { fallbacks.withLock { $0[userID, default: [:]][device] = (id, key) } }
        return try await inner.uploadKeys(body, as: userID, device: device)
    }

    func queryKeys(_ users: [UserID], as requester: UserID) async throws -> JSONValue { try await inner.queryKeys(users, as: requester) }

    func claimKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> JSONValue {
        let answer = try await inner.claimKeys(body, as: userID, device: device)
        var keys = answer["one_time_keys"]?.objectValue ?? [:]
        var claimed = 0
        for (user, wanted) in body["one_time_keys"]?.objectValue ?? [:] {
            var byDevice = keys[user]?.objectValue ?? [:]
            for (device, _) in wanted.objectValue ?? [:] {
                claimed += 1
                guard byDevice[device] == nil, let userID = try? UserID(user), let deviceID = try? DeviceID(device),
                    let (id, key) = fallbacks.withLock({ $0[userID]?[deviceID] })
                else { continue }
                byDevice[device] = .object([id: key])
            }
            keys[user] = .object(byDevice)
        }
        tally.withLock { $0.claimed += claimed }
        return ["one_time_keys": .object(keys)]
    }

    func sendToDevice(_ request: ToDeviceRequest, as userID: UserID, device: DeviceID) async throws {
        try await inner.sendToDevice(request, as: userID, device: device)
        var local: [ToDeviceEvent] = []
        var counts = Counts()
        for (user, byDevice) in request.messages {
            for (deviceID, content) in byDevice {
                let isLocal = localUsers.contains(user)
                if request.eventType == "m.room.encrypted" {
                    counts.olmEncryptions += 1
                    if isLocal { counts.localOlmEncryptions += 1 } else { counts.remoteRoomKeys += 1 }
                }
                if isLocal {
                    local.append(ToDeviceEvent(type: request.eventType, sender: userID, content: content, toUserID: user, toDeviceID: deviceID))
                }
            }
        }
        tally.withLock {
            $0.olmEncryptions += counts.olmEncryptions
            $0.localOlmEncryptions += counts.localOlmEncryptions
            $0.remoteRoomKeys += counts.remoteRoomKeys
        }
        inbox.withLock { $0 += local }
    }

    func sendRoomEvent(_ roomID: RoomID, eventType: String, txnID: String, content: JSONValue, as userID: UserID, device: DeviceID) async throws -> EventID {
        try await inner.sendRoomEvent(roomID, eventType: eventType, txnID: txnID, content: content, as: userID, device: device)
    }
}

extension Bench {
    /// `--only ROW`: one row alone. local-share: the portal-room row on the memory store, and on
    /// PostgreSQL when a database is given; provision: `--puppets` puppets with 50 one-time keys, cross-signed
    /// (the daemon's default) and not (PostgreSQL).
    func runOnly(_ row: String) async throws {
        var results: [BenchResult] = []
        switch row {
        case "local-share": results.append(try await LocalShareWorkload().run(store: MemoryCryptoStore(), storeName: "memory"))
        case "provision", "scale": break
        default: throw BenchError("unknown row \(row): ingest, storage, local-share, provision or scale")
        }
        if row == "scale" {
            guard let databaseURL else { throw BenchError("scale needs --database-url") }
            let client = PostgresClient(configuration: PostgresConfiguration(connectionString: databaseURL, poolSize: 4))
            try await Self.resetDatabase(client)
            results += try await ScaleWorkload(events: events).run(databaseURL: databaseURL, client: client)
            await client.close()
        }
        if row == "provision" {
            guard let databaseURL else { throw BenchError("provision needs --database-url") }
            let client = PostgresClient(configuration: PostgresConfiguration(connectionString: databaseURL, poolSize: 4))
            // As the daemon provisions by default (cross-signed), then without cross-signing.
            for crossSigned in [true, false] {
                try await Self.resetDatabase(client)
                let (provisioned, _, homeserver) = try await ProvisionWorkload(puppets: puppets, crossSigned: crossSigned)
                    .run(client: client, policy: OneTimeKeyPolicy(), label: "puppet")
                await homeserver.stop()
                results.append(provisioned)
            }
            await client.close()
        } else if row == "local-share", let databaseURL {
            let client = PostgresClient(configuration: PostgresConfiguration(connectionString: databaseURL, poolSize: 4))
            try await Self.resetDatabase(client)
            results.append(try await LocalShareWorkload().run(
                store: PostgresCryptoStore(client: client, cipher: try StoreCipher(secret: LocalShareWorkload.secret)), storeName: "postgresql"))
            await client.close()
        }
        try report(results)
    }
}
