import MatrixModels

// The small key types the machine looks its per-step and cached state up by (instead of strings
// joined with a separator).

/// A Megolm session id in a room: what events name.
struct GroupSessionRef: Hashable {
    var roomID: RoomID
    var sessionID: String
}

/// One owner's claim on an inbound session: the session id and the sender key that shared it.
struct InboundSessionKey: Hashable {
    var roomID: RoomID
    var sessionID: String
    var senderKey: String

    init(_ record: StoredInboundGroupSession) {
        roomID = record.roomID
        sessionID = record.sessionID
        senderKey = record.senderKey
    }
}

/// One to-device sender's MSC4147 `sender_device_keys`, exactly as sent: equal JSON values have the
/// same canonical form, so the same signature check.
struct SenderDeviceKeysRef: Hashable {
    var sender: UserID
    var keys: JSONValue
}

/// The Olm sessions of one local user with one remote key.
struct OlmSessionsKey: Hashable {
    var localUserID: UserID
    var remoteKey: String
}
