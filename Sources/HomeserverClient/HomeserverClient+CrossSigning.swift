import MatrixModels

extension HomeserverClient {
    /// `POST /keys/device_signing/upload` as a namespace user: publishes its master, self-signing and
    /// user-signing keys.
    ///
    /// Synapse asks an appservice for no interactive auth here, not even to replace keys (1.163,
    /// `SigningKeyUploadServlet`); a homeserver that does answers 401 with `flows`, reported as
    /// ``CrossSigningAuthRequired``.
    public func uploadSigningKeys(_ body: JSONValue, as userID: UserID) async throws {
        do {
            _ = try await request(.POST, "/_matrix/client/v3/keys/device_signing/upload", as: Identity(userID: userID), body: body)
        } catch let error as HomeserverError where error.status == 401 {
            throw CrossSigningAuthRequired(userID: userID, underlying: error)
        }
    }

    /// `POST /keys/signatures/upload` as a namespace user.
    ///
    /// - Returns: The `failures` the homeserver reported (it answers 200 even when it refused some
    ///   signatures): user id → key or device id → error object; empty when all were accepted.
    public func uploadSignatures(_ body: JSONValue, as userID: UserID) async throws -> [String: JSONValue] {
        let response = try await request(.POST, "/_matrix/client/v3/keys/signatures/upload", as: Identity(userID: userID), body: body)
        return response["failures"]?.objectValue ?? [:]
    }
}

/// The homeserver wants interactive auth before it takes an appservice user's cross-signing keys.
public struct CrossSigningAuthRequired: Error, Sendable, CustomStringConvertible {
    public var userID: UserID
    public var underlying: HomeserverError

    public var description: String {
        "the homeserver demands interactive authentication to publish cross-signing keys for \(userID) (\(underlying)). "
            + "Synapse 1.163 and later take them from an appservice without it; upgrade the homeserver, or set "
            + "encryption.cross_signing.enabled: false (strict clients will then withhold room keys from the bridge)"
    }
}
