import MatrixModels

/// An in-memory ``CryptoStore`` for tests and tools; the semantics match the PostgreSQL store.
public actor MemoryCryptoStore: CryptoStore {
    private var accounts: [UserID: StoredAccount] = [:]
    private var olmSessions: [String: StoredOlmSession] = [:]
    private var groupSessions: [String: StoredInboundGroupSession] = [:]
    private var replay: [ReplayLedger.Key: String] = [:]
    private var parked: [String: ParkedEvent] = [:]

    public init() {}

    public func account(userID: UserID) -> StoredAccount? { accounts[userID] }

    public func olmSessions(localUserID: UserID, localDeviceID: DeviceID, senderKey: String) -> [StoredOlmSession] {
        olmSessions.values
            .filter { $0.localUserID == localUserID && $0.localDeviceID == localDeviceID && $0.senderKey == senderKey }
            .sorted { ($0.lastUsed, $0.sessionID) > ($1.lastUsed, $1.sessionID) }
    }

    public func inboundGroupSession(roomID: RoomID, sessionID: String) -> StoredInboundGroupSession? {
        groupSessions[roomID.rawValue + "|" + sessionID]
    }

    public func replayEntries(sessionID: String) -> [ReplayLedger.Key: String] {
        replay.filter { $0.key.sessionID == sessionID }
    }

    public func parkedEvents(sessionIDs: Set<String>) -> [ParkedEvent] {
        parked.values.filter { sessionIDs.contains($0.sessionID) }.sorted { $0.eventID < $1.eventID }
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
    }
}
