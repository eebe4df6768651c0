import MatrixModels

extension HomeserverClient {
    /// `POST /join/{roomIdOrAlias}` as `userID`.
    public func joinRoom(_ roomID: RoomID, as userID: UserID) async throws {
        _ = try await request(.POST, "/_matrix/client/v3/join/\(Self.encode(roomID.rawValue))", as: Identity(userID: userID), body: [:])
    }

    /// `GET /rooms/{roomId}/state`: the room's current state events.
    public func roomState(_ roomID: RoomID, as userID: UserID) async throws -> [JSONValue] {
        try await request(.GET, "/_matrix/client/v3/rooms/\(Self.encode(roomID.rawValue))/state", as: Identity(userID: userID)).arrayValue ?? []
    }

    /// `GET /rooms/{roomId}/members`: every member with their current membership.
    public func roomMembers(_ roomID: RoomID, as userID: UserID) async throws -> [UserID: String] {
        let response = try await request(.GET, "/_matrix/client/v3/rooms/\(Self.encode(roomID.rawValue))/members", as: Identity(userID: userID))
        var members: [UserID: String] = [:]
        for event in response["chunk"]?.arrayValue ?? [] {
            guard let key = event["state_key"]?.stringValue, let user = try? UserID(key), let membership = event["content"]?["membership"]?.stringValue
            else { continue }
            members[user] = membership
        }
        return members
    }

    /// Whether the homeserver answers `GET /_matrix/client/versions` (for `status`).
    public func isReachable() async -> Bool {
        var probe = self
        probe.maxAttempts = 1
        return (try? await probe.request(.GET, "/_matrix/client/versions")) != nil
    }
}

extension HomeserverClient {
    /// `POST /rooms/{roomId}/leave` as `userID`.
    public func leaveRoom(_ roomID: RoomID, as userID: UserID) async throws {
        _ = try await request(.POST, "/_matrix/client/v3/rooms/\(Self.encode(roomID.rawValue))/leave", as: Identity(userID: userID), body: [:])
    }

    /// `POST /createRoom` as `userID` with the given body (invite, name, initial_state, …).
    ///
    /// - Returns: The new room's id.
    public func createRoom(_ body: JSONValue, as userID: UserID) async throws -> RoomID {
        let response = try await request(.POST, "/_matrix/client/v3/createRoom", as: Identity(userID: userID), body: body)
        guard let text = response["room_id"]?.stringValue, let roomID = try? RoomID(text) else {
            throw HomeserverError(status: 200, errcode: nil, message: "response has no room_id", request: "POST /createRoom")
        }
        return roomID
    }

    /// `PUT /profile/{userId}/displayname` as that user.
    public func setDisplayName(_ name: String, for userID: UserID) async throws {
        _ = try await request(
            .PUT, "/_matrix/client/v3/profile/\(Self.encode(userID.rawValue))/displayname", as: Identity(userID: userID),
            body: ["displayname": .string(name)])
    }
}
