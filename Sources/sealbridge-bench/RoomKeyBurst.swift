import MatrixCrypto
import MatrixModels
import Olm

/// A remote device that sends each seeded puppet a room key, one Olm message each, round after round,
/// as room keys reach a bridge's puppets: the first round opens an Olm session per puppet (spending a
/// one-time key), later rounds are pre-key messages on the same sessions (the puppets never reply),
/// which change no account. Every message carries its own Megolm session, so that the store shows
/// each one was accepted.
final class RoomKeyBurst {
    let sender: UserID
    let deviceID: DeviceID
    let account: Account
    let deviceKeys: JSONValue
    let uploads: [KeysUpload]
    let room: String
    private var sessions: [Int: Session] = [:]

    init(uploads: [KeysUpload], room: String) throws {
        sender = try UserID("@burst_sender:remote.bench")
        deviceID = try DeviceID("BURST")
        account = try Account.create()
        deviceKeys = try KeysUpload.signedDeviceKeys(of: account, userID: sender, deviceID: deviceID)
        self.uploads = uploads
        self.room = room
    }

    /// One round: a new Megolm session's key to each puppet in `puppets`, as to-device events.
    func round(_ puppets: Range<Int>) throws -> [JSONValue] {
        try puppets.map { try message(to: $0, group: try OutboundGroupSession.create()) }
    }

    private func message(to index: Int, group: OutboundGroupSession) throws -> JSONValue {
        let upload = uploads[index]
        guard let curve = upload.deviceKeys?["keys"]?["curve25519:\(upload.deviceID.rawValue)"]?.stringValue,
            let ed = upload.deviceKeys?["keys"]?["ed25519:\(upload.deviceID.rawValue)"]?.stringValue
        else { throw BenchError("seeded puppet \(index) has no device keys") }
        if sessions[index] == nil {
            guard let otk = upload.oneTimeKeys.sorted(by: { $0.key < $1.key }).first?.value["key"]?.stringValue else {
                throw BenchError("seeded puppet \(index) has no one-time key")
            }
            sessions[index] = try Session.outbound(account: account, theirIdentityKey: curve, theirOneTimeKey: otk)
        }
        let payload: JSONValue = [
            "type": "m.room_key", "sender": .string(sender.rawValue), "recipient": .string(upload.userID.rawValue),
            "recipient_keys": ["ed25519": .string(ed)], "keys": ["ed25519": .string(account.identityKeys.ed25519)],
            "sender_device_keys": deviceKeys,
            "content": ["algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(room), "session_id": .string(group.sessionID),
                        "session_key": .string(group.sessionKey)],
        ]
        let encrypted = try sessions[index]!.encrypt(payload.serialized())
        return [
            "type": "m.room.encrypted", "sender": .string(sender.rawValue), "to_user_id": .string(upload.userID.rawValue),
            "to_device_id": .string(upload.deviceID.rawValue),
            "content": ["algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(account.identityKeys.curve25519),
                        "ciphertext": [.init(stringLiteral: curve): ["type": .integer(Int64(encrypted.kind.rawValue)), "body": .string(encrypted.ciphertext)]]],
        ]
    }
}
