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

@Suite("One-time key pass")
struct OneTimeKeyPassTests {
    @Test("a pass reads every device's count, tops up the claimed ones in one step, and reports its progress")
    func pass() async throws {
        let hs = FakeHomeserver()
        let users = (1...5).map { "@sb_\($0):localhost" }
        let bridge = try await Party("bridge", on: hs, users: users)
        for index in [1, 3] {
            for _ in 0..<40 { _ = await hs.claim(CryptoMachine.keysClaimBody([DeviceRef(userID: bridge.users[index], deviceID: bridge.devices[index].1)])) }
        }
        let service = OneTimeKeyCheckService(
            engine: bridge.engine, store: bridge.store, devicesPerSecond: 1_000, pageSize: 2, logger: Logger(label: "test"))
        try await service.pass()
        for (user, device) in bridge.devices { #expect(await hs.oneTimeKeyCount(user, device) == 50) }
        let progress = service.progress
        #expect(!progress.running && progress.checked == 5 && progress.toppedUp == 2 && progress.failed == 0)
        #expect(progress.lastPassDevices == 5 && progress.lastPassFinishedAt != nil)
    }
}

@Suite("Fallback keys of idle devices")
struct IdleFallbackRotationTests {
    /// Claims every one-time key of a device and one more: the last answer is its fallback key.
    static func drain(_ hs: FakeHomeserver, _ device: DeviceRef) async -> String? {
        var last: String?
        for _ in 0..<51 {
            let answer = await hs.claim(CryptoMachine.keysClaimBody([device]))
            last = answer["one_time_keys"]?[device.userID.rawValue]?[device.deviceID.rawValue]?.objectValue?.first?.value["key"]?.stringValue
        }
        return last
    }

    @Test("a device found without one-time keys gets a new fallback key; one whose keys were only partly claimed keeps its own")
    func rotateWhenExhausted() async throws {
        let hs = FakeHomeserver()
        let bridge = try await Party("bridge", on: hs, users: ["@sb_1:localhost", "@sb_2:localhost"])
        let drained = DeviceRef(userID: bridge.users[0], deviceID: bridge.devices[0].1)
        let partly = DeviceRef(userID: bridge.users[1], deviceID: bridge.devices[1].1)
        let oldFallback = try #require(await Self.drain(hs, drained))
        for _ in 0..<10 { _ = await hs.claim(CryptoMachine.keysClaimBody([partly])) }
        let partlyFallback = await hs.devices[partly.userID]?[partly.deviceID]?.fallback?.1["key"]?.stringValue

        let service = OneTimeKeyCheckService(
            engine: bridge.engine, store: bridge.store, devicesPerSecond: 1_000, logger: Logger(label: "test"))
        try await service.pass()
        #expect(service.progress.toppedUp == 2 && service.progress.fallbackRotated == 1)
        #expect(await hs.oneTimeKeyCount(drained.userID, drained.deviceID) == 50)
        let newFallback = try #require(await Self.drain(hs, drained))
        #expect(newFallback != oldFallback)
        #expect(await hs.devices[partly.userID]?[partly.deviceID]?.fallback?.1["key"]?.stringValue == partlyFallback)
    }
}
