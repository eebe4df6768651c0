import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

/// Device tracking, room state and sending records: one set of expectations for every store.
enum RoomStateConformance {
    static func run(_ store: any CryptoStore) async throws {
        let bot = try UserID("@bot:localhost"), alice = try UserID("@alice:localhost"), bob = try UserID("@bob:localhost")
        let room = try RoomID("!room"), other = try RoomID("!other")
        let phone = VerifiedDeviceKeys(userID: alice, deviceID: try DeviceID("PHONE"), curve25519: "c1", ed25519: "e1")
        let laptop = VerifiedDeviceKeys(userID: alice, deviceID: try DeviceID("LAPTOP"), curve25519: "c2", ed25519: "e2", dehydrated: true)

        #expect(try await store.trackedUsers([alice]).isEmpty)
        #expect(try await store.localDevices(after: nil, limit: 10).isEmpty)
        var accounts = CryptoChanges()
        for name in ["@p3:localhost", "@p1:localhost", "@p2:localhost"] {
            accounts.accounts.append(StoredAccount(userID: try UserID(name), deviceID: try DeviceID("D" + name.dropFirst(2).prefix(1)), pickle: "x", deviceKeysUploaded: true))
        }
        try await store.save(accounts)
        #expect(try await store.localDevices(after: nil, limit: 2).map(\.userID.rawValue) == ["@p1:localhost", "@p2:localhost"])
        #expect(try await store.localDevices(after: try UserID("@p2:localhost"), limit: 2) == [DeviceRef(userID: try UserID("@p3:localhost"), deviceID: try DeviceID("D3"))])
        #expect(try await store.localDeviceIDs(userIDs: [try UserID("@p3:localhost"), alice, try UserID("@p1:localhost")])
            == [try UserID("@p3:localhost"): try DeviceID("D3"), try UserID("@p1:localhost"): try DeviceID("D1")])
        #expect(try await store.localDeviceIDs(userIDs: []).isEmpty)
        #expect(try await store.accountStates(userIDs: [try UserID("@p2:localhost"), alice])
            == [try UserID("@p2:localhost"): LocalAccountState(deviceID: try DeviceID("D2"), deviceKeysUploaded: true, fallbackRotatedAt: nil)])
        #expect(try await store.accountStates(userIDs: []).isEmpty)
        let read = try await store.accounts(userIDs: [try UserID("@p1:localhost"), alice, try UserID("@p3:localhost")])
        #expect(read.keys.sorted() == [try UserID("@p1:localhost"), try UserID("@p3:localhost")])
        #expect(try await read[try UserID("@p3:localhost")] == store.account(userID: try UserID("@p3:localhost")))
        #expect(try await store.accounts(userIDs: []).isEmpty)
        #expect(try await store.devices(userIDs: [alice]).isEmpty)
        #expect(try await store.room(room) == nil)
        // Accounts add no recipient: the recipients version stays.
        let version0 = try await store.recipientsVersion()

        var changes = CryptoChanges()
        changes.trackedUsers = [alice: false, bob: true]
        changes.deviceLists = [alice: [phone, laptop]]
        changes.rooms = [room: RoomEncryption(algorithm: EncryptionAlgorithm.megolm, rotationPeriodMilliseconds: 60_000, rotationPeriodMessages: nil, historyVisibility: "joined")]
        changes.memberships = [
            RoomMembership(roomID: room, userID: alice, membership: "join"), RoomMembership(roomID: room, userID: bob, membership: "invite"),
            RoomMembership(roomID: other, userID: alice, membership: "leave"),
        ]
        changes.withheldNotices = [
            WithheldNotice(roomID: room, sessionID: "W", code: "m.unverified", reason: nil, senderUserID: alice, senderKey: "K"),
            WithheldNotice(roomID: room, sessionID: "W", code: "m.blacklisted", reason: "third party", senderUserID: bob, senderKey: "K"),
        ]
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        changes.olmRecoveries = [OlmRecovery(localUserID: bot, remoteKey: "c1", at: at)]
        changes.olmSessions = [
            StoredOlmSession(localUserID: bot, localDeviceID: try DeviceID("BOT"), senderKey: "c1", sessionID: "s1", pickle: "p1", lastUsed: at),
            StoredOlmSession(localUserID: bot, localDeviceID: try DeviceID("BOT"), senderKey: "c2", sessionID: "s2", pickle: "p2", lastUsed: at),
        ]
        try await store.save(changes)

        #expect(try await store.trackedUsers([alice, bob, bot]) == [alice: false, bob: true])
        let version1 = try await store.recipientsVersion()
        #expect(version1 > version0, "a commit of members and devices must move the recipients version")
        #expect(Set(try await store.devices(userIDs: [alice, bob])[alice] ?? []) == [phone, laptop])
        #expect(try await store.room(room)?.rotationPeriodMilliseconds == 60_000)
        #expect(try await store.room(room)?.rotationPeriodMessages == nil)
        #expect(try await store.room(room)?.sharesWithInvited == false)
        #expect(try await store.members(roomID: room) == [alice: "join", bob: "invite"])
        #expect(try await store.presentRooms(userID: alice) == [room])
        // The batched reads the serial pass's prefetch makes: only what exists comes back.
        #expect(try await store.rooms([other, room]).keys.sorted() == [room])
        #expect(try await store.rooms([]).isEmpty)
        #expect(try await store.presentRooms(userIDs: [alice, bob, bot]) == [alice: [room], bob: [room]])
        #expect(try await store.presentRooms(userIDs: []).isEmpty)
        // One notice per (sender, sender key): a third party's notice does not overwrite the sender's.
        let notices = try await store.withheldNotices(roomID: room, sessionID: "W")
        #expect(notices.map(\.senderUserID) == [alice, bob])
        #expect(notices.first { $0.senderUserID == alice }?.code == "m.unverified")
        #expect(notices.first { $0.senderUserID == bob }?.reason == "third party")
        #expect(try await store.lastOlmRecovery(localUserID: bot, remoteKey: "c1") == at)
        #expect(try await store.lastOlmRecovery(localUserID: bot, remoteKey: "c2") == nil)
        let sessions = try await store.olmSessions(localUserID: bot, localDeviceID: try DeviceID("BOT"), remoteKeys: ["c1", "c2", "c3"])
        #expect(sessions.mapValues { $0.map(\.sessionID) } == ["c1": ["s1"], "c2": ["s2"]])
        // The batched read of one sender key's sessions with many local devices.
        let botDevice = DeviceRef(userID: bot, deviceID: try DeviceID("BOT"))
        let ofC1 = try await store.olmSessions(senderKey: "c1", localDevices: [botDevice, DeviceRef(userID: alice, deviceID: try DeviceID("PHONE"))])
        #expect(ofC1.mapValues { $0.map(\.sessionID) } == [botDevice: ["s1"]])
        #expect(try await store.olmSessions(senderKey: "c1", localDevices: []).isEmpty)
        // A session advanced twice in one commit: its last state is kept, with its time exact.
        var twice = CryptoChanges()
        let later = at.addingTimeInterval(2.5)
        twice.olmSessions = [
            StoredOlmSession(localUserID: bot, localDeviceID: try DeviceID("BOT"), senderKey: "c1", sessionID: "s1", pickle: "p1b", lastUsed: at.addingTimeInterval(1)),
            StoredOlmSession(localUserID: bot, localDeviceID: try DeviceID("BOT"), senderKey: "c1", sessionID: "s1", pickle: "p1c", lastUsed: later),
        ]
        try await store.save(twice)
        let advancedTwice = try await store.olmSessions(localUserID: bot, localDeviceID: try DeviceID("BOT"), senderKey: "c1")
        #expect(advancedTwice.map(\.pickle) == ["p1c"] && advancedTwice.first?.lastUsed == later)

        // A new device list replaces the old one; untracking forgets the user and their devices.
        var update = CryptoChanges()
        update.deviceLists = [alice: [phone]]
        update.untrackedUsers = [bob]
        update.memberships = [RoomMembership(roomID: room, userID: bob, membership: "leave")]
        try await store.save(update)
        #expect(try await store.devices(userIDs: [alice])[alice] == [phone])
        #expect(try await store.trackedUsers([bob]).isEmpty)
        #expect(try await store.members(roomID: room)[bob] == "leave")
        // Several changes of one member in one commit (an invite, then the join): the last one holds,
        // as if each were saved in turn; the other members of the commit are kept.
        let carol = try UserID("@carol:localhost"), dave = try UserID("@dave:localhost")
        var churn = CryptoChanges()
        churn.memberships = [
            RoomMembership(roomID: other, userID: carol, membership: "invite"), RoomMembership(roomID: other, userID: dave, membership: "join"),
            RoomMembership(roomID: other, userID: carol, membership: "join"), RoomMembership(roomID: other, userID: dave, membership: "leave"),
            RoomMembership(roomID: other, userID: bot, membership: "join"),
        ]
        churn.trackedUsers = [carol: true, dave: true]
        try await store.save(churn)
        #expect(try await store.members(roomID: other) == [alice: "leave", carol: "join", dave: "leave", bot: "join"])
        #expect(try await store.presentRooms(userIDs: [carol, dave]) == [carol: [other]])
        var forget = CryptoChanges()
        forget.untrackedUsers = [carol, dave]
        try await store.save(forget)
        #expect(try await store.trackedUsers([alice, carol, dave]) == [alice: false])
        #expect(try await store.recipientsVersion() > version1)
        let version2 = try await store.recipientsVersion()

        // Outbound session: shares are recorded per device; a new session replaces the old one and its shares.
        let device = try DeviceID("BOT")
        var outbound = CryptoChanges()
        outbound.outboundGroupSessions = [StoredOutboundGroupSession(roomID: room, senderUserID: bot, senderDeviceID: device, sessionID: "O1", pickle: "o1", createdAt: at)]
        try await store.save(outbound)
        var shares = CryptoChanges()
        shares.outboundShares = [
            OutboundShare(roomID: room, senderUserID: bot, sessionID: "O1", userID: alice, deviceID: phone.deviceID, curve25519: "c1", messageIndex: 0, withheldCode: nil),
            OutboundShare(
                roomID: room, senderUserID: bot, sessionID: "O1", userID: alice, deviceID: laptop.deviceID, curve25519: "c2", messageIndex: nil,
                withheldCode: "m.no_olm", retryAfter: at.addingTimeInterval(120), failedClaims: 2),
            // A share for a session that is not the current one is dropped.
            OutboundShare(roomID: room, senderUserID: bot, sessionID: "GONE", userID: alice, deviceID: phone.deviceID, curve25519: "c1", messageIndex: 0, withheldCode: nil),
        ]
        try await store.save(shares)
        #expect(try await store.recipientsVersion() == version2, "sessions and shares add no recipient")
        let loaded = try #require(try await store.outboundGroupSession(roomID: room, senderUserID: bot))
        #expect(loaded.sessionID == "O1" && loaded.createdAt == at)
        #expect(Set(loaded.shares) == Set(shares.outboundShares.prefix(2)))
        // Advancing the ratchet keeps the shares.
        var advanced = CryptoChanges()
        advanced.outboundGroupSessions = [StoredOutboundGroupSession(roomID: room, senderUserID: bot, senderDeviceID: device, sessionID: "O1", pickle: "o1b", createdAt: at)]
        try await store.save(advanced)
        #expect(try await store.outboundGroupSession(roomID: room, senderUserID: bot)?.pickle == "o1b")
        #expect(try await store.outboundGroupSession(roomID: room, senderUserID: bot)?.shares.count == 2)
        #expect(try await store.outboundGroupSession(roomID: room, senderUserID: bot)?.shares.first { $0.withheldCode == "m.no_olm" }?.failedClaims == 2)
        var rotated = CryptoChanges()
        rotated.outboundGroupSessions = [StoredOutboundGroupSession(roomID: room, senderUserID: bot, senderDeviceID: device, sessionID: "O2", pickle: "o2", createdAt: at.addingTimeInterval(5))]
        try await store.save(rotated)
        #expect(try await store.outboundGroupSession(roomID: room, senderUserID: bot)?.sessionID == "O2")
        #expect(try await store.outboundGroupSession(roomID: room, senderUserID: bot)?.shares.isEmpty == true)
        var discard = CryptoChanges()
        discard.discardedOutboundSessions = [OutboundSessionOwner(roomID: room, senderUserID: bot)]
        try await store.save(discard)
        #expect(try await store.outboundGroupSession(roomID: room, senderUserID: bot) == nil)
    }
}

@Suite("Crypto store conformance: device tracking, rooms, sending")
struct RoomStateConformanceTests {
    @Test("the memory store")
    func memory() async throws {
        try await RoomStateConformance.run(MemoryCryptoStore())
    }

    @Test("the PostgreSQL store")
    func postgres() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        try await RoomStateConformance.run(PostgresCryptoStore(client: client, cipher: try StoreCipher(secret: String(repeating: "r", count: 44))))
        await TestDatabase.drop(client, name)
    }
}
