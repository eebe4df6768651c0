import Foundation
import MatrixModels

/// An `m.room_key_request` a local device sent for a session that parked events wait for: the
/// only thing an `m.forwarded_room_key` is accepted in answer to.
public struct OutgoingKeyRequest: Sendable, Hashable {
    public var roomID: RoomID
    public var sessionID: String
    public var requestID: String
    /// The user who sent the waiting events: the session's owner, whose device must answer.
    public var senderUserID: UserID
    /// The curve25519 key the waiting events name (deprecated in events, so optional): when known,
    /// only the device with this key is asked, and only its answer is taken.
    public var senderKey: String?
    /// The local device that asked (and to which the answer is addressed).
    public var requester: DeviceRef
    /// The devices asked.
    public var recipients: [DeviceRef]
    public var requestedAt: Date

    public init(
        roomID: RoomID, sessionID: String, requestID: String, senderUserID: UserID, senderKey: String?, requester: DeviceRef,
        recipients: [DeviceRef], requestedAt: Date
    ) {
        self.roomID = roomID
        self.sessionID = sessionID
        self.requestID = requestID
        self.senderUserID = senderUserID
        self.senderKey = senderKey
        self.requester = requester
        self.recipients = recipients
        self.requestedAt = requestedAt
    }

    /// The request's content, or its cancellation's.
    func content(cancel: Bool = false) -> JSONValue {
        var content: [String: JSONValue] = [
            "action": .string(cancel ? "request_cancellation" : "request"), "request_id": .string(requestID),
            "requesting_device_id": .string(requester.deviceID.rawValue),
        ]
        if !cancel {
            var body: [String: JSONValue] = [
                "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(roomID.rawValue), "session_id": .string(sessionID),
            ]
            if let senderKey { body["sender_key"] = .string(senderKey) }
            content["body"] = .object(body)
        }
        return .object(content)
    }

    /// The plaintext to-device message to every recipient (the spec sends key requests unencrypted).
    func toDevice(cancel: Bool = false) -> ToDeviceRequest {
        var messages: [UserID: [DeviceID: JSONValue]] = [:]
        for device in recipients { messages[device.userID, default: [:]][device.deviceID] = content(cancel: cancel) }
        return ToDeviceRequest(eventType: "m.room_key_request", messages: messages)
    }
}
