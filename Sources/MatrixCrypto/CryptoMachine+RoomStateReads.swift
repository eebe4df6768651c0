import MatrixModels

/// What a step's room state events will ask the store, gathered before the serial pass: a portal
/// room being set up arrives as a hundred member events a transaction, and each would otherwise read
/// its room, its user's tracking and (for an invite) whether the user has an account here, one
/// round trip at a time under the crypto lock. Parsed as ``CryptoMachine/receiveRoomState(_:scratch:changes:)``
/// parses them; an event this misses only costs its single reads later, never a different answer.
struct RoomStateReads {
    var rooms: Set<RoomID> = []
    var members: Set<UserID> = []
    var invitees: Set<UserID> = []
    /// Users leaving, kicked or banned: the serial pass asks which encrypted rooms they are still in.
    var leavers: Set<UserID> = []

    init(_ events: [JSONValue]) {
        for event in events where event["state_key"] != nil {
            guard let roomID = event["room_id"]?.stringValue.flatMap({ try? RoomID($0) }) else { continue }
            switch event["type"]?.stringValue {
            case "m.room.encryption", "m.room.history_visibility":
                rooms.insert(roomID)
            case "m.room.member":
                guard let user = event["state_key"]?.stringValue.flatMap({ try? UserID($0) }),
                    let membership = event["content"]?["membership"]?.stringValue
                else { continue }
                rooms.insert(roomID)
                members.insert(user)
                if membership == "invite" {
                    invitees.insert(user)
                } else if membership != "join" {
                    leavers.insert(user)
                }
            default:
                continue
            }
        }
    }
}

extension CryptoMachine {
    /// Reads, in a few queries, everything ``RoomStateReads`` says the step's state events will ask,
    /// into the step's scratch. The store does not change during a step, so a read kept for the rest
    /// of it is the answer a later read would give.
    func prefetchRoomState(_ reads: RoomStateReads, scratch: Scratch) async throws {
        let rooms = reads.rooms.filter { !scratch.knowsRoom($0) }.sorted()
        let members = reads.members.filter { !scratch.knowsTracking($0) }.sorted()
        let invitees = reads.invitees.filter { scratch.localAccounts[$0] == nil }.sorted()
        let leavers = reads.leavers.filter { scratch.storedPresentRooms[$0] == nil }.sorted()
        // Most transactions carry no room state: no child tasks for them.
        guard !(rooms.isEmpty && members.isEmpty && invitees.isEmpty && leavers.isEmpty) else { return }
        let store = store
        async let roomsRead = rooms.isEmpty ? [:] : store.rooms(rooms)
        async let trackedRead = members.isEmpty ? [:] : store.trackedUsers(members)
        async let accountsRead = invitees.isEmpty ? [:] : store.localDeviceIDs(userIDs: invitees)
        async let presentRead = leavers.isEmpty ? [:] : store.presentRooms(userIDs: leavers)
        let (found, tracked, accounts, present) = try await (roomsRead, trackedRead, accountsRead, presentRead)
        for room in rooms { scratch.storedRooms[room] = .some(found[room]) }
        for user in members {
            scratch.trackedRead.insert(user)
            if let outdated = tracked[user] { scratch.tracked[user] = outdated }
        }
        for user in invitees { scratch.localAccounts[user] = accounts[user] != nil }
        for user in leavers { scratch.storedPresentRooms[user] = present[user] ?? [] }
        // The rooms leavers are still in: the serial pass asks whether each is encrypted.
        let more = Set(present.values.joined()).filter { !scratch.knowsRoom($0) }.sorted()
        if !more.isEmpty {
            let found = try await store.rooms(more)
            for room in more { scratch.storedRooms[room] = .some(found[room]) }
        }
    }

    /// The room's encryption settings: as written earlier in the step, else as stored (read once).
    func room(_ roomID: RoomID, scratch: Scratch) async throws -> RoomEncryption? {
        if let known = scratch.rooms[roomID] { return known }
        if let read = scratch.storedRooms[roomID] { return read }
        let read = try await store.room(roomID)
        scratch.storedRooms[roomID] = .some(read)
        return read
    }

    func members(_ roomID: RoomID, scratch: Scratch) async throws -> [UserID: String] {
        var members = try await store.members(roomID: roomID)
        for (user, membership) in scratch.members[roomID] ?? [:] { members[user] = membership }
        return members
    }

    /// The rooms `user` is in (joined or invited) as stored, read once per step; the step's own
    /// membership changes are in `scratch.members`.
    func storedPresentRooms(of user: UserID, scratch: Scratch) async throws -> [RoomID] {
        if let read = scratch.storedPresentRooms[user] { return read }
        let read = try await store.presentRooms(userID: user)
        scratch.storedPresentRooms[user] = read
        return read
    }

    func isTracked(_ user: UserID, scratch: Scratch) async throws -> Bool {
        if scratch.untracked.contains(user) { return false }
        if scratch.tracked[user] != nil { return true }
        guard scratch.trackedRead.insert(user).inserted else { return false }
        let tracked = try await store.trackedUsers([user])[user]
        if let tracked { scratch.tracked[user] = tracked }
        return tracked != nil
    }

    /// Whether `user` has an account (a device) here, read once per step.
    func hasAccount(_ user: UserID, scratch: Scratch) async throws -> Bool {
        if let known = scratch.localAccounts[user] { return known }
        let found = try await store.localDeviceIDs(userIDs: [user])[user] != nil
        scratch.localAccounts[user] = found
        return found
    }
}

extension CryptoMachine.Scratch {
    func knowsRoom(_ roomID: RoomID) -> Bool { rooms[roomID] != nil || storedRooms[roomID] != nil }
    func knowsTracking(_ user: UserID) -> Bool { tracked[user] != nil || untracked.contains(user) || trackedRead.contains(user) }
}
