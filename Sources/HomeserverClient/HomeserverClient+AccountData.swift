import MatrixModels

extension HomeserverClient {
    /// `GET /user/{userId}/account_data/{type}` as `userID` (masquerading).
    ///
    /// - Returns: The content, or nil when the user has none of that type (404 `M_NOT_FOUND`).
    ///   Synapse keeps "deleted" account data as `{}`; that is returned as is.
    public func accountData(_ type: String, of userID: UserID) async throws -> JSONValue? {
        do {
            return try await request(.GET, accountDataPath(type, userID), as: Identity(userID: userID))
        } catch let error as HomeserverError where error.status == 404 && error.errcode == "M_NOT_FOUND" {
            return nil
        }
    }

    /// `PUT /user/{userId}/account_data/{type}` as `userID` (masquerading): replaces the content.
    public func setAccountData(_ type: String, content: JSONValue, of userID: UserID) async throws {
        _ = try await request(.PUT, accountDataPath(type, userID), as: Identity(userID: userID), body: content)
    }

    func accountDataPath(_ type: String, _ userID: UserID) -> String {
        "/_matrix/client/v3/user/\(Self.encode(userID.rawValue))/account_data/\(Self.encode(type))"
    }
}
