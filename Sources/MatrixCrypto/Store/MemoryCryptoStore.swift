import Foundation
import MatrixModels

/// An in-memory ``CryptoStore`` for tests and tools; the semantics match the PostgreSQL store.
public actor MemoryCryptoStore: CryptoStore {
    private var accounts: [UserID: StoredAccount] = [:]
    private var olmSessions: [String: StoredOlmSession] = [:]
    private var groupSessions: [String: StoredInboundGroupSession] = [:]
    private var replay: [ReplayLedger.Key: String] = [:]
    private var parked: [String: ParkedEvent] = [:]
    private var tracked: [UserID: Bool] = [:]
    private var deviceLists: [UserID: [VerifiedDeviceKeys]] = [:]
    private var rooms: [RoomID: RoomEncryption] = [:]
    private var memberships: [RoomID: [UserID: String]] = [:]
    private var outbound: [OutboundSessionOwner: StoredOutboundGroupSession] = [:]
    private var withheld: [String: WithheldNotice] = [:]
    private var recoveries: [String: Date] = [:]

    public init() {}

    public func account(userID: UserID) -> StoredAccount? { accounts[userID] }

    public func localDevices(after: UserID?, limit: Int) -> [DeviceRef] {
        accounts.values.filter { after == nil || $0.userID > after! }.sorted { $0.userID < $1.userID }.prefix(limit)
            .map { DeviceRef(userID: $0.userID, deviceID: $0.deviceID) }
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

    public func inboundGroupSession(roomID: RoomID, sessionID: String) -> StoredInboundGroupSession? {
        groupSessions[roomID.rawValue + "|" + sessionID]
    }

    public func replayEntries(_ keys: Set<ReplayLedger.Key>) -> [ReplayLedger.Key: String] {
        var found: [ReplayLedger.Key: String] = [:]
        for key in keys { if let eventID = replay[key] { found[key] = eventID } }
        return found
    }

    public func parkedEvents(sessionIDs: Set<String>) -> [ParkedEvent] {
        parked.values.filter { sessionIDs.contains($0.sessionID) }.sorted { $0.eventID < $1.eventID }
    }

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

    public func room(_ roomID: RoomID) -> RoomEncryption? { rooms[roomID] }

    public func members(roomID: RoomID) -> [UserID: String] { memberships[roomID] ?? [:] }

    public func presentRooms(userID: UserID) -> [RoomID] {
        memberships.compactMap { room, members in
            members[userID].map { $0 == "join" || $0 == "invite" } == true ? room : nil
        }.sorted { $0.rawValue < $1.rawValue }
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

    public func withheldNotice(roomID: RoomID, sessionID: String) -> WithheldNotice? {
        withheld[roomID.rawValue + "|" + sessionID]
    }

    public func lastOlmRecovery(localUserID: UserID, remoteKey: String) -> Date? {
        recoveries[localUserID.rawValue + "|" + remoteKey]
    }

    public func save(_ changes: CryptoChanges) {
        for event in changes.parkedEvents where parked[event.eventID] == nil { parked[event.eventID] = event }
        for eventID in changes.releasedEvents { parked[eventID] = nil }
        for account in changes.accounts { accounts[account.userID] = account }
        for session in changes.olmSessions {
            olmSessions["\(session.localUserID)|\(session.localDeviceID)|\(session.senderKey)|\(session.sessionID)"] = session
        }
        for session in changes.inboundGroupSessions {
            let key = session.roomID.rawValue + "|" + session.sessionID
            if let existing = groupSessions[key], existing.firstKnownIndex <= session.firstKnownIndex { continue }
            groupSessions[key] = session
        }
        for (key, eventID) in changes.replayEntries where replay[key] == nil { replay[key] = eventID }
        for user in changes.untrackedUsers {
            tracked[user] = nil
            deviceLists[user] = nil
        }
        for (user, outdated) in changes.trackedUsers { tracked[user] = outdated }
        for (user, list) in changes.deviceLists { deviceLists[user] = list }
        for (room, settings) in changes.rooms { rooms[room] = settings }
        for member in changes.memberships { memberships[member.roomID, default: [:]][member.userID] = member.membership }
        for owner in changes.discardedOutboundSessions { outbound[owner] = nil }
        for session in changes.outboundGroupSessions {
            let owner = OutboundSessionOwner(roomID: session.roomID, senderUserID: session.senderUserID)
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
        for notice in changes.withheldNotices { withheld[notice.roomID.rawValue + "|" + notice.sessionID] = notice }
        for recovery in changes.olmRecoveries { recoveries[recovery.localUserID.rawValue + "|" + recovery.remoteKey] = recovery.at }
    }
}
