import MatrixModels

/// An `m.room_key_request` to-device message (sent in the clear, as the spec has it): a user's
/// device asks for the key of a Megolm session, or withdraws that question.
///
/// Every field is the requester's word: this is only the checked shape (ids, key formats, lengths).
/// Whether the requester gets anything is decided by ``CryptoMachine/answer(_:)`` against the share
/// records.
public struct RoomKeyRequest: Sendable, Hashable {
    public enum Action: String, Sendable {
        case request
        case cancellation = "request_cancellation"
    }

    public var action: Action
    /// The asking user and `requesting_device_id`.
    public var requester: DeviceRef
    /// The local device the homeserver delivered the message to.
    public var recipient: DeviceRef
    public var requestID: String
    /// The session asked for; nil for a cancellation.
    public var session: RequestedSession?

    /// The body of a request: which Megolm session.
    public struct RequestedSession: Sendable, Hashable {
        public var roomID: RoomID
        public var sessionID: String
        /// The curve25519 key of the session's sender as the requester believes it (deprecated in
        /// the spec, so optional; when present it must be the answering device's).
        public var senderKey: String?

        public init(roomID: RoomID, sessionID: String, senderKey: String?) {
            self.roomID = roomID
            self.sessionID = sessionID
            self.senderKey = senderKey
        }
    }

    public init(action: Action, requester: DeviceRef, recipient: DeviceRef, requestID: String, session: RequestedSession?) {
        self.action = action
        self.requester = requester
        self.recipient = recipient
        self.requestID = requestID
        self.session = session
    }

    /// Reads an `m.room_key_request`.
    ///
    /// - Returns: nil when a field is missing, of the wrong type or shape, too long, or names an
    ///   algorithm other than Megolm: such a message is skipped and counted, never answered.
    public init?(_ event: ToDeviceEvent) {
        let content = event.content
        guard event.type == "m.room_key_request",
            let action = content["action"]?.stringValue.flatMap(Action.init(rawValue:)),
            let device = content["requesting_device_id"]?.stringValue, let deviceID = try? DeviceID(device),
            let requestID = content["request_id"]?.stringValue, Self.isRequestID(requestID)
        else { return nil }
        var session: RequestedSession?
        if action == .request {
            guard let body = content["body"], body["algorithm"]?.stringValue == EncryptionAlgorithm.megolm,
                let room = body["room_id"]?.stringValue, let roomID = try? RoomID(room),
                let sessionID = body["session_id"]?.stringValue, KeyFormat.isSessionID(sessionID)
            else { return nil }
            let senderKey = body["sender_key"]
            if let senderKey, senderKey != .null, !(senderKey.stringValue.map(KeyFormat.isKey) ?? false) { return nil }
            session = RequestedSession(roomID: roomID, sessionID: sessionID, senderKey: senderKey?.stringValue)
        }
        self.init(
            action: action, requester: DeviceRef(userID: event.sender, deviceID: deviceID),
            recipient: DeviceRef(userID: event.toUserID, deviceID: event.toDeviceID), requestID: requestID, session: session)
    }

    /// A request id: 1 to 255 bytes without control characters (clients use random strings).
    static func isRequestID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 255 && id.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
    }
}

/// Why a key request got no answer (each is counted under its name).
public enum KeyRequestRefusal: String, Sendable, CaseIterable {
    /// The session is not an outbound session of the addressed local device (or it is unknown, or
    /// its record was pruned).
    case notOurSession = "not_our_session"
    /// The session exists, but the requesting device was never given it.
    case notSharedWithDevice = "not_shared"
    /// The requesting device's current keys are not the ones it had when it was given the session.
    case deviceChanged = "device_changed"
    /// The body names another room or sender key than the session's.
    case mismatch
    /// No Olm session with the device to send the key through.
    case noOlmSession = "no_olm_session"
    /// Answered for this (device, session) a moment ago.
    case rateLimited = "rate_limited"
    /// The device is dehydrated: it cannot ask for itself.
    case dehydrated
}
