import MatrixModels

/// What sending an encrypted room event needs next; the caller performs it and asks again.
///
/// The machine never marks a device as having a key before the caller reports that the to-device
/// send succeeded, and never lets a Megolm ciphertext out before its advanced ratchet is in `changes`.
public enum RoomEncryptionStep: Sendable {
    /// `POST /keys/query` for these users, then ``CryptoMachine/receiveKeysQuery(_:users:)`` and commit.
    case queryDevices([UserID])
    /// `POST /keys/claim` for these devices (no Olm session yet), then ``CryptoMachine/receiveKeysClaim(_:requested:sender:)``.
    case claimOneTimeKeys([DeviceRef])
    /// Commit `changes`, send each batch, and commit ``CryptoMachine/confirmShare(_:)`` for each batch that was sent.
    case shareRoomKey(RoomKeyShare)
    /// Commit `changes`, then send `content` as `m.room.encrypted`.
    case encrypted(EncryptedRoomEvent)
}

/// The room key of an outbound session on its way to devices that lack it.
public struct RoomKeyShare: Sendable {
    /// The outbound session (new or rotated) and the advanced Olm sessions: commit before sending.
    public var changes: CryptoChanges
    public var batches: [ShareBatch]
}

/// One `/sendToDevice` request and the share records it proves once it succeeded.
public struct ShareBatch: Sendable {
    public var request: ToDeviceRequest
    public var shares: [OutboundShare]
}

/// A Megolm-encrypted room event, ready to send.
public struct EncryptedRoomEvent: Sendable {
    /// The advanced outbound session: commit before `content` leaves the process.
    public var changes: CryptoChanges
    /// `m.room.encrypted` content.
    public var content: JSONValue
    public var sessionID: String
    public var messageIndex: UInt32
}
