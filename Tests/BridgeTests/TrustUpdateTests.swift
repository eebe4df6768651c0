@testable import Bridge
import Foundation
import MatrixCrypto
import MatrixModels
import Synchronization
import Testing

@Suite("Trust updates after delivery")
struct TrustUpdateTests {
    /// Keeps what the engine commits, as the daemon's committer would hand it to the outbox.
    final class Capturing: StepCommitter {
        let store: any CryptoStore
        let steps = Mutex<[CryptoStep]>([])
        init(store: any CryptoStore) { self.store = store }
        func commit(_ step: CryptoStep) async throws {
            try await store.save(step.changes)
            steps.withLock { $0.append(step) }
        }
    }

    @Test("a known device cross-signed after the fact: the keys answer that shows it delivers a sealbridge.trust_update per shared room, with the old and new level")
    func crossSignedLater() async throws {
        let homeserver = FakeHomeserver()
        let bridge = try await Party("sb", on: homeserver, users: ["@bot:hs", "@puppet_1:hs"])
        let alice = try await Party("alice", on: homeserver, users: ["@alice:hs"])
        let puppet = bridge.users[1]
        let room = try await encryptedRoom("!trust", on: homeserver, members: [alice.user, puppet])
        try await bridge.sync()
        _ = try await bridge.send("hello", in: room, as: puppet)  // queries alice: device_only
        #expect(try await bridge.machine.deviceTrust(of: alice.user).devices.map(\.1) == [.deviceOnly])

        // Alice sets up cross-signing and signs her device.
        try await alice.engine.ensureCrossSigning(alice.user, onForeignIdentity: .replace)
        let committer = Capturing(store: bridge.store)
        let engine = CryptoEngine(
            machine: bridge.machine, store: bridge.store, transport: FakeTransport(homeserver: homeserver), committer: committer)
        try await engine.refreshDevices([alice.user], as: puppet)
        let updates = committer.steps.withLock { $0.flatMap(\.trustUpdates) }
        #expect(updates.count == 1)
        let update = try #require(updates.first)
        #expect(update.roomID == room && update.change.userID == alice.user && update.change.deviceID == alice.device)
        #expect(update.change.previous == .deviceOnly && update.change.current == .crossSigned)

        var step = CryptoStep()
        step.trustUpdates = updates
        let deliveries = Delivery.collect(events: [], step: step, users: LocalUsers(bot: bridge.users[0], puppetNamespaceRegex: "@puppet_.*:hs"))
        #expect(deliveries.count == 1)
        let json = try #require(deliveries.first?.json)
        #expect(json["type"] == "sealbridge.trust_update" && json["room_id"]?.stringValue == room.rawValue)
        #expect(json["content"]?["previous_trust"] == "device_only" && json["content"]?["trust"] == "cross_signed")
        #expect(json["content"]?["device_id"]?.stringValue == alice.device.rawValue)
        #expect(json["event_id"]?.stringValue?.hasPrefix("$sealbridge_trust_") == true)

        // The same answer again changes nothing and delivers nothing.
        try await engine.refreshDevices([alice.user], as: puppet)
        #expect(committer.steps.withLock { $0.flatMap(\.trustUpdates) }.count == 1)
    }
}

extension TrustUpdateTests {
    @Test("a new device of a known user reports unknown_device → its level; a first query of a user reports nothing")
    func newDevice() async throws {
        let homeserver = FakeHomeserver()
        let bridge = try await Party("sb", on: homeserver, users: ["@bot:hs", "@puppet_1:hs"])
        let alice = try await Party("alice", on: homeserver, users: ["@alice:hs"])
        let puppet = bridge.users[1]
        let room = try await encryptedRoom("!new", on: homeserver, members: [alice.user, puppet])
        try await bridge.sync()
        let committer = Capturing(store: bridge.store)
        let engine = CryptoEngine(
            machine: bridge.machine, store: bridge.store, transport: FakeTransport(homeserver: homeserver), committer: committer)
        try await engine.refreshDevices([alice.user], as: puppet)
        #expect(committer.steps.withLock { $0.flatMap(\.trustUpdates) }.isEmpty)

        // Alice logs in on a second device.
        let laptop = try await Party("laptop", on: homeserver, users: ["@alice:hs"])
        try await engine.refreshDevices([alice.user], as: puppet)
        let updates = committer.steps.withLock { $0.flatMap(\.trustUpdates) }
        #expect(updates.map(\.change.deviceID) == [laptop.device])
        #expect(updates.first?.change.previous == .unknownDevice && updates.first?.change.current == .deviceOnly)
        #expect(updates.first?.roomID == room)
    }
}
