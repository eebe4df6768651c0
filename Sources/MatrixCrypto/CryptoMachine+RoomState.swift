import MatrixModels

extension CryptoMachine {
    /// Follows room state from a transaction's timeline: `m.room.encryption`, `m.room.history_visibility`
    /// and `m.room.member`; users who come to share an encrypted room are tracked (outdated, so their
    /// devices are queried before the next send), users who share none any more are forgotten.
    func receiveRoomState(_ event: JSONValue, scratch: Scratch, changes: inout CryptoChanges) async throws {
        guard let type = event["type"]?.stringValue, let stateKey = event["state_key"]?.stringValue,
            let roomID = event["room_id"]?.stringValue.flatMap({ try? RoomID($0) })
        else { return }
        let content = event["content"] ?? .object([:])
        switch type {
        case "m.room.encryption" where stateKey.isEmpty:
            // Never dropped, whatever the algorithm says: the room is encrypted, and an algorithm we do
            // not speak makes sends fail closed rather than go out in plaintext.
            guard let algorithm = content["algorithm"]?.stringValue else { return }
            var settings = try await room(roomID, scratch: scratch) ?? RoomEncryption(algorithm: algorithm)
            settings.algorithm = algorithm
            settings.rotationPeriodMilliseconds = content["rotation_period_ms"]?.integerValue
            settings.rotationPeriodMessages = content["rotation_period_msgs"]?.integerValue
            try await setRoom(roomID, settings, scratch: scratch, changes: &changes)
        case "m.room.history_visibility" where stateKey.isEmpty:
            guard var settings = try await room(roomID, scratch: scratch),
                let visibility = content["history_visibility"]?.stringValue
            else { return }
            settings.historyVisibility = visibility
            try await setRoom(roomID, settings, scratch: scratch, changes: &changes)
        case "m.room.member":
            guard let userID = try? UserID(stateKey), let membership = content["membership"]?.stringValue else { return }
            if membership == "invite" { try await recordInvite(event, roomID: roomID, userID: userID, scratch: scratch, changes: &changes) }
            try await setMembership(RoomMembership(roomID: roomID, userID: userID, membership: membership), scratch: scratch, changes: &changes)
        default:
            return
        }
    }

    /// Replaces what the machine knows of a room: after joining, the pipeline fetches `/state` and
    /// `/members` and hands them here, rather than trusting a member list assembled from events.
    ///
    /// - Parameters:
    ///   - encryption: The room's `m.room.encryption` (with history visibility), nil if unencrypted.
    ///   - members: Every member with their membership.
    public func updateRoom(_ roomID: RoomID, encryption: RoomEncryption?, members: [UserID: String]) async throws -> CryptoChanges {
        let scratch = Scratch()
        var changes = CryptoChanges()
        if let encryption { try await setRoom(roomID, encryption, scratch: scratch, changes: &changes) }
        let known = try await store.members(roomID: roomID)
        for (user, membership) in members.sorted(by: { $0.key < $1.key }) where known[user] != membership {
            try await setMembership(RoomMembership(roomID: roomID, userID: user, membership: membership), scratch: scratch, changes: &changes)
        }
        for (user, _) in known where members[user] == nil {
            try await setMembership(RoomMembership(roomID: roomID, userID: user, membership: "leave"), scratch: scratch, changes: &changes)
        }
        return changes
    }

    func setRoom(_ roomID: RoomID, _ settings: RoomEncryption, scratch: Scratch, changes: inout CryptoChanges) async throws {
        // State content is any string a room admin chose; kept cleaned so that it can be stored.
        var settings = settings
        settings.algorithm = settings.algorithm.storableText(maxLength: 255)
        settings.historyVisibility = settings.historyVisibility.storableText(maxLength: 64)
        let wasEncrypted = try await room(roomID, scratch: scratch) != nil
        scratch.rooms[roomID] = settings
        changes.rooms[roomID] = settings
        guard !wasEncrypted else { return }
        // Encryption just turned on: everyone present is now someone we share keys with.
        for (user, membership) in try await members(roomID, scratch: scratch) where membership == "join" || membership == "invite" {
            try await track(user, scratch: scratch, changes: &changes)
        }
    }

    func setMembership(_ member: RoomMembership, scratch: Scratch, changes: inout CryptoChanges) async throws {
        var member = member
        member.membership = member.membership.storableText(maxLength: 32)
        scratch.members[member.roomID, default: [:]][member.userID] = member.membership
        changes.memberships.append(member)
        if member.isPresent {
            if try await room(member.roomID, scratch: scratch) != nil { try await track(member.userID, scratch: scratch, changes: &changes) }
            return
        }
        // Left, banned or kicked: forget the user once they share no encrypted room with us.
        for room in try await storedPresentRooms(of: member.userID, scratch: scratch) where room != member.roomID {
            if scratch.members[room]?[member.userID].map({ $0 == "join" || $0 == "invite" }) == false { continue }
            if try await self.room(room, scratch: scratch) != nil { return }
        }
        for (room, members) in scratch.members where room != member.roomID && members[member.userID].map({ $0 == "join" || $0 == "invite" }) == true {
            if try await self.room(room, scratch: scratch) != nil { return }
        }
        if try await isTracked(member.userID, scratch: scratch) {
            scratch.tracked[member.userID] = nil
            scratch.untracked.insert(member.userID)
            changes.trackedUsers[member.userID] = nil
            changes.deviceLists[member.userID] = nil
            changes.untrackedUsers.insert(member.userID)
        }
    }

    /// Starts tracking `user` (outdated) unless already tracked.
    func track(_ user: UserID, scratch: Scratch, changes: inout CryptoChanges) async throws {
        guard try await !isTracked(user, scratch: scratch) else { return }
        scratch.tracked[user] = true
        scratch.untracked.remove(user)
        changes.trackedUsers[user] = true
        changes.untrackedUsers.remove(user)
    }
}
