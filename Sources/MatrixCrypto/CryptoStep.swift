import Foundation
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
    /// Senders of to-device messages that wait (``CryptoChanges/pendingToDevice``) until their device
    /// list is fetched: query them after the commit, then ``CryptoMachine/processPendingToDevice(senders:)``.
    public var unknownSenders: Set<UserID> = []
    /// Room keys for a session id that another owner already claimed: logged and counted.
    public var keyConflicts: [RoomKeyConflict] = []
    /// `m.room_key_request`s for local devices' sessions, to answer after the commit
    /// (``CryptoMachine/answer(_:)``); a request withdrawn later in the same step is not here.
    public var keyRequests: [RoomKeyRequest] = []
    /// Known devices whose trust level changed, once per room their owner is in: delivered to the
    /// bridge logic with the step (events from those devices delivered earlier carry the old level).
    public var trustUpdates: [(change: DeviceTrustChange, roomID: RoomID)] = []
    /// MSC4268 history bundles imported or refused in this step (for metrics and logs).
    public var historyBundles: [HistoryBundleOutcome] = []

    public init() {}
}

/// An `m.room_key` for a session id that a different owner (sender key, user or Ed25519 key) already
/// shared: the stored claim is kept as it is, and each owner's claim is kept apart.
public struct RoomKeyConflict: Sendable, Hashable {
    public var roomID: RoomID
    public var sessionID: String
    /// Who shared the key first (the claim that stays), and who shares it now.
    public var existingSender: UserID
    public var newSender: UserID
    /// True when the new key names the existing claim's sender key (same device key, other user or
    /// Ed25519 key): it is refused outright. False: it is kept as its sender's own claim.
    public var refused: Bool
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
    /// Decrypted, but waiting for the sender's device list before it is acted on.
    public var pending = false
}

/// One room event after decryption.
public struct RoomEventOutcome: Sendable {
    public var eventID: EventID
    public var roomID: RoomID
    public var sender: UserID
    public var result: Result<MegolmDecryption.Decrypted, DecryptionFailure>
    /// The curve25519 key of the device that shared the session (when decrypted).
    public var senderKey: String?
    /// The trust level of that device at decryption (set when the session was found and opened;
    /// also on an ``DecryptionFailure/untrustedDevice(_:)`` refusal).
    public var trust: DeviceTrust?
    /// The event's `type` once decrypted is in `result`; these come from the envelope, for delivery.
    public var originServerTimestamp: Int64?
    /// The `device_id` the envelope claims (deprecated, unauthenticated; `senderKey` is the proof).
    public var claimedDeviceID: String?
    /// The event was parked and already delivered as undecryptable: this outcome comes late.
    public var late = false
    /// Decrypted with a session imported from an `m.forwarded_room_key` (``StoredInboundGroupSession/forwarded``).
    public var forwardedKey = false
    /// Decrypted with a session imported from this inviter's MSC4268 history bundle
    /// (``StoredInboundGroupSession/bundleSender``): delivered with `encryption.from_bundle`.
    public var bundleSender: UserID? = nil
    /// When the event was parked, if it was (set when a parked event is retried): time to recovery.
    public var parkedAt: Date?
}
