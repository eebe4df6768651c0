import Bridge
import Logging
import MatrixCrypto
import MatrixModels
import Testing

@Suite("One-time key check on a timer")
struct OneTimeKeyCheckTests {
    @Test("an idle puppet whose keys were claimed is topped up by the periodic check, page by page")
    func topUpIdlePuppets() async throws {
        let hs = FakeHomeserver()
        let bridge = try await Party("bridge", on: hs, users: ["@sb_1:localhost", "@sb_2:localhost", "@sb_3:localhost"])
        #expect(await hs.oneTimeKeyCount(bridge.users[1], bridge.devices[1].1) == 50)
        // Peers claim 30 of one puppet's keys; no transaction tells Sealbridge.
        for _ in 0..<30 { _ = await hs.claim(CryptoMachine.keysClaimBody([DeviceRef(userID: bridge.users[1], deviceID: bridge.devices[1].1)])) }
        #expect(await hs.oneTimeKeyCount(bridge.users[1], bridge.devices[1].1) == 20)

        let service = OneTimeKeyCheckService(engine: bridge.engine, store: bridge.store, pageSize: 2, logger: Logger(label: "test"))
        let next = await service.checkPage(after: nil)
        #expect(next == bridge.users[1])
        #expect(await hs.oneTimeKeyCount(bridge.users[1], bridge.devices[1].1) == 50)
        // The last page is short: the walk starts over.
        #expect(await service.checkPage(after: next) == nil)
        #expect(await hs.oneTimeKeyCount(bridge.users[2], bridge.devices[2].1) == 50)
    }
}
