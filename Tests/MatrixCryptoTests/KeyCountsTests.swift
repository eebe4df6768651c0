import Foundation
import MatrixCrypto
import MatrixModels
import Testing

/// Synapse puts the one-time key counts of every appservice user in the rooms a transaction touches
/// on it: a portal room's hundreds of puppets, on each message. A device with nothing to do must not
/// have its account opened, re-pickled and written back for that.
@Suite("One-time key counts: only accounts with something to do are opened")
struct KeyCountsTests {
    let full: [String: Int] = ["signed_curve25519": 50]
    let unused = ["signed_curve25519"]

    /// Another local device, provisioned as the harness's puppet is (keys made and confirmed).
    func provisionOther(_ index: Int, on harness: MachineHarness) async throws -> (UserID, DeviceID) {
        let user = try UserID("@other_\(index):localhost"), device = try DeviceID("O\(index)")
        let (changes, upload) = try await harness.machine.createDevice(userID: user, deviceID: device)
        await harness.store.save(changes)
        await harness.store.save(try await harness.machine.confirmUpload(upload))
        return (user, device)
    }

    @Test("policy: an account is needed for keys under target, a used fallback key, a due old one, or unsent device keys")
    func policy() {
        let policy = OneTimeKeyPolicy(target: 50)
        func needs(_ count: [String: Int]?, _ types: [String]?, uploaded: Bool = true, due: Bool = false) -> Bool {
            policy.needsAccount(serverCount: count, unusedFallbackTypes: types, deviceKeysUploaded: uploaded, oldFallbackKeyDue: due)
        }
        #expect(!needs(full, unused))
        #expect(!needs(["signed_curve25519": 80], nil))
        #expect(!needs(nil, nil))
        #expect(needs(["signed_curve25519": 49], unused))
        #expect(needs([:], nil), "an empty count map means zero keys")
        #expect(needs(["curve25519": 50], nil), "only signed_curve25519 keys count")
        #expect(needs(full, []), "an empty list: the fallback key was used")
        #expect(needs(full, unused, uploaded: false))
        #expect(needs(full, unused, due: true))
        #expect(!needs(full, unused, uploaded: true, due: false))
    }

    @Test("counts at target for many puppets: no account opened, nothing re-pickled, nothing to upload")
    func fullCountsOpenNothing() async throws {
        let harness = try MachineHarness()
        _ = try await harness.provision()
        var counts: [UserID: [DeviceID: [String: Int]]] = [harness.puppet: [harness.device: full]]
        var fallback: [UserID: [DeviceID: [String]]] = [harness.puppet: [harness.device: unused]]
        // Others provisioned the same way, and a user we have no account for.
        for index in 0..<5 {
            let (user, device) = try await provisionOther(index, on: harness)
            counts[user] = [device: full]
            fallback[user] = [device: unused]
        }
        counts[try UserID("@stranger:localhost")] = [try DeviceID("X"): [:]]
        let step = try await harness.step(AppserviceTransaction(oneTimeKeyCounts: counts, unusedFallbackKeyTypes: fallback))
        #expect(step.changes.accounts.map(\.userID) == [], "accounts with nothing to do were re-pickled")
        #expect(step.uploads.isEmpty)
    }

    @Test("among full counts, the one device under target, the one whose fallback key was used and the stale device id")
    func onlyTheNeedyAreOpened() async throws {
        let harness = try MachineHarness()
        _ = try await harness.provision()
        var users: [(UserID, DeviceID)] = []
        for index in 0..<3 { users.append(try await provisionOther(index, on: harness)) }
        let step = try await harness.step(AppserviceTransaction(
            oneTimeKeyCounts: [
                harness.puppet: [harness.device: ["signed_curve25519": 10]], users[0].0: [users[0].1: full], users[1].0: [users[1].1: full],
                // A count for a device id that is not the user's device here: nothing to do for it.
                users[2].0: [try DeviceID("STALE"): [:]],
            ],
            unusedFallbackKeyTypes: [users[0].0: [users[0].1: unused], users[1].0: [users[1].1: []]]))
        #expect(Set(step.changes.accounts.map(\.userID)) == [harness.puppet, users[1].0])
        let topUp = try #require(step.uploads.first { $0.userID == harness.puppet })
        #expect(topUp.oneTimeKeys.count == 40)
        let rotated = try #require(step.uploads.first { $0.userID == users[1].0 })
        #expect(rotated.fallbackKeys.count == 1 && rotated.oneTimeKeys.isEmpty)
        #expect(step.uploads.count == 2)
    }

    @Test("an old fallback key past its grace period is forgotten although the counts ask for nothing")
    func dueFallbackKeyOpens() async throws {
        let clock = FallbackRotationTests.Clock()
        let store = MemoryCryptoStore()
        let machine = CryptoMachine(store: store, cipher: try StoreCipher(secret: String(repeating: "s", count: 44)), now: { clock.now })
        let user = try UserID("@p:localhost"), device = try DeviceID("P")
        let (changes, upload) = try await machine.createDevice(userID: user, deviceID: device)
        await store.save(changes)
        await store.save(try await machine.confirmUpload(upload))
        // The fallback key is used: a new one is made and the rotation time recorded.
        let rotation = try await machine.process(AppserviceTransaction(
            oneTimeKeyCounts: [user: [device: full]], unusedFallbackKeyTypes: [user: [device: []]]))
        await store.save(rotation.changes)
        #expect(await store.account(userID: user)?.fallbackRotatedAt != nil)
        await store.save(try await machine.confirmUpload(try #require(rotation.uploads.first)))
        // Within the grace period: nothing to do.
        let early = try await machine.process(AppserviceTransaction(oneTimeKeyCounts: [user: [device: full]], unusedFallbackKeyTypes: [user: [device: unused]]))
        #expect(early.changes.accounts.map(\.userID) == [])
        clock.now += CryptoSettings().fallbackKeyGracePeriod + 1
        let late = try await machine.process(AppserviceTransaction(oneTimeKeyCounts: [user: [device: full]], unusedFallbackKeyTypes: [user: [device: unused]]))
        #expect(late.changes.accounts.map(\.userID) == [user])
        #expect(late.changes.accounts.first?.fallbackRotatedAt == nil)
    }
}

