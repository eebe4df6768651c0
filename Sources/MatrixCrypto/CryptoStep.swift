import MatrixModels

/// What the machine made of one transaction: changes to commit with the txn id, key uploads to send
/// after the commit, and an outcome for every encrypted input.
public struct CryptoStep: Sendable {
    public var changes = CryptoChanges()
    /// Key uploads to send once `changes` are committed; confirm each with ``CryptoMachine/confirmUpload(_:)``.
    public var uploads: [KeysUpload] = []
    public var toDevice: [ToDeviceOutcome] = []
    public var roomEvents: [RoomEventOutcome] = []
    /// Events whose Megolm key is still missing (also in `changes.parkedEvents`, so they survive a restart).
    public var parked: [ParkedEvent] = []
    /// Olm sessions found wedged, to be replaced (new session and an `m.dummy`) after the commit.
    /// Already rate-limited: at most one per remote device per ``CryptoSettings/wedgedRecoveryInterval``.
    public var wedged: [WedgedSession] = []
}

/// A remote device whose Olm messages to a local device no longer decrypt.
public struct WedgedSession: Sendable, Hashable {
    public var localUserID: UserID
    public var localDeviceID: DeviceID
    public var remoteUserID: UserID
    public var remoteKey: String

    public init(localUserID: UserID, localDeviceID: DeviceID, remoteUserID: UserID, remoteKey: String) {
        self.localUserID = localUserID
        self.localDeviceID = localDeviceID
        self.remoteUserID = remoteUserID
        self.remoteKey = remoteKey
    }
}

/// One to-device message after decryption.
public struct ToDeviceOutcome: Sendable {
    public var sender: UserID
    public var recipient: UserID
    /// The decrypted inner type (`m.room_key`, `m.dummy`, …), or nil on failure.
    public var type: String?
    public var failure: DecryptionFailure?
}

/// One room event after decryption.
public struct RoomEventOutcome: Sendable {
    public var eventID: EventID
    public var roomID: RoomID
    public var sender: UserID
    public var result: Result<MegolmDecryption.Decrypted, DecryptionFailure>
    /// The curve25519 key of the device that shared the session (when decrypted).
    public var senderKey: String?
    /// The event's `type` once decrypted is in `result`; these come from the envelope, for delivery.
    public var originServerTimestamp: Int64?
    /// The `device_id` the envelope claims (deprecated, unauthenticated; `senderKey` is the proof).
    public var claimedDeviceID: String?
}

/// An encrypted room event waiting for its key.
public struct ParkedEvent: Sendable, Hashable {
    /// The event's id, the key under which it is parked.
    public var eventID: String { event["event_id"]?.stringValue ?? "" }

    public var event: JSONValue
    public var sessionID: String
    public var roomID: RoomID
    /// Why it waits (`unknownSession`, `unknownMessageIndex`, `withheld`); not stored, worked out each time.
    public var reason: DecryptionFailure?

    public init(event: JSONValue, sessionID: String, roomID: RoomID, reason: DecryptionFailure? = nil) {
        self.event = event
        self.sessionID = sessionID
        self.roomID = roomID
        self.reason = reason
    }
}
