import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

/// One set of expectations, run against every ``CryptoStore`` implementation.
enum CryptoStoreConformance {
    static func run(_ store: any CryptoStore) async throws {
        let bot = try UserID("@bot:localhost"), device = try DeviceID("BOT1"), room = try RoomID("!room")
        let alice = try UserID("@alice:localhost"), mallory = try UserID("@mallory:localhost")

        // Empty store.
        #expect(try await store.account(userID: bot) == nil)
        #expect(try await store.olmSessions(localUserID: bot, localDeviceID: device, senderKey: "K").isEmpty)
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "S").isEmpty)
        #expect(try await store.replayEntries([ReplayLedger.Key(sessionID: "S", messageIndex: 5)]).isEmpty)

        // One batch with one of everything.
        var changes = CryptoChanges()
        changes.accounts = [StoredAccount(userID: bot, deviceID: device, pickle: "account-v1", deviceKeysUploaded: false)]
        let older = Date(timeIntervalSince1970: 1_800_000_000), newer = older.addingTimeInterval(60)
        changes.olmSessions = [
            StoredOlmSession(localUserID: bot, localDeviceID: device, senderKey: "K", sessionID: "o1", pickle: "olm-1", lastUsed: older),
            StoredOlmSession(localUserID: bot, localDeviceID: device, senderKey: "K", sessionID: "o2", pickle: "olm-2", lastUsed: newer),
            StoredOlmSession(localUserID: bot, localDeviceID: device, senderKey: "OTHER", sessionID: "o3", pickle: "olm-3", lastUsed: newer),
        ]
        let alices = StoredInboundGroupSession(
            roomID: room, sessionID: "S", senderKey: "K", senderUserID: alice, senderEd25519: "E", firstKnownIndex: 5, pickle: "igs-from-5")
        changes.inboundGroupSessions = [alices]
        changes.replayEntries = [ReplayLedger.Key(sessionID: "S", messageIndex: 5): "$e5"]
        try await store.save(changes)

        #expect(try await store.account(userID: bot) == changes.accounts[0])
        let sessions = try await store.olmSessions(localUserID: bot, localDeviceID: device, senderKey: "K")
        #expect(sessions.map(\.sessionID) == ["o2", "o1"])  // most recently used first
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "S") == [alices])
        #expect(try await store.replayEntries([ReplayLedger.Key(sessionID: "S", messageIndex: 5), ReplayLedger.Key(sessionID: "S", messageIndex: 6)])
            == [ReplayLedger.Key(sessionID: "S", messageIndex: 5): "$e5"])

        // Updates: account and Olm session replaced; the same owner's copy known from an earlier index
        // extends the claim, a later copy never replaces an earlier one; replay entries never change.
        var update = CryptoChanges()
        update.accounts = [StoredAccount(userID: bot, deviceID: device, pickle: "account-v2", deviceKeysUploaded: true)]
        update.olmSessions = [StoredOlmSession(localUserID: bot, localDeviceID: device, senderKey: "K", sessionID: "o1", pickle: "olm-1b", lastUsed: newer.addingTimeInterval(1))]
        var extended = alices
        extended.firstKnownIndex = 2
        extended.pickle = "igs-from-2"
        update.inboundGroupSessions = [extended]
        update.replayEntries = [ReplayLedger.Key(sessionID: "S", messageIndex: 5): "$attacker"]
        try await store.save(update)
        #expect(try await store.account(userID: bot)?.pickle == "account-v2")
        #expect(try await store.account(userID: bot)?.deviceKeysUploaded == true)
        #expect(try await store.olmSessions(localUserID: bot, localDeviceID: device, senderKey: "K").map(\.sessionID) == ["o1", "o2"])
        #expect(try await store.olmSessions(localUserID: bot, localDeviceID: device, senderKey: "K").first?.pickle == "olm-1b")
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "S") == [extended])
        #expect(try await store.replayEntries([ReplayLedger.Key(sessionID: "S", messageIndex: 5)])[ReplayLedger.Key(sessionID: "S", messageIndex: 5)] == "$e5")

        var later = CryptoChanges()
        later.inboundGroupSessions = [StoredInboundGroupSession(
            roomID: room, sessionID: "S", senderKey: "K", senderUserID: alice, senderEd25519: "E", firstKnownIndex: 9, pickle: "igs-from-9")]
        try await store.save(later)
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "S").map(\.pickle) == ["igs-from-2"])
        // The same session id in another room is another session.
        #expect(try await store.inboundGroupSessions(roomID: try RoomID("!elsewhere"), sessionID: "S").isEmpty)

        // A stored claim never changes owner: the same sender key for another user or Ed25519 key, even
        // from an earlier index, changes nothing; another sender's copy is kept as its own claim.
        var takeover = CryptoChanges()
        takeover.inboundGroupSessions = [
            StoredInboundGroupSession(roomID: room, sessionID: "S", senderKey: "K", senderUserID: mallory, senderEd25519: "E", firstKnownIndex: 0, pickle: "m1"),
            StoredInboundGroupSession(roomID: room, sessionID: "S", senderKey: "K", senderUserID: alice, senderEd25519: "M", firstKnownIndex: 0, pickle: "m2"),
            StoredInboundGroupSession(roomID: room, sessionID: "S", senderKey: "MK", senderUserID: mallory, senderEd25519: "ME", firstKnownIndex: 0, pickle: "m3"),
        ]
        try await store.save(takeover)
        let claims = try await store.inboundGroupSessions(roomID: room, sessionID: "S")
        #expect(claims.count == 2)
        #expect(claims.first { $0.senderKey == "K" } == extended, "Alice's claim is untouched")
        #expect(claims.first { $0.senderKey == "MK" }?.senderUserID == mallory, "Mallory's copy is his own claim")
        #expect(claims.map(\.firstKnownIndex) == [0, 2], "claims come lowest index first")

        // A copy known only through another device's word (bundled, or forwarded) gives way to the
        // owner's own key from the same index, never the other way round, never to a later index.
        var bundled = StoredInboundGroupSession(
            roomID: room, sessionID: "B", senderKey: "K", senderUserID: alice, senderEd25519: "E", firstKnownIndex: 0, pickle: "bundled")
        bundled.bundleSender = BundleSender(userID: mallory, curve25519: "MK")
        var viaBundle = CryptoChanges()
        viaBundle.inboundGroupSessions = [bundled]
        try await store.save(viaBundle)
        var direct = bundled
        direct.bundleSender = nil
        direct.pickle = "direct"
        var directLater = direct
        directLater.firstKnownIndex = 3
        directLater.pickle = "direct-from-3"
        var ownKey = CryptoChanges()
        ownKey.inboundGroupSessions = [directLater]
        try await store.save(ownKey)
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "B").map(\.pickle) == ["bundled"], "a later index never replaces")
        ownKey.inboundGroupSessions = [direct]
        try await store.save(ownKey)
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "B") == [direct])
        var forwarded = direct
        forwarded.forwarded = true
        forwarded.pickle = "forwarded"
        var again = CryptoChanges()
        again.inboundGroupSessions = [forwarded, bundled]
        try await store.save(again)
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "B") == [direct], "an indirect copy never replaces the owner's")

        // Parked events: kept once per event id (sealed where the store seals), found by session,
        // surfaced once, removed when released; any string the sender chose survives, NUL included.
        let event: JSONValue = ["type": "m.room.encrypted", "event_id": "$p1", "room_id": "!room", "sender": "@alice:localhost",
                                "content": ["algorithm": "m.megolm.v1.aes-sha2", "session_id": "WAIT", "ciphertext": "AwgA", "k\u{0}ey": "va\u{0}lue"]]
        let parked = ParkedEvent(event: event, sessionID: "WAIT", roomID: room, sender: alice, senderKey: "K")
        var park = CryptoChanges()
        park.parkedEvents = [parked, parked]
        try await store.save(park)
        let found = try await store.parkedEvents(sessionIDs: ["WAIT"])
        #expect(found.count == 1)
        #expect(found.first?.event == event && found.first?.sender == alice && found.first?.senderKey == "K" && found.first?.surfaced == false)
        let parkedAt = try #require(found.first?.parkedAt)
        #expect(try await store.parkedEvents(sessionIDs: ["OTHER"]).isEmpty)
        #expect(try await store.parkedEventsToSurface(parkedBefore: parkedAt.addingTimeInterval(-1), limit: 10).isEmpty)
        #expect(try await store.parkedEventsToSurface(parkedBefore: parkedAt.addingTimeInterval(1), limit: 10).map(\.eventID) == ["$p1"])
        #expect(try await store.recentParkedEvents(roomID: room, limit: 10).map(\.eventID) == ["$p1"])
        #expect(try await store.recentParkedEvents(roomID: try RoomID("!elsewhere"), limit: 10).isEmpty)
        var surface = CryptoChanges()
        surface.surfacedEvents = ["$p1"]
        try await store.save(surface)
        #expect(try await store.parkedEventsToSurface(parkedBefore: parkedAt.addingTimeInterval(1), limit: 10).isEmpty)
        #expect(try await store.parkedEvents(sessionIDs: ["WAIT"]).first?.surfaced == true)
        var release = CryptoChanges()
        release.releasedEvents = ["$p1"]
        try await store.save(release)
        #expect(try await store.parkedEvents(sessionIDs: ["WAIT"]).isEmpty)

        // Pending to-device payloads: found by sender, listed by sender, released, expired.
        let payload: JSONValue = ["type": "m.room_key", "content": ["session_key": "s\u{0}ecret"]]
        let pending = PendingToDevice(
            id: "p-1", recipient: DeviceRef(userID: bot, deviceID: device), sender: mallory, senderKey: "MK", payload: payload, receivedAt: older)
        var wait = CryptoChanges()
        wait.pendingToDevice = [pending]
        try await store.save(wait)
        #expect(try await store.pendingToDevice(senders: [mallory]) == [pending])
        #expect(try await store.pendingToDevice(senders: [alice]).isEmpty)
        #expect(try await store.pendingSenders(limit: 10).map(\.sender) == [mallory])
        #expect(try await store.pendingSenders(limit: 10).map(\.recipient) == [bot])
        var done = CryptoChanges()
        done.releasedToDevice = ["p-1"]
        try await store.save(done)
        #expect(try await store.pendingToDevice(senders: [mallory]).isEmpty)

        // Expiry: what is older than the horizons goes, what is newer stays.
        var old = CryptoChanges()
        old.pendingToDevice = [pending]
        old.parkedEvents = [parked]
        try await store.save(old)
        let none = try await store.expire(parkedBefore: .distantPast, pendingBefore: older)
        #expect(none.parked == 0 && none.pending == 0)
        let gone = try await store.expire(parkedBefore: .distantFuture, pendingBefore: newer)
        #expect(gone.parked == 1 && gone.pending == 1)
        #expect(try await store.parkedEvents(sessionIDs: ["WAIT"]).isEmpty)

        try await crossSigning(store, bot: bot, device: device)
        try await sharedRoomKeys(store, bot: bot, device: device)
    }

    /// Outbound sessions as kept for answering key requests: the first pickle stored stays the
    /// initial one while the ratchet advances; a device's share record is found with it; a replaced
    /// or discarded session stays answerable (retired) with the devices that were given its key.
    static func sharedRoomKeys(_ store: any CryptoStore, bot: UserID, device: DeviceID) async throws {
        let room = try RoomID("!shared"), alice = try UserID("@alice:localhost"), phone = try DeviceID("PHONE")
        let aliceRef = DeviceRef(userID: alice, deviceID: phone), stranger = DeviceRef(userID: try UserID("@eve:localhost"), deviceID: phone)
        let owner = OutboundSessionOwner(roomID: room, senderUserID: bot)
        var first = StoredOutboundGroupSession(
            roomID: room, senderUserID: bot, senderDeviceID: device, sessionID: "OUT1", pickle: "out1-at-0", createdAt: Date(timeIntervalSince1970: 1_800_000_000))
        var created = CryptoChanges()
        created.outboundGroupSessions = [first]
        try await store.save(created)
        #expect(try await store.sharedRoomKey(sessionID: "NONE", recipient: aliceRef) == nil)
        var shared = CryptoChanges()
        first.pickle = "out1-at-3"
        shared.outboundGroupSessions = [first]
        shared.outboundShares = [
            OutboundShare(roomID: room, senderUserID: bot, sessionID: "OUT1", userID: alice, deviceID: phone, curve25519: "CURVE", messageIndex: 3, withheldCode: nil),
            OutboundShare(roomID: room, senderUserID: bot, sessionID: "OUT1", userID: stranger.userID, deviceID: phone, curve25519: "C2", messageIndex: nil,
                          withheldCode: "m.unverified"),
        ]
        try await store.save(shared)
        let expected = SharedRoomKey(
            roomID: room, senderUserID: bot, senderDeviceID: device, sessionID: "OUT1", initialPickle: "out1-at-0",
            share: SharedRoomKey.Share(curve25519: "CURVE", messageIndex: 3))
        #expect(try await store.sharedRoomKey(sessionID: "OUT1", recipient: aliceRef) == expected)
        // Withheld is not shared.
        var withheld = expected
        withheld.share = nil
        #expect(try await store.sharedRoomKey(sessionID: "OUT1", recipient: stranger) == withheld)

        // Rotation: a new session replaces the first, which stays answerable with its share records.
        var rotated = CryptoChanges()
        rotated.outboundGroupSessions = [StoredOutboundGroupSession(
            roomID: room, senderUserID: bot, senderDeviceID: device, sessionID: "OUT2", pickle: "out2-at-0", createdAt: Date(timeIntervalSince1970: 1_800_000_100))]
        try await store.save(rotated)
        #expect(try await store.outboundGroupSession(roomID: room, senderUserID: bot)?.sessionID == "OUT2")
        #expect(try await store.sharedRoomKey(sessionID: "OUT1", recipient: aliceRef) == expected)
        #expect(try await store.sharedRoomKey(sessionID: "OUT1", recipient: stranger) == withheld)
        #expect(try await store.sharedRoomKey(sessionID: "OUT2", recipient: aliceRef)?.initialPickle == "out2-at-0")
        #expect(try await store.sharedRoomKey(sessionID: "OUT2", recipient: aliceRef)?.share == nil)
        // A discarded session (the rotate command) is kept the same way.
        var discarded = CryptoChanges()
        discarded.discardedOutboundSessions = [owner]
        try await store.save(discarded)
        #expect(try await store.outboundGroupSession(roomID: room, senderUserID: bot) == nil)
        #expect(try await store.sharedRoomKey(sessionID: "OUT2", recipient: aliceRef)?.initialPickle == "out2-at-0")
        #expect(try await store.sharedRoomKey(sessionID: "OUT1", recipient: aliceRef) == expected)
    }

    /// Local cross-signing identities: read back as written, and the backlog lists every local user
    /// whose identity is missing, unpublished or signs another device than its current one.
    static func crossSigning(_ store: any CryptoStore, bot: UserID, device: DeviceID) async throws {
        let puppet = try UserID("@puppet:localhost"), puppetDevice = try DeviceID("P1")
        var accounts = CryptoChanges()
        accounts.accounts = [StoredAccount(userID: puppet, deviceID: puppetDevice, pickle: "puppet-account", deviceKeysUploaded: true)]
        try await store.save(accounts)
        #expect(try await store.crossSigningIdentity(userID: bot) == nil)
        #expect(try await store.crossSigningBacklog(after: nil, limit: 10) == [bot, puppet])
        #expect(try await store.crossSigningBacklog(after: bot, limit: 10) == [puppet])
        #expect(try await store.crossSigningBacklog(after: nil, limit: 1) == [bot])
        #expect(try await store.crossSigningProgress() == CrossSigningProgress(devices: 2, complete: 0))

        let keys = CrossSigningPublicKeys(master: "M", selfSigning: "S", userSigning: "U")
        var identity = StoredCrossSigningIdentity(userID: bot, keys: keys, sealedSeeds: [1, 0, 2], published: false, signedDeviceID: nil)
        var created = CryptoChanges()
        created.crossSigningIdentities = [identity]
        try await store.save(created)
        #expect(try await store.crossSigningIdentity(userID: bot) == identity)
        #expect(try await store.crossSigningBacklog(after: nil, limit: 10) == [bot, puppet])

        // Published and signing the current device: done. Signing an older device: back on the list.
        identity.published = true
        identity.signedDeviceID = device
        var published = CryptoChanges()
        published.crossSigningIdentities = [identity]
        try await store.save(published)
        #expect(try await store.crossSigningIdentity(userID: bot) == identity)
        #expect(try await store.crossSigningBacklog(after: nil, limit: 10) == [puppet])
        #expect(try await store.crossSigningProgress() == CrossSigningProgress(devices: 2, complete: 1))
        var recreated = CryptoChanges()
        recreated.accounts = [StoredAccount(userID: bot, deviceID: try DeviceID("BOT2"), pickle: "account-v3", deviceKeysUploaded: true)]
        try await store.save(recreated)
        #expect(try await store.crossSigningBacklog(after: nil, limit: 10) == [bot, puppet])
        #expect(try await store.crossSigningProgress() == CrossSigningProgress(devices: 2, complete: 0))
    }
}

@Suite("Crypto store conformance")
struct CryptoStoreConformanceTests {
    static let cipher = try! StoreCipher(secret: String(repeating: "c", count: 44))

    @Test("the memory store")
    func memory() async throws {
        try await CryptoStoreConformance.run(MemoryCryptoStore())
    }

    @Test("the PostgreSQL store")
    func postgres() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        try await CryptoStoreConformance.run(PostgresCryptoStore(client: client, cipher: Self.cipher))
        await TestDatabase.drop(client, name)
    }

    @Test("PostgreSQL: parked events and pending payloads are sealed; NUL-laden text is refused before it reaches the server")
    func sealedAtRest() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher)
        let alice = try UserID("@alice:localhost"), room = try RoomID("!room")
        var changes = CryptoChanges()
        changes.parkedEvents = [ParkedEvent(
            event: ["event_id": "$p", "room_id": "!room", "sender": "@alice:localhost", "content": ["body": "plaintext-marker"]],
            sessionID: "S", roomID: room, sender: alice)]
        changes.pendingToDevice = [PendingToDevice(
            id: "x", recipient: DeviceRef(userID: alice, deviceID: try DeviceID("D")), sender: alice, senderKey: "K",
            payload: ["content": ["session_key": "secret-marker"]], receivedAt: Date())]
        try await store.save(changes)
        let dump = try await client.query("""
            SELECT (SELECT count(*) FROM sealbridge_parked_events WHERE position('plaintext-marker' in encode(sealed, 'escape')) > 0)
                 + (SELECT count(*) FROM sealbridge_pending_to_device WHERE position('secret-marker' in encode(sealed, 'escape')) > 0) AS n
            """).first?.decode(Int.self, "n")
        #expect(dump == 0)
        // Another pickle key cannot read them.
        let stranger = PostgresCryptoStore(client: client, cipher: try StoreCipher(secret: String(repeating: "z", count: 44)))
        await #expect(throws: (any Error).self) { _ = try await stranger.parkedEvents(sessionIDs: ["S"]) }
        // A text column never receives a NUL: refused with a clear error, nothing written.
        var hostile = CryptoChanges()
        hostile.replayEntries = [ReplayLedger.Key(sessionID: "S\u{0}x", messageIndex: 1): "$e"]
        await #expect { try await store.save(hostile) } throws: { ($0 as? PostgresError)?.code == .unstorableText }
        #expect(try await store.replayEntries([ReplayLedger.Key(sessionID: "S", messageIndex: 1)]).isEmpty)
        await TestDatabase.drop(client, name)
    }

    @Test("PostgreSQL: changes saved inside a transaction that rolls back leave nothing")
    func rollback() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher)
        var changes = CryptoChanges()
        changes.accounts = [StoredAccount(userID: try UserID("@bot:localhost"), deviceID: try DeviceID("D"), pickle: "p", deviceKeysUploaded: false)]
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await client.withTransaction { connection in
                try await store.save(changes, on: connection)
                throw Abort()
            }
        }
        #expect(try await store.account(userID: try UserID("@bot:localhost")) == nil)
        await TestDatabase.drop(client, name)
    }
}
