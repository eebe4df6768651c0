import Bridge
import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

/// An idle puppet's keys claimed on the real Synapse that scripts/test starts, with no transaction
/// telling Sealbridge: the periodic pass tops the device up and replaces the fallback key it handed out.
@Suite("Fallback keys of idle devices on a real Synapse")
struct SynapseFallbackRotationTests {
    /// Claims the device's keys until Synapse hands out its fallback key (marked `fallback: true`).
    static func claimFallback(_ client: HomeserverClient, _ device: DeviceRef, as claimer: UserID) async throws -> (id: String, key: String) {
        let body: JSONValue = ["one_time_keys": [.init(stringLiteral: device.userID.rawValue): [.init(stringLiteral: device.deviceID.rawValue): "signed_curve25519"]]]
        for _ in 0..<60 {
            let answer = try await client.claimKeys(body, as: .init(userID: claimer))
            let (id, key) = try #require(answer["one_time_keys"]?[device.userID.rawValue]?[device.deviceID.rawValue]?.objectValue?.first)
            if key["fallback"]?.boolValue == true { return (id, try #require(key["key"]?.stringValue)) }
        }
        Issue.record("Synapse never handed out a fallback key")
        throw CancellationError()
    }

    @Test("the pass finds the device without one-time keys, tops it up and uploads a new fallback key")
    func rotateIdleFallback() async throws {
        let (url, token) = try TestHomeserver.environment()
        let client = HomeserverClient(baseURL: url, asToken: token)
        let suffix = UInt32.random(in: 0...UInt32.max)
        let puppet = try UserID("@sbtest_fb\(suffix):localhost"), claimer = try UserID("@sbtest_fc\(suffix):localhost")
        try await client.registerUser(localpart: claimer.localpart)
        let store = MemoryCryptoStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "f", count: 44)))
        let engine = CryptoEngine(machine: machine, store: store, transport: client)
        let deviceID = try await engine.ensureDevice(puppet, deviceID: try DeviceID("FB\(suffix)"), displayName: "puppet")
        let device = DeviceRef(userID: puppet, deviceID: deviceID)

        let first = try await Self.claimFallback(client, device, as: claimer)
        let service = OneTimeKeyCheckService(engine: engine, store: store, devicesPerSecond: 1_000, logger: Logger(label: "test"))
        try await service.pass()
        #expect(service.progress.checked == 1 && service.progress.toppedUp == 1 && service.progress.fallbackRotated == 1)

        let second = try await Self.claimFallback(client, device, as: claimer)
        #expect(second.key != first.key && second.id != first.id)
        // Keys claimed but some left: topped up, the fallback key (never handed out) stays.
        let body: JSONValue = ["one_time_keys": [.init(stringLiteral: puppet.rawValue): [.init(stringLiteral: deviceID.rawValue): "signed_curve25519"]]]
        _ = try await engine.checkOneTimeKeys([device])
        for _ in 0..<5 { _ = try await client.claimKeys(body, as: .init(userID: claimer)) }
        let partly = try await engine.checkOneTimeKeys([device])
        #expect(partly.toppedUp == 1 && partly.fallbackRotated == 0)
        #expect(try await client.uploadKeys([:], userID: puppet, deviceID: deviceID)["signed_curve25519"] == 50)
    }
}
