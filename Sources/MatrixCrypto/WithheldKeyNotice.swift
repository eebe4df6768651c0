import MatrixModels

/// The content of an `m.room_key.withheld` about one of our Megolm sessions: sent instead of the key
/// to a device the room-key policy refuses, and in reply to a key request from a device not allowed the
/// key.
struct WithheldKeyNotice {
    var roomID: RoomID
    var sessionID: String
    /// Our device's curve25519 key (deprecated in the spec, still read by clients).
    var senderKey: String
    var from: DeviceID

    func content(code: String) -> JSONValue {
        [
            "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(roomID.rawValue),
            "session_id": .string(sessionID), "sender_key": .string(senderKey),
            "from_device": .string(from.rawValue), "code": .string(code), "reason": .string(Self.reason(code)),
        ]
    }

    /// A human-readable `reason` for `code`, which clients may show.
    static func reason(_ code: String) -> String {
        switch code {
        case CryptoMachine.noOlmCode: "Unable to establish a secure channel (no one-time key)."
        case CryptoMachine.unverifiedCode: "The sender shares keys only with devices cross-signed by their owner (MSC4153)."
        case CryptoMachine.unauthorisedCode: "This device was not given this key when it was shared, so it is not sent on request."
        case "m.blacklisted": "The sender has blocked this device."
        default: "The sender did not share the key."
        }
    }
}
