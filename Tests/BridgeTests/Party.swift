import Bridge
import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Synchronization

/// A settable clock for rotation by time; each reading is a millisecond after the previous one, as
/// on a real machine, so "most recently used" has an order.
final class TestClock: Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    var now: Date {
        current.withLock {
            $0 = $0.addingTimeInterval(0.001)
            return $0
        }
    }
    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A store that can pretend some Olm sessions were lost, to wedge a session on purpose.
actor ForgetfulStore: CryptoStore {
    let inner = MemoryCryptoStore()
    private var forgotten: Set<String> = []
    /// How many commits reached the store.
    private(set) var saveCount = 0
    /// How many reads of room state, tracking and accounts reached the store (what member events ask);
    /// a batch read of nothing is not counted (the PostgreSQL store sends no query for it).
    private(set) var roomStateReads = 0

    func forget(_ sessionIDs: [String]) { forgotten.formUnion(sessionIDs) }

    /// While set, reading Olm sessions (or device lists) throws it: ``DatabaseDown`` as an outage
    /// would, or another error as a row that does not read.
    private var olmReadError: (any Error & Sendable)?
    private var failingDeviceReads = false
    func failOlmSessionReads(with error: (any Error & Sendable)?) { olmReadError = error }
    func failDeviceReads(_ fail: Bool) { failingDeviceReads = fail }

    func account(userID: UserID) async throws -> StoredAccount? {
        roomStateReads += 1
        return await inner.account(userID: userID)
    }
    func localDeviceIDs(userIDs: [UserID]) async throws -> [UserID: DeviceID] {
        if !userIDs.isEmpty { roomStateReads += 1 }
        return try await inner.localDeviceIDs(userIDs: userIDs)
    }
    func localDevices(after: UserID?, limit: Int) async throws -> [DeviceRef] { await inner.localDevices(after: after, limit: limit) }
    func olmSessions(localUserID: UserID, localDeviceID: DeviceID, senderKey: String) async throws -> [StoredOlmSession] {
        if let olmReadError { throw olmReadError }
        return await inner.olmSessions(localUserID: localUserID, localDeviceID: localDeviceID, senderKey: senderKey).filter { !forgotten.contains($0.sessionID) }
    }
    func olmSessions(localUserID: UserID, localDeviceID: DeviceID, remoteKeys: [String]) async throws -> [String: [StoredOlmSession]] {
        await inner.olmSessions(localUserID: localUserID, localDeviceID: localDeviceID, remoteKeys: remoteKeys)
            .mapValues { $0.filter { !forgotten.contains($0.sessionID) } }.filter { !$0.value.isEmpty }
    }
    func inboundGroupSessions(roomID: RoomID, sessionID: String) async throws -> [StoredInboundGroupSession] {
        await inner.inboundGroupSessions(roomID: roomID, sessionID: sessionID)
    }
    func replayEntries(_ keys: Set<ReplayLedger.Key>) async throws -> [ReplayLedger.Key: String] { await inner.replayEntries(keys) }
    func parkedEvents(sessionIDs: Set<String>) async throws -> [ParkedEvent] { await inner.parkedEvents(sessionIDs: sessionIDs) }
    func parkedEventsToSurface(parkedBefore: Date, limit: Int) async throws -> [ParkedEvent] {
        await inner.parkedEventsToSurface(parkedBefore: parkedBefore, limit: limit)
    }
    func recentParkedEvents(roomID: RoomID?, limit: Int) async throws -> [ParkedEvent] { await inner.recentParkedEvents(roomID: roomID, limit: limit) }
    func pendingToDevice(senders: Set<UserID>) async throws -> [PendingToDevice] { await inner.pendingToDevice(senders: senders) }
    func pendingSenders(limit: Int) async throws -> [(sender: UserID, recipient: UserID)] { await inner.pendingSenders(limit: limit) }
    func expire(parkedBefore: Date, pendingBefore: Date) async throws -> (parked: Int, pending: Int) {
        await inner.expire(parkedBefore: parkedBefore, pendingBefore: pendingBefore)
    }
    func recipientsVersion() async throws -> Int64 { await inner.recipientsVersion() }
    func save(_ changes: CryptoChanges) async throws {
        saveCount += 1
        await inner.save(changes)
    }
    func devices(userIDs: [UserID]) async throws -> [UserID: [VerifiedDeviceKeys]] {
        if failingDeviceReads { throw DatabaseDown() }
        return await inner.devices(userIDs: userIDs)
    }
    func trackedUsers(_ userIDs: [UserID]) async throws -> [UserID: Bool] {
        if !userIDs.isEmpty { roomStateReads += 1 }
        return await inner.trackedUsers(userIDs)
    }
    func userIdentities(_ userIDs: [UserID]) async throws -> [UserID: StoredUserIdentity] { await inner.userIdentities(userIDs) }
    func room(_ roomID: RoomID) async throws -> RoomEncryption? {
        roomStateReads += 1
        return await inner.room(roomID)
    }
    func rooms(_ roomIDs: [RoomID]) async throws -> [RoomID: RoomEncryption] {
        if !roomIDs.isEmpty { roomStateReads += 1 }
        return try await inner.rooms(roomIDs)
    }
    func members(roomID: RoomID) async throws -> [UserID: String] {
        roomStateReads += 1
        return await inner.members(roomID: roomID)
    }
    func presentRooms(userID: UserID) async throws -> [RoomID] {
        roomStateReads += 1
        return await inner.presentRooms(userID: userID)
    }
    func presentRooms(userIDs: [UserID]) async throws -> [UserID: [RoomID]] {
        if !userIDs.isEmpty { roomStateReads += 1 }
        return try await inner.presentRooms(userIDs: userIDs)
    }
    func outboundGroupSession(roomID: RoomID, senderUserID: UserID) async throws -> StoredOutboundGroupSession? {
        await inner.outboundGroupSession(roomID: roomID, senderUserID: senderUserID)
    }
    func outboundGroupSessionWithoutShares(roomID: RoomID, senderUserID: UserID) async throws -> StoredOutboundGroupSession? {
        await inner.outboundGroupSessionWithoutShares(roomID: roomID, senderUserID: senderUserID)
    }
    func sharedRoomKey(sessionID: String, recipient: DeviceRef) async throws -> SharedRoomKey? {
        await inner.sharedRoomKey(sessionID: sessionID, recipient: recipient)
    }
    func outgoingKeyRequests(sessionIDs: Set<String>) async throws -> [OutgoingKeyRequest] { await inner.outgoingKeyRequests(sessionIDs: sessionIDs) }
    func keyRequestsDue(parkedBefore: Date, askedBefore: Date, excluding: Set<String>, limit: Int) async throws -> [ParkedEvent] {
        await inner.keyRequestsDue(parkedBefore: parkedBefore, askedBefore: askedBefore, excluding: excluding, limit: limit)
    }
    func withheldNotices(roomID: RoomID, sessionID: String) async throws -> [WithheldNotice] {
        await inner.withheldNotices(roomID: roomID, sessionID: sessionID)
    }
    func lastOlmRecovery(localUserID: UserID, remoteKey: String) async throws -> Date? {
        await inner.lastOlmRecovery(localUserID: localUserID, remoteKey: remoteKey)
    }
    func crossSigningIdentity(userID: UserID) async throws -> StoredCrossSigningIdentity? { await inner.crossSigningIdentity(userID: userID) }
    func crossSigningBacklog(after: UserID?, limit: Int) async throws -> [UserID] { await inner.crossSigningBacklog(after: after, limit: limit) }
    func crossSigningProgress() async throws -> CrossSigningProgress { await inner.crossSigningProgress() }
    func historyBundles(receivedBefore: Date, limit: Int) async throws -> [PendingHistoryBundle] {
        await inner.historyBundles(receivedBefore: receivedBefore, limit: limit)
    }
    func roomInvite(roomID: RoomID, userID: UserID) async throws -> RoomInvite? { await inner.roomInvite(roomID: roomID, userID: userID) }
    func expireHistoryBundles(before: Date) async throws -> Int { await inner.expireHistoryBundles(before: before) }
}

/// What a store read throws while the database is unreachable (in these tests).
struct DatabaseDown: StoreAvailabilityError {
    var isStoreUnavailable: Bool { true }
}

/// What a store read throws for a row it cannot read (in these tests).
struct BadRow: Error {}

/// One Sealbridge instance (machine, store, engine) with some local users, talking to the fake homeserver.
final class Party: Sendable {
    let name: String
    let homeserver: FakeHomeserver
    let store: ForgetfulStore
    let engine: CryptoEngine
    let clock = TestClock()
    let devices: [(UserID, DeviceID)]
    private let cursor = Mutex(0)

    var users: [UserID] { devices.map(\.0) }
    var user: UserID { devices[0].0 }
    var device: DeviceID { devices[0].1 }
    var machine: CryptoMachine { engine.machine }

    init(
        _ name: String, on homeserver: FakeHomeserver, users: [String], settings: CryptoSettings = CryptoSettings(),
        crossSigning: (@Sendable (UserID) -> ForeignIdentityPolicy)? = nil
    ) async throws {
        self.name = name
        self.homeserver = homeserver
        await homeserver.register(party: name)
        store = ForgetfulStore()
        let clock = self.clock
        let machine = CryptoMachine(
            store: store, cipher: try StoreCipher(secret: String(repeating: name, count: 40)), settings: settings, now: { clock.now })
        engine = CryptoEngine(
            machine: machine, store: store, transport: FakeTransport(homeserver: homeserver), senderQueryInterval: 0, crossSigning: crossSigning)
        var devices: [(UserID, DeviceID)] = []
        for (index, user) in users.enumerated() {
            let userID = try UserID(user)
            let deviceID = try DeviceID("\(name.uppercased())\(index)")
            devices.append((userID, try await engine.ensureDevice(userID, deviceID: deviceID, displayName: name)))
        }
        self.devices = devices
    }

    /// Delivers what the homeserver has for this party as one transaction and commits the step, then
    /// performs its follow-ups (uploads, wedged-session recovery, the device lists of unknown
    /// to-device senders) as the daemon would. Room events that the follow-ups decrypt are added to
    /// the returned step's outcomes.
    @discardableResult
    func sync(toDevice: Bool = true, events: Bool = true) async throws -> CryptoStep {
        // The devices as the store has them now (one may have been replaced since the party started).
        var current: [(UserID, DeviceID)] = []
        for (user, device) in devices { current.append((user, try await machine.deviceID(of: user) ?? device)) }
        let (messages, changed) = toDevice ? await homeserver.drain(party: name, devices: current) : ([], [])
        var newEvents: [JSONValue] = []
        if events {
            let timeline = await homeserver.timeline
            newEvents = cursor.withLock { position in
                defer { position = timeline.count }
                return Array(timeline[position...])
            }
        }
        let transaction = AppserviceTransaction(events: newEvents, toDevice: messages, deviceLists: DeviceListChanges(changed: changed))
        let engine = engine, store = store
        var step = try await engine.lock.withLock {
            let step = try await engine.machine.process(transaction)
            try await store.save(step.changes)
            return step
        }
        for upload in step.uploads { try await engine.upload(upload) }
        for session in step.wedged { try await engine.recover(session) }
        if let requester = step.changes.pendingToDevice.first?.recipient.userID {
            let resolved = try await engine.resolvePendingSenders(Set(step.changes.pendingToDevice.map(\.sender)), as: requester)
            step.roomEvents += resolved.roomEvents
            step.toDevice += resolved.toDevice
        }
        return step
    }

    func send(_ body: String, in room: RoomID, as sender: UserID? = nil) async throws -> EventID {
        try await engine.send(
            roomID: room, sender: sender ?? user, type: "m.room.message", content: ["msgtype": "m.text", "body": .string(body)],
            txnID: UUID().uuidString)
    }
}

extension CryptoStep {
    /// Bodies of the decrypted room events, in order.
    var bodies: [String] { roomEvents.compactMap { try? $0.result.get().content["body"]?.stringValue } }
}

/// Puts users in an encrypted room on the homeserver's timeline (state events every party sees on sync).
func encryptedRoom(
    _ id: String, on homeserver: FakeHomeserver, members: [UserID], rotationMessages: Int64? = nil, rotationMilliseconds: Int64? = nil
) async throws -> RoomID {
    let room = try RoomID(id)
    var content: [String: JSONValue] = ["algorithm": .string(EncryptionAlgorithm.megolm)]
    if let rotationMessages { content["rotation_period_msgs"] = .integer(rotationMessages) }
    if let rotationMilliseconds { content["rotation_period_ms"] = .integer(rotationMilliseconds) }
    for member in members {
        await homeserver.sendRoomEvent(room, type: "m.room.member", content: ["membership": "join"], sender: member, stateKey: member.rawValue)
    }
    await homeserver.sendRoomEvent(room, type: "m.room.encryption", content: .object(content), sender: members[0], stateKey: "")
    return room
}
