import MatrixCrypto
import MatrixModels
import Testing

/// An account only read in a step is not written back; one that changed is.
@Suite("Accounts: written back only when changed")
struct AccountWriteBackTests {
    @Test("the first pre-key message spends a one-time key (written); the next on the same session changes nothing (not written)")
    func toDeviceOnExistingSession() async throws {
        let harness = try MachineHarness()
        let upload = try await harness.provision()
        var alice = RemoteClient()
        let first = try await harness.step(try alice.roomKeyTransaction(to: upload))
        #expect(first.toDevice.first?.failure == nil)
        #expect(first.changes.accounts.map(\.userID) == [harness.puppet], "the spent one-time key must be stored")
        // The sender has no reply yet, so its next message (the same key again) is a pre-key message
        // on the same session.
        let second = try await harness.step(try alice.toDeviceTransaction(to: upload, type: "m.room_key", content: alice.sender.roomKeyContent))
        #expect(second.toDevice.first?.failure == nil)
        #expect(second.changes.olmSessions.count == 1, "the session advanced and is stored")
        #expect(second.changes.accounts.map(\.userID) == [], "the unchanged account was written back")
    }
}
