import MatrixModels

extension HomeserverClient {
    /// `POST /keys/claim` with a prepared body (`one_time_keys`, `timeout`), acting as a local device.
    public func claimKeys(_ body: JSONValue, as identity: Identity) async throws -> JSONValue {
        try await request(.POST, "/_matrix/client/v3/keys/claim", as: identity, body: body)
    }

    /// `PUT /sendToDevice/{eventType}/{txnId}` as a local device. The txn id makes a retried request
    /// (after a timeout whose first attempt did arrive) a no-op on the homeserver.
    public func sendToDevice(eventType: String, txnID: String, body: JSONValue, as identity: Identity) async throws {
        _ = try await request(
            .PUT, "/_matrix/client/v3/sendToDevice/\(Self.encode(eventType))/\(Self.encode(txnID))", as: identity, body: body)
    }

    /// `PUT /rooms/{roomId}/send/{eventType}/{txnId}` as the user (and device, so the event names it).
    ///
    /// - Returns: The new event's id.
    public func sendRoomEvent(_ roomID: RoomID, eventType: String, txnID: String, content: JSONValue, as identity: Identity) async throws -> EventID {
        let response = try await request(
            .PUT, "/_matrix/client/v3/rooms/\(Self.encode(roomID.rawValue))/send/\(Self.encode(eventType))/\(Self.encode(txnID))",
            as: identity, body: content)
        guard let text = response["event_id"]?.stringValue, let eventID = try? EventID(text) else {
            throw HomeserverError(status: 200, errcode: nil, message: "response has no event_id", request: "PUT /rooms/…/send")
        }
        return eventID
    }
}
