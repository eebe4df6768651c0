import Bridge
import Foundation
import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import TestSupport
import Testing

/// A puppet's device deleted on the real Synapse that scripts/test starts: the periodic pass notices,
/// replaces it under a new id with fresh keys, and signs it with the puppet's identity.
@Suite("Lost devices on a real Synapse")
struct SynapseDeviceReplacementTests {
    @Test("a deleted puppet device is replaced: new id, keys and one-time keys served, cross-signed; a stale device from a lost database is deleted")
    func replaceDeleted() async throws {
        let synapse = try SynapseFixture(), client = synapse.client
        let puppet = try synapse.user("dr"), observer = try await synapse.registered("do")
        let (engine, machine, store) = try synapse.engine(secret: "d", crossSigning: { _ in .replace })
        let preferred = try synapse.device("DR")
        let old = try await engine.ensureDevice(puppet, deviceID: preferred, displayName: "puppet")
        #expect(old == preferred)

        // An admin (or the stale-device cleanup) deletes it.
        try await client.deleteDevice(old, of: puppet)
        let service = OneTimeKeyCheckService(
            engine: engine, store: store,
            deviceCheck: .init(requester: observer, preferredDeviceID: preferred, displayName: { _ in "puppet" }),
            devicesPerSecond: 1_000, logger: Logger(label: "test"))
        try await service.pass()
        #expect(service.progress.replaced == 1)
        let new = try #require(try await machine.deviceID(of: puppet))
        #expect(new != old && new.rawValue.hasPrefix(preferred.rawValue))
        #expect(try await client.listDevices(of: puppet) == [new])
        _ = try await SynapseCrossSigningTests.verifiedIdentity(client, of: puppet, device: new, as: observer)
        let claimed = try await client.claimKeys(
            ["one_time_keys": [.init(stringLiteral: puppet.rawValue): [.init(stringLiteral: new.rawValue): "signed_curve25519"]]],
            as: .init(userID: observer))
        #expect(claimed["one_time_keys"]?[puppet.rawValue]?[new.rawValue]?.objectValue?.isEmpty == false)

        // The database is lost: a new account never takes over the device the homeserver still holds.
        let freshStore = MemoryCryptoStore()
        let fresh = CryptoEngine(
            machine: CryptoMachine(store: freshStore, cipher: try StoreCipher(secret: String(repeating: "e", count: 44))), store: freshStore,
            transport: client)
        let again = try await fresh.ensureDevice(puppet, deviceID: preferred, displayName: "puppet")
        #expect(again != new && again != old)
        #expect(try await client.listDevices(of: puppet) == [again])
        #expect(try await freshStore.account(userID: puppet)?.deviceKeysUploaded == true)
    }
}
