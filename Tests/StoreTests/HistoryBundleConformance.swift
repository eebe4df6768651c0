import Foundation
import MatrixCrypto
import MatrixModels
import Postgres
import Store
import TestSupport
import Testing

/// MSC4268 history bundle pointers, invites and bundled sessions, the same on every ``CryptoStore``.
enum HistoryBundleConformance {
    static func bundle(_ id: String, sender: UserID, room: RoomID, at: Date) throws -> PendingHistoryBundle {
        PendingHistoryBundle(
            id: id, recipient: DeviceRef(userID: try UserID("@puppet:localhost"), deviceID: try DeviceID("PD")), roomID: room, sender: sender,
            senderDeviceID: try DeviceID("AD"), senderKey: "CURVE", senderEd25519: "ED",
            file: EncryptedFile(
                url: try MediaURI("mxc://localhost/abc"), key: [UInt8](repeating: 0x5a, count: 32), iv: [UInt8](repeating: 1, count: 16),
                sha256: [UInt8](repeating: 2, count: 32)),
            receivedAt: at)
    }

    static func run(_ store: any CryptoStore) async throws {
        let alice = try UserID("@alice:remote"), carol = try UserID("@carol:remote"), puppet = try UserID("@puppet:localhost")
        let room = try RoomID("!room"), other = try RoomID("!other")
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        let first = try bundle("b1", sender: alice, room: room, at: now)
        var changes = CryptoChanges()
        changes.historyBundles = [first, try bundle("b2", sender: carol, room: other, at: now.addingTimeInterval(1))]
        try await store.save(changes)
        // Without an invite, only the expired ones are listed.
        #expect(try await store.historyBundles(receivedBefore: now, limit: 10).isEmpty)
        #expect(try await store.historyBundles(receivedBefore: now.addingTimeInterval(0.5), limit: 10).map(\.id) == ["b1"])
        #expect(try await store.roomInvite(roomID: room, userID: puppet) == nil)

        var invite = CryptoChanges()
        invite.roomInvites = [RoomInvite(roomID: room, userID: puppet, inviter: alice, invitedAt: now)]
        try await store.save(invite)
        #expect(try await store.roomInvite(roomID: room, userID: puppet)?.inviter == alice)
        #expect(try await store.roomInvite(roomID: other, userID: puppet) == nil)
        // Read back whole: the file's key, IV and hash included.
        #expect(try await store.historyBundles(receivedBefore: now, limit: 10) == [first])

        // A newer pointer from the same sender for the same room and recipient replaces the older.
        var newer = CryptoChanges()
        newer.historyBundles = [try bundle("b3", sender: alice, room: room, at: now.addingTimeInterval(2))]
        newer.roomInvites = [RoomInvite(roomID: room, userID: puppet, inviter: carol, invitedAt: now.addingTimeInterval(2))]
        try await store.save(newer)
        #expect(try await store.historyBundles(receivedBefore: now, limit: 10).map(\.id) == ["b3"])
        #expect(try await store.roomInvite(roomID: room, userID: puppet)?.inviter == carol)
        // Two invites of one user into one room in a commit: the last one holds, its time exact.
        let later = now.addingTimeInterval(3.25)
        var twice = CryptoChanges()
        twice.roomInvites = [
            RoomInvite(roomID: room, userID: puppet, inviter: alice, invitedAt: now.addingTimeInterval(3)),
            RoomInvite(roomID: room, userID: puppet, inviter: carol, invitedAt: later),
        ]
        try await store.save(twice)
        #expect(try await store.roomInvite(roomID: room, userID: puppet) == RoomInvite(roomID: room, userID: puppet, inviter: carol, invitedAt: later))

        var released = CryptoChanges()
        released.releasedHistoryBundles = ["b3"]
        try await store.save(released)
        #expect(try await store.historyBundles(receivedBefore: .distantFuture, limit: 10).map(\.id) == ["b2"])
        #expect(try await store.expireHistoryBundles(before: now.addingTimeInterval(10)) == 2)  // b2 and the invite
        #expect(try await store.historyBundles(receivedBefore: .distantFuture, limit: 10).isEmpty)
        #expect(try await store.roomInvite(roomID: room, userID: puppet) == nil)

        // A bundled session keeps its inviter; a direct copy from an earlier index replaces it and the mark.
        var session = StoredInboundGroupSession(
            roomID: room, sessionID: "S", senderKey: "K", senderUserID: alice, senderEd25519: "E", firstKnownIndex: 3, pickle: "P3")
        session.bundleSender = BundleSender(userID: alice, curve25519: "K")
        var bundled = CryptoChanges()
        bundled.inboundGroupSessions = [session]
        try await store.save(bundled)
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "S") == [session])
        var direct = session
        direct.bundleSender = nil
        direct.firstKnownIndex = 0
        direct.pickle = "P0"
        var better = CryptoChanges()
        better.inboundGroupSessions = [direct]
        try await store.save(better)
        #expect(try await store.inboundGroupSessions(roomID: room, sessionID: "S") == [direct])
    }
}

@Suite("Crypto store conformance: history bundles")
struct HistoryBundleConformanceTests {
    static let cipher = try! StoreCipher(secret: String(repeating: "h", count: 44))

    @Test("the memory store")
    func memory() async throws {
        try await HistoryBundleConformance.run(MemoryCryptoStore())
    }

    @Test("the PostgreSQL store; the file pointer (AES key) is sealed at rest")
    func postgres() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher)
        try await HistoryBundleConformance.run(store)
        var changes = CryptoChanges()
        changes.historyBundles = [try HistoryBundleConformance.bundle("sealed", sender: try UserID("@a:b"), room: try RoomID("!r"), at: Date())]
        try await store.save(changes)
        // The key is 32 bytes of 0x5a ("ZZZZ…"): neither raw nor in base64url ("WlpaWlpa…") in the row.
        let leaks = try await client.query("""
            SELECT count(*) AS n FROM sealbridge_history_bundles
            WHERE position('ZZZZZZZZ' in encode(sealed, 'escape')) > 0 OR position('WlpaWlpa' in encode(sealed, 'escape')) > 0
            """).first?.decode(Int.self, "n")
        #expect(leaks == 0)
        let stranger = PostgresCryptoStore(client: client, cipher: try StoreCipher(secret: String(repeating: "z", count: 44)))
        await #expect(throws: (any Error).self) { _ = try await stranger.historyBundles(receivedBefore: .distantFuture, limit: 10) }
        await TestDatabase.drop(client, name)
    }

    @Test("PostgreSQL: expiry is fenced: an instance that lost the epoch deletes nothing")
    func fencedExpiry() async throws {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(CryptoStoreMigrations.all, on: client)
        let mine = InstanceFence()
        _ = try await mine.takeOver(client: client, holder: "first")
        let store = PostgresCryptoStore(client: client, cipher: Self.cipher, fence: mine)
        var changes = CryptoChanges()
        changes.historyBundles = [try HistoryBundleConformance.bundle("old", sender: try UserID("@a:b"), room: try RoomID("!r"), at: Date(timeIntervalSince1970: 0))]
        try await store.save(changes)
        let other = InstanceFence()
        _ = try await other.takeOver(client: client, holder: "second")
        await #expect(throws: PostgresError.self) { _ = try await store.expireHistoryBundles(before: Date()) }
        #expect(try await client.query("SELECT count(*) AS n FROM sealbridge_history_bundles").first?.decode(Int.self, "n") == 1)
        await TestDatabase.drop(client, name)
    }
}
