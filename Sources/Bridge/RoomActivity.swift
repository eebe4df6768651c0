import MatrixCrypto
import MatrixModels

/// What a committed transaction asks the bot to act on, handed over after the commit.
public enum RoomActivity: Sendable {
    /// A local user (the bot) was invited to a room.
    case invited(roomID: RoomID, userID: UserID, inviter: UserID)
    /// A message from a remote user, decrypted or sent in the clear.
    case message(RoomMessage)
}

/// A room message as the bot logic sees it: plaintext plus the facts of its decryption.
public struct RoomMessage: Sendable {
    public var roomID: RoomID
    public var eventID: EventID
    public var sender: UserID
    public var content: JSONValue
    /// Whether it arrived as `m.room.encrypted`.
    public var encrypted: Bool
}

extension RoomActivity {
    /// Invites for `localUsers` and `m.room.message` events (plain, or decrypted by `step`) from others.
    static func collect(
        _ transaction: AppserviceTransaction, step: CryptoStep, isLocal: (UserID) -> Bool
    ) -> [RoomActivity] {
        collect(events: transaction.events, step: step, isLocal: isLocal)
    }

    /// ``collect(_:step:isLocal:)`` for plain `events` and any step's decrypted messages.
    public static func collect(events: [JSONValue], step: CryptoStep, isLocal: (UserID) -> Bool) -> [RoomActivity] {
        var activity: [RoomActivity] = []
        for event in events {
            guard let type = event["type"]?.stringValue, let sender = event["sender"]?.stringValue.flatMap({ try? UserID($0) }),
                let roomID = event["room_id"]?.stringValue.flatMap({ try? RoomID($0) })
            else { continue }
            if type == "m.room.member", event["content"]?["membership"]?.stringValue == "invite",
                let invitee = event["state_key"]?.stringValue.flatMap({ try? UserID($0) }), isLocal(invitee)
            {
                activity.append(.invited(roomID: roomID, userID: invitee, inviter: sender))
            } else if type == "m.room.message", !isLocal(sender), let eventID = event["event_id"]?.stringValue.flatMap({ try? EventID($0) }) {
                activity.append(.message(RoomMessage(roomID: roomID, eventID: eventID, sender: sender, content: event["content"] ?? [:], encrypted: false)))
            }
        }
        for outcome in step.roomEvents where !isLocal(outcome.sender) {
            guard case .success(let decrypted) = outcome.result, decrypted.type == "m.room.message" else { continue }
            activity.append(.message(RoomMessage(
                roomID: outcome.roomID, eventID: outcome.eventID, sender: outcome.sender, content: decrypted.content, encrypted: true)))
        }
        return activity
    }
}
