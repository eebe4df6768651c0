import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Olm

/// The bot sends into a room whose members have `devices` devices and no Olm session yet (query,
/// claim, Olm sessions, room key to every device in batched to-device), then `followUps` more messages.
struct ShareWorkload {
    var devices: Int
    var followUps: Int
    /// The pickle secret of the machine (and of the store the caller makes for it).
    static let secret = String(repeating: "s", count: 44)

    func run(store: any CryptoStore, storeName: String) async throws -> [BenchResult] {
        let remote = try BenchTransport.makeRemoteDevices(count: devices)
        let transport = BenchTransport(remoteDevices: remote)
        let ceiling = try Self.shareCeiling(remote)
        let machine = CryptoMachine(
            store: store, cipher: try StoreCipher(secret: Self.secret),
            settings: CryptoSettings(defaultRotationMessages: 10_000))
        let engine = CryptoEngine(machine: machine, store: store, transport: transport)
        let bot = try UserID("@bench_bot:bench"), room = try RoomID("!fanout")
        try await engine.ensureDevice(bot, deviceID: try DeviceID("BENCH"), displayName: "bench")
        var members: [UserID: String] = [bot: "join"]
        for user in remote.keys { members[user] = "join" }
        try await engine.updateRoom(room, encryption: RoomEncryption(algorithm: EncryptionAlgorithm.megolm), members: members)

        let content: JSONValue = ["msgtype": "m.text", "body": "a message from the bot to a large room"]
        let cpu0 = Measure.cpuSeconds(), start = Measure.now()
        _ = try await engine.send(roomID: room, sender: bot, type: "m.room.message", content: content, txnID: "first")
        let first = Measure.now() - start, firstCPU = Measure.cpuSeconds() - cpu0
        let shared = transport.toDeviceMessages.load(ordering: .relaxed)
        guard shared == devices else { throw BenchError("room key reached \(shared) of \(devices) devices") }

        var latencies: [Double] = []
        let cpu1 = Measure.cpuSeconds(), start2 = Measure.now()
        for n in 0..<followUps {
            let t0 = Measure.now()
            _ = try await engine.send(roomID: room, sender: bot, type: "m.room.message", content: content, txnID: "next\(n)")
            latencies.append((Measure.now() - t0) * 1000)
        }
        let rest = Measure.now() - start2, restCPU = Measure.cpuSeconds() - cpu1
        return [
            BenchResult(
                workload: "first message to \(devices) new devices", store: storeName, operations: devices, unit: "devices",
                wallSeconds: first, cpuSeconds: firstCPU, throughputPerSecond: Double(devices) / first,
                p50Milliseconds: first * 1000, p99Milliseconds: first * 1000, peakRSSMiB: Measure.peakRSSMiB(), ceilingPerSecond: ceiling,
                notes: "query + claim + \(devices) Olm sessions + room key in batched sendToDevice + Megolm encrypt"),
            BenchResult(
                workload: "later messages, same room", store: storeName, operations: followUps, unit: "messages",
                wallSeconds: rest, cpuSeconds: restCPU, throughputPerSecond: Double(followUps) / rest,
                p50Milliseconds: Measure.percentile(latencies, 0.5), p99Milliseconds: Measure.percentile(latencies, 0.99),
                peakRSSMiB: Measure.peakRSSMiB(), ceilingPerSecond: nil, notes: "every send re-checks members, devices and shares"),
        ]
    }

    /// Raw libolm on one core: devices per second for an outbound Olm session plus one encryption of a room key.
    static func shareCeiling(_ remote: [UserID: [DeviceID: BenchTransport.RemoteDevice]]) throws -> Double {
        let account = try Account.create()
        let targets = remote.values.flatMap(\.values).prefix(300)
        let payload = Array(repeating: UInt8(ascii: "x"), count: 900)
        let start = Measure.now()
        for device in targets {
            let identity = device.keys["keys"]!.objectValue!.first { $0.key.hasPrefix("curve25519:") }!.value.stringValue!
            let otk = device.oneTimeKeys[0].1["key"]!.stringValue!
            let session = try Session.outbound(account: account, theirIdentityKey: identity, theirOneTimeKey: otk)
            _ = try session.encrypt(payload)
        }
        return Double(targets.count) / (Measure.now() - start)
    }
}
