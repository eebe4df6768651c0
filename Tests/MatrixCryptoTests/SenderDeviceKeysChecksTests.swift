@testable import MatrixCrypto
import MatrixModels
import Olm
import Testing

/// A device sharing a room key with a portal room's puppets sends the same MSC4147 `sender_device_keys`
/// in every message: their self-signature is checked once per step, and everything that depends on
/// the message (its curve25519 key, the pinned device) is still checked for each.
@Suite("sender_device_keys checked once per step")
struct SenderDeviceKeysChecksTests {
    @Test("three messages with the same keys: one signature check; a new step checks again")
    func oncePerStep() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        var toDevice: [ToDeviceEvent] = []
        for _ in 0..<3 { toDevice += try alice.roomKeyTransaction(to: upload).toDevice }
        let before = await harness.machine.senderDeviceKeysChecks
        let step = try await harness.step(AppserviceTransaction(toDevice: toDevice))
        #expect(step.toDevice.count == 3)
        #expect(step.toDevice.allSatisfy { $0.failure == nil && $0.type == "m.room_key" })
        #expect(await harness.machine.senderDeviceKeysChecks == before + 1)

        _ = try await harness.step(try alice.roomKeyTransaction(to: upload))
        #expect(await harness.machine.senderDeviceKeysChecks == before + 2)
    }

    @Test("keys already verified in the step, sent from another Olm key: still refused")
    func curveStillCheckedPerMessage() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        // Same user and device id, another account: its messages come from another curve25519 key.
        var impostor = RemoteClient(sender: RemoteSender())
        impostor.oneTimeKeyIndex = 1
        let genuine = try alice.roomKeyTransaction(to: upload).toDevice
        let forged = try impostor.toDeviceTransaction(
            to: upload, type: "m.room_key", content: impostor.sender.roomKeyContent,
            overrides: ["sender_device_keys": alice.sender.deviceKeys]).toDevice
        let before = await harness.machine.senderDeviceKeysChecks
        let step = try await harness.step(AppserviceTransaction(toDevice: genuine + forged))
        #expect(step.toDevice.count == 2)
        #expect(step.toDevice.first?.failure == nil)
        guard case .unverifiedSender(let reason) = step.toDevice.last?.failure else {
            Issue.record("the impostor's room key was not refused: \(String(describing: step.toDevice.last))")
            return
        }
        #expect(reason.contains("another curve25519 key"))
        #expect(await harness.machine.senderDeviceKeysChecks == before + 1, "the keys' signature was checked once")
    }
}
