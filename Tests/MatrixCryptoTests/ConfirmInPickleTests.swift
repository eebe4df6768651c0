import Foundation
@testable import MatrixCrypto
import MatrixModels
import Olm
import Testing

/// Confirming an upload by editing the stored pickle (issue 12 point 4) must leave what libolm's
/// unpickle, mark and pickle would, and must step aside whenever the answer asks for more.
@Suite("Confirming an upload in the pickle")
struct ConfirmInPickleTests {
    @Test("a new device's first upload at the target is confirmed in the pickle: libolm then lists nothing unpublished, the keys are the uploaded ones")
    func newDevice() async throws {
        let harness = try MachineHarness()
        let (created, upload) = try await harness.machine.createDevice(userID: harness.puppet, deviceID: harness.device)
        await harness.store.save(created)
        let changes = try #require(try await harness.machine.confirmInPickle(upload, counts: ["signed_curve25519": 50]))
        let record = try #require(changes.accounts.first)
        #expect(changes.accounts.count == 1 && record.deviceKeysUploaded && record.deviceID == harness.device)
        #expect(record.pickle != created.accounts[0].pickle)
        let account = try (try StoreCipher(secret: String(repeating: "s", count: 44))).unpickle(record.pickle) { try Account.unpickle($0, key: $1) }
        #expect(account.unpublishedOneTimeKeys.isEmpty)
        #expect(account.unpublishedFallbackKey == nil)
        #expect(account.identityKeys.curve25519 == upload.deviceKeys?["keys"]?["curve25519:SB7"]?.stringValue)
        // Before the confirmation libolm listed exactly the uploaded keys as unpublished.
        let before = try (try StoreCipher(secret: String(repeating: "s", count: 44))).unpickle(created.accounts[0].pickle) { try Account.unpickle($0, key: $1) }
        #expect(Set(before.unpublishedOneTimeKeys.map { "signed_curve25519:\($0.keyID)" }) == Set(upload.oneTimeKeys.keys))
        // The public path takes the same way and the machine reports no top-up.
        let (viaMachine, more) = try await harness.machine.confirmUpload(upload, counts: ["signed_curve25519": 50])
        #expect(more.isEmpty && viaMachine.accounts.count == 1)
    }

    @Test("an answer that needs keys generated, a fallback key to forget, or device keys still unsent takes the full path")
    func fullPathWhenNeeded() async throws {
        let harness = try MachineHarness()
        let (created, upload) = try await harness.machine.createDevice(userID: harness.puppet, deviceID: harness.device)
        await harness.store.save(created)
        #expect(try await harness.machine.confirmInPickle(upload, counts: ["signed_curve25519": 10]) == nil)
        #expect(try await harness.machine.confirmInPickle(upload, counts: [:]) == nil)
        let (changes, more) = try await harness.machine.confirmUpload(upload, counts: ["signed_curve25519": 10])
        #expect(more.first?.oneTimeKeys.count == 40)
        #expect(changes.accounts.count == 1)

        var withoutDeviceKeys = upload
        withoutDeviceKeys.deviceKeys = nil
        #expect(try await harness.machine.confirmInPickle(withoutDeviceKeys, counts: ["signed_curve25519": 50]) == nil)

        var rotated = created
        rotated.accounts[0].deviceKeysUploaded = true
        rotated.accounts[0].fallbackRotatedAt = Date()
        await harness.store.save(rotated)
        #expect(try await harness.machine.confirmInPickle(upload, counts: ["signed_curve25519": 50]) == nil)

        var otherDevice = upload
        otherDevice.deviceID = try DeviceID("ELSEWHERE")
        #expect(try await harness.machine.confirmInPickle(otherDevice, counts: ["signed_curve25519": 50]) == nil)
    }

    @Test("a pickle that does not open is left to the full path, which reports it as a corrupted store")
    func damagedPickle() async throws {
        let harness = try MachineHarness()
        let (created, upload) = try await harness.machine.createDevice(userID: harness.puppet, deviceID: harness.device)
        var damaged = created
        damaged.accounts[0].pickle = String(damaged.accounts[0].pickle.dropLast(4)) + "AAAA"
        await harness.store.save(damaged)
        #expect(try await harness.machine.confirmInPickle(upload, counts: ["signed_curve25519": 50]) == nil)
        await #expect(throws: CryptoError.self) { _ = try await harness.machine.confirmUpload(upload, counts: ["signed_curve25519": 50]) }
    }
}
