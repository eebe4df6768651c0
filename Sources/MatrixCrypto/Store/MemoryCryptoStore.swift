import Foundation
import MatrixModels

/// An in-memory ``CryptoStore`` for tests and tools; the semantics match the PostgreSQL store.
public actor MemoryCryptoStore: CryptoStore {
    struct OlmSessionKey: Hashable {
        var local: DeviceRef
        var senderKey: String
        var sessionID: String
    }

    struct WithheldKey: Hashable {
        var session: GroupSessionRef
        var sender: UserID
        var senderKey: String
    }

    struct RecoveryKey: Hashable {
        var localUserID: UserID
        var remoteKey: String
    }

    private var accounts: [UserID: StoredAccount] = [:]
    private var olmSessions: [OlmSessionKey: StoredOlmSession] = [:]
    /// Claims per (room, session id), one per sender key.
    private var groupSessions: [GroupSessionRef: [String: StoredInboundGroupSession]] = [:]
    private var replay: [ReplayLedger.Key: String] = [:]
    private var parked: [String: ParkedEvent] = [:]
    private var pending: [String: PendingToDevice] = [:]
    private var tracked: [UserID: Bool] = [:]
    private var deviceLists: [UserID: [VerifiedDeviceKeys]] = [:]
    private var remoteIdentities: [UserID: StoredUserIdentity] = [:]
    private var rooms: [RoomID: RoomEncryption] = [:]
    private var memberships: [RoomID: [UserID: String]] = [:]
    private var outbound: [OutboundSessionOwner: StoredOutboundGroupSession] = [:]
    /// Outbound sessions as first stored, by session id (current and retired ones).
    private var initialPickles: [String: String] = [:]
    /// Replaced outbound sessions, by session id, with the devices that were given their key.
    private var retired: [String: (session: StoredOutboundGroupSession, retiredAt: Date)] = [:]
    private var keyRequests: [GroupSessionRef: OutgoingKeyRequest] = [:]
    private var withheld: [WithheldKey: WithheldNotice] = [:]
    private var recoveries: [RecoveryKey: Date] = [:]
    private var identities: [UserID: StoredCrossSigningIdentity] = [:]
    private var version: Int64 = 0
    private var historyBundleRows: [HistoryBundleKey: PendingHistoryBundle] = [:]
    private var invites: [RoomInviteKey: RoomInvite] = [:]
    private let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date = Date.init) {
        self.now = now
    }

    public func account(userID: UserID) -> StoredAccount? { accounts[userID] }

    public func localDevices(after: UserID?, limit: Int) -> [DeviceRef] {
        accounts.values.filter { after == nil || $0.userID > after! }.sorted { $0.userID < $1.userID }.prefix(limit)
            .map { DeviceRef(userID: $0.userID, deviceID: $0.deviceID) }
    }

    public func accounts(userIDs: [UserID]) -> [UserID: StoredAccount] {
        Dictionary(userIDs.compactMap { user in accounts[user].map { (user, $0) } }, uniquingKeysWith: { first, _ in first })
    }

    public func accountStates(userIDs: [UserID]) -> [UserID: LocalAccountState] {
        Dictionary(userIDs.compactMap { user in accounts[user].map { (user, LocalAccountState($0)) } }, uniquingKeysWith: { first, _ in first })
    }

    public func localDeviceIDs(userIDs: [UserID]) -> [UserID: DeviceID] {
        Dictionary(userIDs.compactMap { user in accounts[user].map { (user, $0.deviceID) } }, uniquingKeysWith: { first, _ in first })
    }

    public func olmSessions(localUserID: UserID, localDeviceID: DeviceID, senderKey: String) -> [StoredOlmSession] {
        olmSessions.values
            .filter { $0.localUserID == localUserID && $0.localDeviceID == localDeviceID && $0.senderKey == senderKey }
            .sorted { ($0.lastUsed, $0.sessionID) > ($1.lastUsed, $1.sessionID) }
    }

    public func olmSessions(localUserID: UserID, localDeviceID: DeviceID, remoteKeys: [String]) -> [String: [StoredOlmSession]] {
        var found: [String: [StoredOlmSession]] = [:]
        for key in Set(remoteKeys) {
            let sessions = olmSessions(localUserID: localUserID, localDeviceID: localDeviceID, senderKey: key)
            if !sessions.isEmpty { found[key] = sessions }
        }
        return found
    }

    public func inboundGroupSessions(roomID: RoomID, sessionID: String) -> [StoredInboundGroupSession] {
        (groupSessions[GroupSessionRef(roomID: roomID, sessionID: sessionID)] ?? [:]).values
            .sorted { ($0.firstKnownIndex, $0.senderKey) < ($1.firstKnownIndex, $1.senderKey) }
    }

    public func replayEntries(_ keys: Set<ReplayLedger.Key>) -> [ReplayLedger.Key: String] {
        var found: [ReplayLedger.Key: String] = [:]
        for key in keys { if let eventID = replay[key] { found[key] = eventID } }
        return found
    }

    public func parkedEvents(sessionIDs: Set<String>) -> [ParkedEvent] {
        parked.values.filter { sessionIDs.contains($0.sessionID) }.sorted { $0.eventID < $1.eventID }
    }

    public func parkedEventsToSurface(parkedBefore: Date, limit: Int) -> [ParkedEvent] {
        Array(parked.values.filter { !$0.surfaced && ($0.parkedAt ?? .distantFuture) < parkedBefore }
            .sorted { ($0.parkedAt ?? .distantPast, $0.eventID) < ($1.parkedAt ?? .distantPast, $1.eventID) }.prefix(limit))
    }

    public func recentParkedEvents(roomID: RoomID?, limit: Int) -> [ParkedEvent] {
        Array(parked.values.filter { roomID == nil || $0.roomID == roomID }
            .sorted { ($0.parkedAt ?? .distantPast, $0.eventID) > ($1.parkedAt ?? .distantPast, $1.eventID) }.prefix(limit))
    }

    public func pendingToDevice(senders: Set<UserID>) -> [PendingToDevice] {
        pending.values.filter { senders.contains($0.sender) }.sorted { ($0.receivedAt, $0.id) < ($1.receivedAt, $1.id) }
    }

    public func pendingSenders(limit: Int) -> [(sender: UserID, recipient: UserID)] {
        var seen = Set<UserID>()
        var found: [(sender: UserID, recipient: UserID)] = []
        for message in pending.values.sorted(by: { ($0.receivedAt, $0.id) < ($1.receivedAt, $1.id) }) where seen.insert(message.sender).inserted {
            found.append((message.sender, message.recipient.userID))
            if found.count == limit { break }
        }
        return found
    }

    public func expire(parkedBefore: Date, pendingBefore: Date) -> (parked: Int, pending: Int) {
        let oldParked = parked.filter { ($0.value.parkedAt ?? .distantFuture) < parkedBefore }.map(\.key)
        let oldPending = pending.filter { $0.value.receivedAt < pendingBefore }.map(\.key)
        for key in oldParked { parked[key] = nil }
        for key in oldPending { pending[key] = nil }
        return (oldParked.count, oldPending.count)
    }

    public func recipientsVersion() -> Int64 { version }

    public func devices(userIDs: [UserID]) -> [UserID: [VerifiedDeviceKeys]] {
        var found: [UserID: [VerifiedDeviceKeys]] = [:]
        for user in userIDs { if let list = deviceLists[user], !list.isEmpty { found[user] = list } }
        return found
    }

    public func trackedUsers(_ userIDs: [UserID]) -> [UserID: Bool] {
        var found: [UserID: Bool] = [:]
        for user in userIDs { if let outdated = tracked[user] { found[user] = outdated } }
        return found
    }

    public func userIdentities(_ userIDs: [UserID]) -> [UserID: StoredUserIdentity] {
        var found: [UserID: StoredUserIdentity] = [:]
        for user in userIDs { if let identity = remoteIdentities[user] { found[user] = identity } }
        return found
    }

    public func room(_ roomID: RoomID) -> RoomEncryption? { rooms[roomID] }

    public func rooms(_ roomIDs: [RoomID]) -> [RoomID: RoomEncryption] {
        Dictionary(roomIDs.compactMap { room in rooms[room].map { (room, $0) } }, uniquingKeysWith: { first, _ in first })
    }

    public func members(roomID: RoomID) -> [UserID: String] { memberships[roomID] ?? [:] }

    public func presentRooms(userID: UserID) -> [RoomID] {
        memberships.compactMap { room, members in
            members[userID].map { $0 == "join" || $0 == "invite" } == true ? room : nil
        }.sorted { $0.rawValue < $1.rawValue }
    }

    public func presentRooms(userIDs: [UserID]) -> [UserID: [RoomID]] {
        var found: [UserID: [RoomID]] = [:]
        for user in Set(userIDs) {
            let rooms = presentRooms(userID: user)
            if !rooms.isEmpty { found[user] = rooms }
        }
        return found
    }

    public func outboundGroupSession(roomID: RoomID, senderUserID: UserID) -> StoredOutboundGroupSession? {
        outbound[OutboundSessionOwner(roomID: roomID, senderUserID: senderUserID)]
    }

    public func outboundGroupSessionWithoutShares(roomID: RoomID, senderUserID: UserID) -> StoredOutboundGroupSession? {
        outbound[OutboundSessionOwner(roomID: roomID, senderUserID: senderUserID)].map {
            var session = $0
            session.shares = []
            return session
        }
    }

    public func sharedRoomKey(sessionID: String, recipient: DeviceRef) -> SharedRoomKey? {
        guard let session = outbound.values.first(where: { $0.sessionID == sessionID }) ?? retired[sessionID]?.session else { return nil }
        let share = session.shares.first { $0.userID == recipient.userID && $0.deviceID == recipient.deviceID && $0.messageIndex != nil }
        return SharedRoomKey(
            roomID: session.roomID, senderUserID: session.senderUserID, senderDeviceID: session.senderDeviceID, sessionID: sessionID,
            initialPickle: initialPickles[sessionID], share: share.map { SharedRoomKey.Share(curve25519: $0.curve25519, messageIndex: $0.messageIndex!) })
    }

    /// Forgets retired outbound sessions replaced before `before`, as the PostgreSQL store's pruning does.
    public func pruneRetiredOutboundSessions(retiredBefore before: Date) -> Int {
        let old = retired.filter { $0.value.retiredAt < before }.map(\.key)
        for id in old {
            retired[id] = nil
            initialPickles[id] = nil
        }
        return old.count
    }

    /// Keeps a replaced outbound session (and who got its key) for answering key requests.
    private func retire(_ owner: OutboundSessionOwner, at date: Date) {
        guard var session = outbound[owner] else { return }
        outbound[owner] = nil
        guard initialPickles[session.sessionID] != nil else { return }
        session.shares = session.shares.filter { $0.messageIndex != nil }
        retired[session.sessionID] = (session, date)
    }

    public func outgoingKeyRequests(sessionIDs: Set<String>) -> [OutgoingKeyRequest] {
        keyRequests.values.filter { sessionIDs.contains($0.sessionID) }.sorted { ($0.roomID, $0.sessionID) < ($1.roomID, $1.sessionID) }
    }

    public func keyRequestsDue(parkedBefore: Date, askedBefore: Date, excluding: Set<String>, limit: Int) -> [ParkedEvent] {
        var seen = Set<GroupSessionRef>()
        var due: [ParkedEvent] = []
        for event in parked.values.sorted(by: { ($0.parkedAt ?? .distantPast, $0.eventID) < ($1.parkedAt ?? .distantPast, $1.eventID) }) {
            let key = GroupSessionRef(roomID: event.roomID, sessionID: event.sessionID)
            guard (event.parkedAt ?? .distantFuture) < parkedBefore, accounts[event.sender] == nil, !excluding.contains(event.sessionID),
                seen.insert(key).inserted
            else { continue }
            if let asked = keyRequests[key], asked.requestedAt >= askedBefore { continue }
            due.append(event)
            if due.count == limit { break }
        }
        return due
    }

    public func withheldNotices(roomID: RoomID, sessionID: String) -> [WithheldNotice] {
        let session = GroupSessionRef(roomID: roomID, sessionID: sessionID)
        return withheld.filter { $0.key.session == session }.map(\.value)
            .sorted { ($0.senderUserID, $0.senderKey) < ($1.senderUserID, $1.senderKey) }
    }

    public func lastOlmRecovery(localUserID: UserID, remoteKey: String) -> Date? {
        recoveries[RecoveryKey(localUserID: localUserID, remoteKey: remoteKey)]
    }

    public func crossSigningIdentity(userID: UserID) -> StoredCrossSigningIdentity? { identities[userID] }

    public func crossSigningBacklog(after: UserID?, limit: Int) -> [UserID] {
        accounts.values.filter { account in
            guard after == nil || account.userID > after! else { return false }
            guard let identity = identities[account.userID] else { return true }
            return !identity.published || identity.signedDeviceID != account.deviceID
        }.map(\.userID).sorted().prefix(limit).map { $0 }
    }

    public func crossSigningProgress() -> CrossSigningProgress {
        let complete = accounts.values.filter { account in
            identities[account.userID].map { $0.published && $0.signedDeviceID == account.deviceID } ?? false
        }.count
        return CrossSigningProgress(devices: accounts.count, complete: complete)
    }

    public func save(_ changes: CryptoChanges) {
        let savedAt = now()
        for event in changes.parkedEvents where parked[event.eventID] == nil {
            var stored = event
            stored.reason = nil
            stored.parkedAt = stored.parkedAt ?? savedAt
            parked[event.eventID] = stored
        }
        for eventID in changes.surfacedEvents { parked[eventID]?.surfaced = true }
        for eventID in changes.releasedEvents { parked[eventID] = nil }
        for message in changes.pendingToDevice where pending[message.id] == nil { pending[message.id] = message }
        for id in changes.releasedToDevice { pending[id] = nil }
        for user in changes.discardedAccounts { accounts[user] = nil }
        for account in changes.accounts { accounts[account.userID] = account }
        for session in changes.olmSessions {
            let local = DeviceRef(userID: session.localUserID, deviceID: session.localDeviceID)
            olmSessions[OlmSessionKey(local: local, senderKey: session.senderKey, sessionID: session.sessionID)] = session
        }
        for session in changes.inboundGroupSessions {
            let key = GroupSessionRef(roomID: session.roomID, sessionID: session.sessionID)
            if let existing = groupSessions[key]?[session.senderKey] {
                // A claim never changes owner; see StoredInboundGroupSession.supersedes.
                guard session.supersedes(existing) else { continue }
            }
            groupSessions[key, default: [:]][session.senderKey] = session
        }
        for (key, eventID) in changes.replayEntries where replay[key] == nil { replay[key] = eventID }
        for user in changes.untrackedUsers {
            tracked[user] = nil
            deviceLists[user] = nil
        }
        for (user, outdated) in changes.trackedUsers { tracked[user] = outdated }
        for (user, list) in changes.deviceLists { deviceLists[user] = list }
        for (user, identity) in changes.userIdentities { remoteIdentities[user] = identity }
        for (room, settings) in changes.rooms { rooms[room] = settings }
        for member in changes.memberships { memberships[member.roomID, default: [:]][member.userID] = member.membership }
        for owner in changes.discardedOutboundSessions { retire(owner, at: savedAt) }
        for session in changes.outboundGroupSessions {
            let owner = OutboundSessionOwner(roomID: session.roomID, senderUserID: session.senderUserID)
            if let current = outbound[owner], current.sessionID != session.sessionID { retire(owner, at: savedAt) }
            if outbound[owner] == nil, initialPickles[session.sessionID] == nil { initialPickles[session.sessionID] = session.pickle }
            var stored = session
            stored.shares = outbound[owner].flatMap { $0.sessionID == session.sessionID ? $0.shares : nil } ?? []
            outbound[owner] = stored
        }
        for share in changes.outboundShares {
            let owner = OutboundSessionOwner(roomID: share.roomID, senderUserID: share.senderUserID)
            guard var session = outbound[owner], session.sessionID == share.sessionID else { continue }
            session.shares.removeAll { $0.userID == share.userID && $0.deviceID == share.deviceID }
            session.shares.append(share)
            outbound[owner] = session
        }
        for notice in changes.withheldNotices {
            let session = GroupSessionRef(roomID: notice.roomID, sessionID: notice.sessionID)
            withheld[WithheldKey(session: session, sender: notice.senderUserID, senderKey: notice.senderKey)] = notice
        }
        for recovery in changes.olmRecoveries {
            recoveries[RecoveryKey(localUserID: recovery.localUserID, remoteKey: recovery.remoteKey)] = recovery.at
        }
        for identity in changes.crossSigningIdentities { identities[identity.userID] = identity }
        for request in changes.keyRequests { keyRequests[GroupSessionRef(roomID: request.roomID, sessionID: request.sessionID)] = request }
        for request in changes.settledKeyRequests {
            let key = GroupSessionRef(roomID: request.roomID, sessionID: request.sessionID)
            if keyRequests[key]?.requestID == request.requestID { keyRequests[key] = nil }
        }
        for invite in changes.roomInvites { invites[RoomInviteKey(roomID: invite.roomID, userID: invite.userID)] = invite }
        for id in changes.releasedHistoryBundles {
            historyBundleRows = historyBundleRows.filter { $0.value.id != id }
        }
        for bundle in changes.historyBundles {
            historyBundleRows[HistoryBundleKey(recipient: bundle.recipient.userID, roomID: bundle.roomID, sender: bundle.sender)] = bundle
        }
        if changes.changesRecipients { version += 1 }
    }

    // MARK: History bundles (MSC4268)
    struct HistoryBundleKey: Hashable {
        var recipient: UserID
        var roomID: RoomID
        var sender: UserID
    }

    struct RoomInviteKey: Hashable {
        var roomID: RoomID
        var userID: UserID
    }

    public func historyBundles(receivedBefore: Date, limit: Int) -> [PendingHistoryBundle] {
        let ready = historyBundleRows.values.filter {
            $0.receivedAt < receivedBefore || invites[RoomInviteKey(roomID: $0.roomID, userID: $0.recipient.userID)] != nil
        }
        return Array(ready.sorted { ($0.receivedAt, $0.id) < ($1.receivedAt, $1.id) }.prefix(limit))
    }

    public func roomInvite(roomID: RoomID, userID: UserID) -> RoomInvite? {
        invites[RoomInviteKey(roomID: roomID, userID: userID)]
    }

    public func expireHistoryBundles(before: Date) -> Int {
        let bundles = historyBundleRows.count, invited = invites.count
        historyBundleRows = historyBundleRows.filter { $0.value.receivedAt >= before }
        invites = invites.filter { $0.value.invitedAt >= before }
        return bundles - historyBundleRows.count + invited - invites.count
    }
}
