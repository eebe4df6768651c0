import HomeserverClient
import MatrixCrypto
import MatrixModels

/// The homeserver requests the crypto pipeline performs for the machine, acting as a local device.
///
/// ``HomeserverClient`` is the real one; tests give the pipeline an in-memory homeserver that routes
/// to-device messages between two machines.
public protocol CryptoTransport: Sendable {
    /// Registers a namespace user (`inhibit_login`).
    /// - Returns: true when the homeserver created the user now, false when it existed: only a user
    ///   created a moment ago is known to have no devices and no cross-signing identity there.
    func registerUser(_ userID: UserID) async throws -> Bool
    /// Creates (or keeps) a device for a registered namespace user (MSC4190 `PUT /devices/{id}`).
    func createDevice(_ deviceID: DeviceID, for userID: UserID, displayName: String) async throws
    /// - Returns: The server's one-time key counts after the upload.
    func uploadKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> [String: Int]
    func queryKeys(_ users: [UserID], as requester: UserID) async throws -> JSONValue
    func claimKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> JSONValue
    func sendToDevice(_ request: ToDeviceRequest, as userID: UserID, device: DeviceID) async throws
    func sendRoomEvent(_ roomID: RoomID, eventType: String, txnID: String, content: JSONValue, as userID: UserID, device: DeviceID) async throws -> EventID
    /// The ids of a registered local user's devices on the homeserver.
    func listDevices(of userID: UserID) async throws -> [DeviceID]
    /// Deletes a local user's device on the homeserver (gone already: success).
    func deleteDevice(_ deviceID: DeviceID, of userID: UserID) async throws
    /// Publishes a local user's cross-signing keys (`/keys/device_signing/upload`).
    func uploadSigningKeys(_ body: JSONValue, as userID: UserID) async throws
    /// Publishes signatures (`/keys/signatures/upload`); returns the homeserver's `failures`.
    func uploadSignatures(_ body: JSONValue, as userID: UserID) async throws -> [String: JSONValue]
    /// Downloads media (a history bundle) as a local user, reading at most `maxBytes`.
    /// - Throws: ``MediaTooLarge`` past the limit; ``MediaUnavailable`` or ``HomeserverError`` with a
    ///   4xx status for a refusal for good; anything else is a passing failure.
    func downloadMedia(_ uri: MediaURI, as userID: UserID, maxBytes: Int) async throws -> [UInt8]
}

extension CryptoTransport {
    /// Transports without a media repository (test fakes): every download is refused for good.
    public func downloadMedia(_ uri: MediaURI, as userID: UserID, maxBytes: Int) async throws -> [UInt8] {
        throw MediaUnavailable(uri: uri)
    }
}

/// Media the homeserver does not have (or a transport without a media repository): refused for good.
public struct MediaUnavailable: Error, Sendable, CustomStringConvertible {
    /// Stable, for logs and for callers that branch without matching the type.
    public var code: String { "media_unavailable" }
    public var uri: MediaURI

    public init(uri: MediaURI) {
        self.uri = uri
    }

    public var description: String { "\(code): no such media: \(uri)" }
}

extension HomeserverClient: CryptoTransport {
    public func registerUser(_ userID: UserID) async throws -> Bool {
        try await registerUser(localpart: userID.localpart)
    }

    public func uploadKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> [String: Int] {
        try await uploadKeys(body, userID: userID, deviceID: device)
    }

    public func claimKeys(_ body: JSONValue, as userID: UserID, device: DeviceID) async throws -> JSONValue {
        try await claimKeys(body, as: Identity(userID: userID, deviceID: device))
    }

    public func downloadMedia(_ uri: MediaURI, as userID: UserID, maxBytes: Int) async throws -> [UInt8] {
        try await downloadMedia(server: uri.server, mediaID: uri.mediaID, as: userID, maxBytes: maxBytes)
    }

    public func sendToDevice(_ request: ToDeviceRequest, as userID: UserID, device: DeviceID) async throws {
        try await sendToDevice(eventType: request.eventType, txnID: request.txnID, body: request.body, as: Identity(userID: userID, deviceID: device))
    }

    public func sendRoomEvent(
        _ roomID: RoomID, eventType: String, txnID: String, content: JSONValue, as userID: UserID, device: DeviceID
    ) async throws -> EventID {
        try await sendRoomEvent(roomID, eventType: eventType, txnID: txnID, content: content, as: Identity(userID: userID, deviceID: device))
    }
}
