import Bridge
import Foundation
import HomeserverClient
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

/// Local cross-signing against the real Synapse that scripts/test starts: what a strict client reads
/// from `/keys/query` verifies, and Synapse takes an appservice's keys without interactive auth.
@Suite("Cross-signing on a real Synapse")
struct SynapseCrossSigningTests {
    @Test("a puppet's identity is published and signs its device; a lost database refuses to replace it unless told, then replaces it without interactive auth")
    func publishAndReplace() async throws {
        let (url, token) = try TestHomeserver.environment()
        let client = HomeserverClient(baseURL: url, asToken: token)
        let suffix = UInt32.random(in: 0...UInt32.max)
        let puppet = try UserID("@sbtest_cs\(suffix):localhost"), observer = try UserID("@sbtest_co\(suffix):localhost")
        func engine(_ policy: ForeignIdentityPolicy) throws -> (CryptoEngine, MemoryCryptoStore) {
            let store = MemoryCryptoStore()
            let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "k", count: 44)))
            return (CryptoEngine(machine: machine, store: store, transport: client, crossSigning: { _ in policy }), store)
        }
        try await client.registerUser(localpart: observer.localpart)

        let (first, firstStore) = try engine(.refuse)
        let device = try await first.ensureDevice(puppet, deviceID: try DeviceID("CS\(suffix)"), displayName: "puppet")
        let stored = try #require(try await firstStore.crossSigningIdentity(userID: puppet))
        #expect(stored.published && stored.signedDeviceID == device)
        let master = try await Self.verifiedIdentity(client, of: puppet, device: device, as: observer)
        #expect(master == stored.keys.master)

        // The database is lost; the homeserver still serves the identity.
        let (second, _) = try engine(.refuse)
        await #expect(throws: CrossSigningIdentityError.self) {
            try await second.ensureDevice(puppet, deviceID: try DeviceID("CT\(suffix)"), displayName: "puppet")
        }
        #expect(try await Self.verifiedIdentity(client, of: puppet, device: device, as: observer) == master)

        // Told to replace: Synapse takes the new keys from the appservice without interactive auth.
        let (third, thirdStore) = try engine(.replace)
        let newDevice = try await third.ensureDevice(puppet, deviceID: try DeviceID("CU\(suffix)"), displayName: "puppet")
        let replaced = try await Self.verifiedIdentity(client, of: puppet, device: newDevice, as: observer)
        #expect(replaced != master)
        #expect(try await thirdStore.crossSigningIdentity(userID: puppet)?.keys.master == replaced)
    }

    /// Reads `user`'s keys as `requester` and checks what a strict client checks: one master key, a
    /// self-signing key signed by it, the device signed by the self-signing key. Returns the master key.
    static func verifiedIdentity(_ client: HomeserverClient, of user: UserID, device: DeviceID, as requester: UserID) async throws -> String {
        let answer = try await client.queryKeys([user], as: requester)
        let masterKeys = try #require(answer["master_keys"]?[user.rawValue]?["keys"]?.objectValue)
        #expect(masterKeys.count == 1)
        let master = try #require(masterKeys.values.first?.stringValue)
        let selfSigning = try #require(answer["self_signing_keys"]?[user.rawValue])
        try SignedJSON.verify(selfSigning, userID: user, keyID: "ed25519:\(master)", publicKey: master)
        let selfSigningKey = try #require(selfSigning["keys"]?.objectValue?.values.first?.stringValue)
        let deviceKeys = try #require(answer["device_keys"]?[user.rawValue]?[device.rawValue])
        try SignedJSON.verify(deviceKeys, userID: user, keyID: "ed25519:\(selfSigningKey)", publicKey: selfSigningKey)
        return master
    }
}
