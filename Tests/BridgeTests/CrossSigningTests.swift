import Bridge
import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Testing

@Suite("Cross-signing of local users")
struct CrossSigningTests {
    static let bot = "@bot:hs"
    static let puppet = "@puppet_1:hs"

    /// The identity the homeserver serves for `user`, checked the way a strict client checks it:
    /// self-signing key signed by the master key, device signed by the self-signing key.
    static func servedIdentity(_ homeserver: FakeHomeserver, _ user: UserID, device: DeviceID) async throws -> String {
        let answer = await homeserver.query([user])
        let master = try #require(answer["master_keys"]?[user.rawValue]?["keys"]?.objectValue?.values.first?.stringValue)
        let selfSigning = try #require(answer["self_signing_keys"]?[user.rawValue])
        try SignedJSON.verify(selfSigning, userID: user, keyID: "ed25519:\(master)", publicKey: master)
        let sskKey = try #require(selfSigning["keys"]?.objectValue?.values.first?.stringValue)
        let deviceKeys = try #require(answer["device_keys"]?[user.rawValue]?[device.rawValue])
        try SignedJSON.verify(deviceKeys, userID: user, keyID: "ed25519:\(sskKey)", publicKey: sskKey)
        // The device's own signature survives next to the new one.
        try SignedJSON.verify(
            deviceKeys, userID: user, keyID: "ed25519:\(device.rawValue)",
            publicKey: try #require(deviceKeys["keys"]?["ed25519:\(device.rawValue)"]?.stringValue))
        return master
    }

    @Test("a new device gets a published identity that signs it, once; asking again sends nothing")
    func newDevices() async throws {
        let homeserver = FakeHomeserver()
        let party = try await Party("sb", on: homeserver, users: [Self.bot, Self.puppet], crossSigning: { _ in .refuse })
        for (user, device) in party.devices {
            let master = try await Self.servedIdentity(homeserver, user, device: device)
            #expect(try await party.store.crossSigningIdentity(userID: user)?.keys.master == master)
            #expect(await homeserver.signingKeyUploads[user] == 1)
        }
        #expect(try await party.store.crossSigningProgress() == CrossSigningProgress(devices: 2, complete: 2))
        #expect(try await party.engine.ensureCrossSigning(party.user, onForeignIdentity: .refuse) == false)
        #expect(await homeserver.signingKeyUploads[party.user] == 1)
    }

    @Test("a new device and its new identity are committed together and recorded as published in one more commit")
    func newDeviceTwoCommits() async throws {
        let homeserver = FakeHomeserver()
        let party = try await Party("sb", on: homeserver, users: [Self.puppet], crossSigning: { _ in .replace })
        // Device + identity, then keys and identity recorded as accepted: two commits (there were four).
        #expect(await party.store.saveCount == 2)
        let identity = try #require(try await party.store.crossSigningIdentity(userID: party.user))
        #expect(identity.published && identity.signedDeviceID == party.device)
        #expect(try await Self.servedIdentity(homeserver, party.user, device: party.device) == identity.keys.master)
        #expect(try await party.store.account(userID: party.user)?.deviceKeysUploaded == true)
        #expect(await homeserver.signingKeyUploads[party.user] == 1)
    }

    @Test("a user the homeserver creates now is not asked for its devices or identity; a user it knew (a lost database) is")
    func newUserSkipsLookups() async throws {
        let homeserver = FakeHomeserver()
        let party = try await Party("sb", on: homeserver, users: [Self.puppet], crossSigning: { _ in .replace })
        #expect(await homeserver.requests["list_devices"] == nil)
        #expect(await homeserver.requests["keys_query"] == nil)
        let first = try #require(try await party.store.crossSigningIdentity(userID: party.user))
        #expect(first.published && first.signedDeviceID == party.device)

        // The same user from a new database: its devices are listed, its identity found and replaced.
        let again = try await Party("again", on: homeserver, users: [Self.puppet], crossSigning: { _ in .replace })
        #expect(await homeserver.requests["list_devices"] == 1)
        #expect(await homeserver.requests["keys_query", default: 0] >= 1)
        let replaced = try #require(try await again.store.crossSigningIdentity(userID: again.user))
        #expect(replaced.keys.master != first.keys.master)
        #expect(try await Self.servedIdentity(homeserver, again.user, device: again.device) == replaced.keys.master)
    }

    @Test("a new device whose signature is refused is still made; the identity is recorded as published and only the signature is retried")
    func newDeviceSignatureRefused() async throws {
        let homeserver = FakeHomeserver()
        await homeserver.setRefuseSignatures(true)
        let party = try await Party("sb", on: homeserver, users: [Self.puppet], crossSigning: { _ in .replace })
        let half = try #require(try await party.store.crossSigningIdentity(userID: party.user))
        #expect(half.published && half.signedDeviceID == nil)
        #expect(try await party.store.account(userID: party.user)?.deviceKeysUploaded == true)
        #expect(try await party.store.crossSigningBacklog(after: nil, limit: 10) == [party.user])
        await homeserver.setRefuseSignatures(false)
        #expect(try await party.engine.ensureCrossSigning(party.user, onForeignIdentity: .replace))
        #expect(await homeserver.signingKeyUploads[party.user] == 1)
        #expect(try await Self.servedIdentity(homeserver, party.user, device: party.device) == half.keys.master)
    }

    @Test("a refused device signature is retried alone; keys already accepted are not sent again")
    func refusedSignature() async throws {
        let homeserver = FakeHomeserver()
        let party = try await Party("sb", on: homeserver, users: [Self.puppet])
        await homeserver.setRefuseSignatures(true)
        await #expect(throws: CrossSigningIdentityError.self) { try await party.engine.ensureCrossSigning(party.user, onForeignIdentity: .replace) }
        let half = try #require(try await party.store.crossSigningIdentity(userID: party.user))
        #expect(half.published && half.signedDeviceID == nil)
        #expect(try await party.store.crossSigningBacklog(after: nil, limit: 10) == [party.user])
        await homeserver.setRefuseSignatures(false)
        #expect(try await party.engine.ensureCrossSigning(party.user, onForeignIdentity: .replace))
        #expect(await homeserver.signingKeyUploads[party.user] == 1)
        #expect(try await Self.servedIdentity(homeserver, party.user, device: party.device) == half.keys.master)
        #expect(try await party.store.crossSigningBacklog(after: nil, limit: 10).isEmpty)
    }

    @Test("an identity committed but never sent (a crash) is the one sent after the restart")
    func resumeAfterCrash() async throws {
        let homeserver = FakeHomeserver()
        let party = try await Party("sb", on: homeserver, users: [Self.puppet])
        try await party.store.save(try await party.machine.createCrossSigningIdentity(userID: party.user))
        let committed = try #require(try await party.store.crossSigningIdentity(userID: party.user))
        #expect(await homeserver.signingKeyUploads[party.user] == nil)
        try await party.engine.ensureCrossSigning(party.user, onForeignIdentity: .refuse)
        #expect(try await Self.servedIdentity(homeserver, party.user, device: party.device) == committed.keys.master)
    }

    @Test("an identity the homeserver holds and the database does not: refused for the bot, replaced for a puppet when told")
    func foreignIdentity() async throws {
        let homeserver = FakeHomeserver()
        let before = try await Party("old", on: homeserver, users: [Self.bot], crossSigning: { _ in .refuse })
        let served = try await Self.servedIdentity(homeserver, before.user, device: before.device)

        // The database is lost: a new instance on the same homeserver.
        await #expect(throws: CrossSigningIdentityError.self) {
            _ = try await Party("new", on: homeserver, users: [Self.bot], crossSigning: { _ in .refuse })
        }
        let answer = await homeserver.query([before.user])
        #expect(answer["master_keys"]?[Self.bot]?["keys"]?.objectValue?.values.first?.stringValue == served)
        #expect(await homeserver.signingKeyUploads[before.user] == 1)

        let replaced = try await Party("reset", on: homeserver, users: [Self.bot], crossSigning: { _ in .replace })
        let now = try await Self.servedIdentity(homeserver, replaced.user, device: replaced.device)
        #expect(now != served)
        #expect(try await replaced.store.crossSigningIdentity(userID: replaced.user)?.keys.master == now)
    }

    @Test("the backfill publishes every existing device, skips the bot, and finds nothing left on its next pass")
    func backfill() async throws {
        let homeserver = FakeHomeserver()
        let party = try await Party("sb", on: homeserver, users: [Self.bot, Self.puppet, "@puppet_2:hs", "@puppet_3:hs"])
        #expect(try await party.store.crossSigningProgress() == CrossSigningProgress(devices: 4, complete: 0))
        let bot = try UserID(Self.bot)
        let service = CrossSigningBackfillService(
            engine: party.engine, store: party.store, perSecond: 1_000, skip: bot, policy: { _ in .replace },
            logger: Logger(label: "test"))
        #expect(await service.pass() == 3)
        #expect(service.progress.published == 3 && service.progress.failed == 0 && !service.progress.running)
        #expect(try await party.store.crossSigningProgress() == CrossSigningProgress(devices: 4, complete: 3))
        #expect(try await party.store.crossSigningIdentity(userID: bot) == nil)
        for (user, device) in party.devices where user != bot {
            _ = try await Self.servedIdentity(homeserver, user, device: device)
        }
        #expect(await service.pass() == 0)
        #expect(await homeserver.signingKeyUploads.values.reduce(0, +) == 3)
    }

    @Test("a backfill failure for one user is counted and does not stop the others")
    func backfillFailure() async throws {
        let homeserver = FakeHomeserver()
        let party = try await Party("sb", on: homeserver, users: [Self.puppet, "@puppet_2:hs"])
        await homeserver.setRefuseSignatures(true)
        let service = CrossSigningBackfillService(
            engine: party.engine, store: party.store, perSecond: 1_000, skip: nil, policy: { _ in .replace }, logger: Logger(label: "test"))
        #expect(await service.pass() == 0)
        #expect(service.progress.failed == 2)
        #expect(service.progress.lastError?.contains("signature_refused") == true)
        await homeserver.setRefuseSignatures(false)
        #expect(await service.pass() == 2)
        #expect(try await party.store.crossSigningProgress() == CrossSigningProgress(devices: 2, complete: 2))
    }
}
