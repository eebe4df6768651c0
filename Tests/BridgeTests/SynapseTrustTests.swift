import Bridge
import Foundation
import HomeserverClient
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

/// Judging other users by cross-signing against the real Synapse that scripts/test starts: what
/// Synapse's `/keys/query` serves for a cross-signed user reads as `cross_signed`, and Synapse takes
/// the bot's user-signing signature of another user's master key (`trust`).
@Suite("Trust on a real Synapse")
struct SynapseTrustTests {
    @Test("a cross-signed puppet's device is cross_signed to another user; trust uploads the anchor's signature, which Synapse accepts and serves")
    func judgeAndSign() async throws {
        let (url, token) = try TestHomeserver.environment()
        let client = HomeserverClient(baseURL: url, asToken: token)
        let suffix = UInt32.random(in: 0...UInt32.max)
        let puppet = try UserID("@sbtest_tp\(suffix):localhost"), bot = try UserID("@sbtest_tb\(suffix):localhost")
        let store = MemoryCryptoStore()
        var settings = CryptoSettings()
        settings.trustAnchor = bot
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "t", count: 44)), settings: settings)
        let engine = CryptoEngine(machine: machine, store: store, transport: client, crossSigning: { _ in .refuse })
        let device = try await engine.ensureDevice(puppet, deviceID: try DeviceID("TP\(suffix)"), displayName: "puppet")
        _ = try await engine.ensureDevice(bot, deviceID: try DeviceID("TB\(suffix)"), displayName: "bot")

        try await engine.refreshDevices([puppet], as: bot)
        let (devices, identity) = try await engine.whois(puppet, as: bot)
        #expect(devices.map(\.1) == [.crossSigned])
        #expect(devices.first?.0.deviceID == device)
        let master = try #require(identity?.masterKey)
        #expect(master == (try await store.crossSigningIdentity(userID: puppet))?.keys.master)

        guard case .success(let (_, signed)) = try await engine.trust(puppet, fingerprint: master) else {
            Issue.record("the puppet's current master key was not trusted")
            return
        }
        #expect(signed, "Synapse refused the bot's signature of the master key")
        let userSigning = try #require(try await store.crossSigningIdentity(userID: bot)).keys.userSigning
        let served = try #require(try await client.queryKeys([puppet], as: bot)["master_keys"]?[puppet.rawValue])
        #expect((try? SignedJSON.verify(served, userID: bot, keyID: "ed25519:\(userSigning)", publicKey: userSigning)) != nil)

        // The signature Synapse serves makes the puppet verified by itself, without the recorded vouch.
        var forgotten = try #require(try await store.userIdentities([puppet])[puppet])
        forgotten.vouchedMasterKey = nil
        var changes = CryptoChanges()
        changes.userIdentities[puppet] = forgotten
        await store.save(changes)
        try await engine.refreshDevices([puppet], as: bot)
        #expect(try await machine.deviceTrust(of: puppet).devices.map(\.1) == [.verified])
    }
}
