import MatrixModels
import Primitives

/// One `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}`, sent as a local device.
public struct ToDeviceRequest: Sendable, Equatable {
    public var eventType: String
    /// Random, so a retry of this request is deduplicated by the homeserver and nothing else is.
    public var txnID: String
    public var messages: [UserID: [DeviceID: JSONValue]]

    public init(eventType: String, messages: [UserID: [DeviceID: JSONValue]], txnID: String = ToDeviceRequest.newTxnID()) {
        self.eventType = eventType
        self.messages = messages
        self.txnID = txnID
    }

    /// The request body: `{"messages": {user: {device: content}}}`.
    public var body: JSONValue {
        var users: [String: JSONValue] = [:]
        for (user, devices) in messages {
            var byDevice: [String: JSONValue] = [:]
            for (device, content) in devices { byDevice[device.rawValue] = content }
            users[user.rawValue] = .object(byDevice)
        }
        return ["messages": .object(users)]
    }

    public var deviceCount: Int { messages.values.reduce(0) { $0 + $1.count } }

    public static func newTxnID() -> String { "sb" + Base64.encodeURLSafeUnpadded(SecureRandom.bytes(count: 12)) }

    /// Splits `messages` into requests of at most `batchSize` devices.
    static func batched(_ eventType: String, _ messages: [(UserID, DeviceID, JSONValue)], batchSize: Int) -> [ToDeviceRequest] {
        stride(from: 0, to: messages.count, by: max(1, batchSize)).map { start in
            var grouped: [UserID: [DeviceID: JSONValue]] = [:]
            for (user, device, content) in messages[start..<min(messages.count, start + max(1, batchSize))] {
                grouped[user, default: [:]][device] = content
            }
            return ToDeviceRequest(eventType: eventType, messages: grouped)
        }
    }
}

/// A remote device, by user and device id.
public struct DeviceRef: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var userID: UserID
    public var deviceID: DeviceID

    public init(userID: UserID, deviceID: DeviceID) {
        self.userID = userID
        self.deviceID = deviceID
    }

    public static func < (lhs: DeviceRef, rhs: DeviceRef) -> Bool { (lhs.userID, lhs.deviceID) < (rhs.userID, rhs.deviceID) }
    public var description: String { "\(userID) \(deviceID)" }
}
