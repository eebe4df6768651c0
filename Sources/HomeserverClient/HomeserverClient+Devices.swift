import MatrixModels

extension HomeserverClient {
    /// Registers a namespace user without logging in (required once MSC4190 is enabled).
    ///
    /// An already registered user (`M_USER_IN_USE`) is success: registration is idempotent for us.
    @discardableResult
    public func registerUser(localpart: String) async throws -> Bool {
        do {
            _ = try await request(.POST, "/_matrix/client/v3/register", body: [
                "type": "m.login.application_service", "username": .string(localpart), "inhibit_login": true,
            ])
            return true
        } catch let error as HomeserverError where error.errcode == "M_USER_IN_USE" {
            return false
        }
    }

    /// Creates (or keeps) a device for a namespace user: MSC4190 `PUT /devices/{deviceId}`.
    public func createDevice(_ deviceID: DeviceID, for userID: UserID, displayName: String) async throws {
        _ = try await request(
            .PUT, "/_matrix/client/v3/devices/\(Self.encode(deviceID.rawValue))", as: Identity(userID: userID),
            body: ["display_name": .string(displayName)])
    }

    /// Uploads device keys, one-time keys and fallback keys for a device.
    ///
    /// - Returns: The server's one-time key counts after the upload.
    @discardableResult
    public func uploadKeys(_ body: JSONValue, userID: UserID, deviceID: DeviceID) async throws -> [String: Int] {
        let response = try await request(.POST, "/_matrix/client/v3/keys/upload", as: Identity(userID: userID, deviceID: deviceID), body: body)
        var counts: [String: Int] = [:]
        for (algorithm, count) in response["one_time_key_counts"]?.objectValue ?? [:] {
            if let count = count.integerValue { counts[algorithm] = Int(count) }
        }
        return counts
    }

    /// `POST /keys/query` for `users` (all their devices), acting as `requester`.
    public func queryKeys(_ users: [UserID], as requester: UserID) async throws -> JSONValue {
        var deviceKeys: [String: JSONValue] = [:]
        for user in users { deviceKeys[user.rawValue] = [] }
        return try await request(.POST, "/_matrix/client/v3/keys/query", as: Identity(userID: requester), body: ["device_keys": .object(deviceKeys)])
    }
}

extension HomeserverClient {
    /// The ids of a registered namespace user's devices (`GET /devices` masquerading).
    public func listDevices(of userID: UserID) async throws -> [DeviceID] {
        let response = try await request(.GET, "/_matrix/client/v3/devices", as: Identity(userID: userID))
        return (response["devices"]?.arrayValue ?? []).compactMap { $0["device_id"]?.stringValue.flatMap { try? DeviceID($0) } }
    }

    /// Deletes a namespace user's device (`DELETE /devices/{id}`; no interactive auth for an
    /// appservice with MSC4190). A device already gone is success.
    public func deleteDevice(_ deviceID: DeviceID, of userID: UserID) async throws {
        do {
            _ = try await request(.DELETE, "/_matrix/client/v3/devices/\(Self.encode(deviceID.rawValue))", as: Identity(userID: userID), body: [:])
        } catch let error as HomeserverError where error.status == 404 {
            return
        }
    }
}
