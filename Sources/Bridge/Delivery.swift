import Foundation
import MatrixCrypto
import MatrixModels
import Primitives

/// One room event as the bridge logic receives it: plaintext, sender, room, and what is known of
/// its encryption. Its JSON is documented in docs/bridge-api.md.
public struct Delivery: Sendable {
    public var roomID: RoomID
    public var eventID: EventID
    public var json: JSONValue
    /// A second delivery of an event first delivered as undecryptable: kept apart in the outbox.
    public var late: Bool

    /// What a committed transaction delivers: plain events, and encrypted ones once decrypted (now,
    /// or released from parking because their key arrived), failed for good, or surfaced as still
    /// undecryptable after a wait (``CryptoMachine/surfaceParkedEvents(parkedBefore:limit:)``). An event
    /// surfaced as undecryptable and decrypted later is delivered again with `"late": true`. Events
    /// sent by the bot or puppets are left out: the bridge logic sent them itself.
    static func collect(_ transaction: AppserviceTransaction, step: CryptoStep, users: LocalUsers) -> [Delivery] {
        collect(events: transaction.events, step: step, users: users)
    }

    /// ``collect(_:step:users:)`` for plain `events` and the outcomes of any step.
    static func collect(events: [JSONValue], step: CryptoStep, users: LocalUsers) -> [Delivery] {
        var deliveries: [Delivery] = []
        for event in events {
            guard let type = event["type"]?.stringValue, type != "m.room.encrypted",
                let sender = event["sender"]?.stringValue.flatMap({ try? UserID($0) }), !users.isLocal(sender),
                let roomID = event["room_id"]?.stringValue.flatMap({ try? RoomID($0) }),
                let eventID = event["event_id"]?.stringValue.flatMap({ try? EventID($0) })
            else { continue }
            var json: [String: JSONValue] = [
                "event_id": .string(eventID.rawValue), "room_id": .string(roomID.rawValue), "sender": .string(sender.rawValue),
                "type": .string(type), "content": event["content"] ?? [:], "encryption": ["encrypted": false],
            ]
            if let stateKey = event["state_key"] { json["state_key"] = stateKey }
            if let ts = event["origin_server_ts"] { json["origin_server_ts"] = ts }
            deliveries.append(Delivery(roomID: roomID, eventID: eventID, json: .object(json), late: false))
        }
        for outcome in step.roomEvents where !users.isLocal(outcome.sender) {
            var json: [String: JSONValue] = [
                "event_id": .string(outcome.eventID.rawValue), "room_id": .string(outcome.roomID.rawValue),
                "sender": .string(outcome.sender.rawValue),
            ]
            if let ts = outcome.originServerTimestamp { json["origin_server_ts"] = .integer(ts) }
            if outcome.late { json["late"] = true }
            var encryption: [String: JSONValue] = ["encrypted": true]
            if let device = outcome.claimedDeviceID { encryption["sender_device"] = .string(device) }
            switch outcome.result {
            case .success(let decrypted):
                json["type"] = .string(decrypted.type)
                json["content"] = decrypted.content
                encryption["decrypted"] = true
                encryption["session_id"] = .string(decrypted.sessionID)
                if let key = outcome.senderKey { encryption["sender_key"] = .string(key) }
                // The level of the device that shared the key, as of decryption (docs/bridge-api.md).
                encryption["trust"] = .string((outcome.trust ?? .unknownDevice).rawValue)
                // The key came as m.forwarded_room_key in answer to our request (docs/key-requests.md).
                if outcome.forwardedKey { encryption["forwarded"] = true }
                // The key came in the inviter's MSC4268 history bundle: their word (docs/history-bundles.md).
                if let inviter = outcome.bundleSender {
                    encryption["from_bundle"] = true
                    encryption["bundle_sender"] = .string(inviter.rawValue)
                }
            case .failure(let failure):
                if let trust = outcome.trust { encryption["trust"] = .string(trust.rawValue) }
                json["type"] = "m.room.encrypted"
                json["content"] = [:]
                encryption["decrypted"] = false
                encryption["error"] = ["code": .string(failure.code), "reason": .string(failure.reason), "message": .string(failure.description)]
            }
            json["encryption"] = .object(encryption)
            deliveries.append(Delivery(roomID: outcome.roomID, eventID: outcome.eventID, json: .object(json), late: outcome.late))
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (change, roomID) in step.trustUpdates where !users.isLocal(change.userID) {
            deliveries.append(trustUpdate(change, in: roomID, at: now))
        }
        return deliveries
    }

    /// A `sealbridge.trust_update` for the bridge logic: events of `change`'s device delivered
    /// earlier in `roomID` carry the previous level; from now on it is the current one. Its id is
    /// Sealbridge's own (`$sealbridge_trust_…`, unique per room, device and moment), never a homeserver event's.
    static func trustUpdate(_ change: DeviceTrustChange, in roomID: RoomID, at timestamp: Int64) -> Delivery {
        let digest = SHA256.hash(Array("\(roomID.rawValue)\u{0}\(change.userID.rawValue)\u{0}\(change.deviceID.rawValue)\u{0}\(change.previous)\u{0}\(change.current)\u{0}\(timestamp)".utf8))
        // The digest is hex: always a valid event id.
        let eventID = try! EventID("$sealbridge_trust_" + Hex.encode(digest.prefix(16)))
        let json: JSONValue = [
            "event_id": .string(eventID.rawValue), "room_id": .string(roomID.rawValue), "sender": .string(change.userID.rawValue),
            "type": "sealbridge.trust_update", "origin_server_ts": .integer(timestamp),
            "content": [
                "user_id": .string(change.userID.rawValue), "device_id": .string(change.deviceID.rawValue),
                "sender_key": .string(change.curve25519), "previous_trust": .string(change.previous.rawValue),
                "trust": .string(change.current.rawValue),
            ],
            "encryption": ["encrypted": false],
        ]
        return Delivery(roomID: roomID, eventID: eventID, json: json, late: false)
    }
}

extension DecryptionFailure {
    /// A stable name for the bridge API (`encryption.error.code`).
    public var code: String {
        switch self {
        case .unsupportedAlgorithm: "unsupported_algorithm"
        case .malformed: "malformed"
        case .notForThisDevice: "not_for_this_device"
        case .wedgedSession: "wedged_session"
        case .olm: "olm"
        case .payloadMismatch: "payload_mismatch"
        case .unverifiedSender: "unverified_sender"
        case .unknownSession: "unknown_session"
        case .unknownMessageIndex: "unknown_message_index"
        case .replay: "replay"
        case .roomMismatch: "room_mismatch"
        case .withheld: "withheld"
        case .forwardedKeyRefused: "forwarded_key_refused"
        case .unreadableSession: "unreadable_session"
        case .unreadableAccount: "unreadable_account"
        case .untrustedDevice: "untrusted_device"
        }
    }
}

extension DecryptionFailure {
    /// Why an event is (still) undecryptable, in the words of the bridge API (`encryption.error.reason`):
    /// `unknown_session`, `later_index`, `withheld:<code>`, or the failure's ``code``.
    public var reason: String {
        switch self {
        case .unknownSession: "unknown_session"
        case .unknownMessageIndex: "later_index"
        case .withheld(let code, _): "withheld:\(code)"
        case .untrustedDevice(let trust): trust.rawValue
        default: code
        }
    }
}
