import Foundation
import HomeserverClient
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

/// Against the real Synapse that scripts/test starts (registration with `io.element.msc4190: true`,
/// user namespace `@sbtest_.*:localhost`).
extension TestHomeserver {
    static func client() throws -> HomeserverClient {
        let (url, token) = try environment()
        return HomeserverClient(baseURL: url, asToken: token)
    }
}

@Suite("Puppet devices on a real Synapse")
struct SynapseDeviceTests {
    @Test("register (idempotent, says whether the user is new), create a device with MSC4190, upload the machine's keys; others see them signed and can claim a key")
    func provisionPuppet() async throws {
        let client = try TestHomeserver.client()
        let suffix = UInt32.random(in: 0...UInt32.max)
        let puppet = try UserID("@sbtest_p\(suffix):localhost"), observer = try UserID("@sbtest_o\(suffix):localhost")
        let device = try DeviceID("SB\(suffix)")
        // Synapse says whether it created the user (200) or had it (M_USER_IN_USE): only a new user is
        // known to have no devices and no identity.
        #expect(try await client.registerUser(localpart: puppet.localpart) == true)
        #expect(try await client.registerUser(localpart: puppet.localpart) == false)
        try await client.registerUser(localpart: observer.localpart)

        // Keys for a device that does not exist yet are refused: the device must be created first.
        await #expect { try await client.uploadKeys(["one_time_keys": [:]], userID: puppet, deviceID: device) } throws: {
            ($0 as? HomeserverError)?.status == 400
        }
        try await client.createDevice(device, for: puppet, displayName: "Puppet \(suffix)")
        try await client.createDevice(device, for: puppet, displayName: "Puppet \(suffix)")

        let store = MemoryCryptoStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "q", count: 44)))
        let (changes, upload) = try await machine.createDevice(userID: puppet, deviceID: device)
        await store.save(changes)
        let counts = try await client.uploadKeys(upload.body, userID: puppet, deviceID: device)
        #expect(counts["signed_curve25519"] == 50)
        await store.save(try await machine.confirmUpload(upload))
        #expect(await store.account(userID: puppet)?.deviceKeysUploaded == true)

        // Another user sees the device keys, self-signed by the device.
        let query = try await client.queryKeys([puppet], as: observer)
        let published = try #require(query["device_keys"]?[puppet.rawValue]?[device.rawValue])
        let verified = try VerifiedDeviceKeys(published, expectedUser: puppet)
        #expect(verified.curve25519 == upload.deviceKeys?["keys"]?["curve25519:\(device.rawValue)"]?.stringValue)

        // And claims a one-time key, signed by that device: enough to start an Olm session with the puppet.
        let claim = try await client.request(
            .POST, "/_matrix/client/v3/keys/claim", as: .init(userID: observer),
            body: ["one_time_keys": [.init(stringLiteral: puppet.rawValue): [.init(stringLiteral: device.rawValue): "signed_curve25519"]]])
        let claimed = try #require(claim["one_time_keys"]?[puppet.rawValue]?[device.rawValue]?.objectValue?.first)
        #expect(claimed.key.hasPrefix("signed_curve25519:"))
        try SignedJSON.verify(claimed.value, userID: puppet, keyID: "ed25519:\(device.rawValue)", publicKey: verified.ed25519)
        #expect(upload.oneTimeKeys[claimed.key] != nil)
    }
}
