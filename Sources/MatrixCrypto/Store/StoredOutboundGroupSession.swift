import Foundation
import MatrixModels

/// The Megolm session a local device sends with in a room, and whom it was shared with.
public struct StoredOutboundGroupSession: Sendable, Hashable {
    public var roomID: RoomID
    /// The local sender (bot or puppet) and its device.
    public var senderUserID: UserID
    public var senderDeviceID: DeviceID
    public var sessionID: String
    public var pickle: String
    public var createdAt: Date
    /// Devices that got the key (or a withheld notice), from committed records only.
    public var shares: [OutboundShare]

    public init(
        roomID: RoomID, senderUserID: UserID, senderDeviceID: DeviceID, sessionID: String, pickle: String, createdAt: Date,
        shares: [OutboundShare] = []
    ) {
        self.roomID = roomID
        self.senderUserID = senderUserID
        self.senderDeviceID = senderDeviceID
        self.sessionID = sessionID
        self.pickle = pickle
        self.createdAt = createdAt
        self.shares = shares
    }
}

/// One recipient device of an outbound session: the index it got the key at, or why it got nothing.
///
/// Written only after the to-device send succeeded, so a device whose Olm setup or delivery failed is
/// never counted as having the key.
public struct OutboundShare: Sendable, Hashable {
    public var roomID: RoomID
    public var senderUserID: UserID
    public var sessionID: String
    public var userID: UserID
    public var deviceID: DeviceID
    /// The device's curve25519 key when shared: a device that re-appears with new keys is a new device.
    public var curve25519: String
    /// The first message index the device can decrypt; nil when it was sent a withheld notice.
    public var messageIndex: UInt32?
    /// The `m.room_key.withheld` code sent instead of the key.
    public var withheldCode: String?
    /// For `m.no_olm` (no one-time key could be claimed): when to try the device again, and how many
    /// claims failed so far (the backoff doubles). A transient claim failure is not a share.
    public var retryAfter: Date?
    public var failedClaims: Int

    public init(
        roomID: RoomID, senderUserID: UserID, sessionID: String, userID: UserID, deviceID: DeviceID, curve25519: String,
        messageIndex: UInt32?, withheldCode: String?, retryAfter: Date? = nil, failedClaims: Int = 0
    ) {
        self.retryAfter = retryAfter
        self.failedClaims = failedClaims
        self.roomID = roomID
        self.senderUserID = senderUserID
        self.sessionID = sessionID
        self.userID = userID
        self.deviceID = deviceID
        self.curve25519 = curve25519
        self.messageIndex = messageIndex
        self.withheldCode = withheldCode
    }
}

/// Names one outbound session slot: a room and a local sender.
public struct OutboundSessionOwner: Sendable, Hashable {
    public var roomID: RoomID
    public var senderUserID: UserID

    public init(roomID: RoomID, senderUserID: UserID) {
        self.roomID = roomID
        self.senderUserID = senderUserID
    }
}

/// An outbound session a local device created, as kept for answering key requests: the session as
/// first stored (its earliest index), and what one device was given of it.
public struct SharedRoomKey: Sendable, Hashable {
    public var roomID: RoomID
    public var senderUserID: UserID
    public var senderDeviceID: DeviceID
    public var sessionID: String
    /// The outbound session's pickle as first stored; nil for sessions stored before it was kept.
    public var initialPickle: String?
    /// What the asking device was given; nil when it never got the key.
    public var share: Share?

    /// A device given the key: its curve25519 key then, and the first index it can decrypt.
    public struct Share: Sendable, Hashable {
        public var curve25519: String
        public var messageIndex: UInt32

        public init(curve25519: String, messageIndex: UInt32) {
            self.curve25519 = curve25519
            self.messageIndex = messageIndex
        }
    }

    public init(
        roomID: RoomID, senderUserID: UserID, senderDeviceID: DeviceID, sessionID: String, initialPickle: String?, share: Share?
    ) {
        self.roomID = roomID
        self.senderUserID = senderUserID
        self.senderDeviceID = senderDeviceID
        self.sessionID = sessionID
        self.initialPickle = initialPickle
        self.share = share
    }
}
