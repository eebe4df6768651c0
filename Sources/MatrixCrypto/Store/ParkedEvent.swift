import Foundation
import MatrixModels

/// An encrypted room event waiting for its key.
///
/// Kept as the raw event (sealed at rest: it is whatever JSON the homeserver passed, NULs included)
/// with the fields it is found and judged by. After a wait it is delivered to the bridge logic as
/// undecryptable (``surfaced``); if its key comes later it is delivered again, decrypted.
public struct ParkedEvent: Sendable, Hashable {
    /// The event's id, the key under which it is parked.
    public var eventID: String { event["event_id"]?.stringValue ?? "" }

    public var event: JSONValue
    /// A well-formed Megolm session id (checked before parking).
    public var sessionID: String
    public var roomID: RoomID
    public var sender: UserID
    /// The envelope's sender key when it is a well-formed key (deprecated, unauthenticated): picks
    /// among claims and withheld notices, never proves anything.
    public var senderKey: String?
    /// Why it waits (`unknownSession`, `unknownMessageIndex`, `withheld`); not stored, worked out each time.
    public var reason: DecryptionFailure?
    /// When it was parked (set by the store; nil before it is saved).
    public var parkedAt: Date?
    /// Whether the bridge logic was already told it is undecryptable, so a later decryption is `late`.
    public var surfaced: Bool

    public init(
        event: JSONValue, sessionID: String, roomID: RoomID, sender: UserID, senderKey: String? = nil, reason: DecryptionFailure? = nil,
        parkedAt: Date? = nil, surfaced: Bool = false
    ) {
        self.event = event
        self.sessionID = sessionID
        self.roomID = roomID
        self.sender = sender
        self.senderKey = senderKey
        self.reason = reason
        self.parkedAt = parkedAt
        self.surfaced = surfaced
    }
}
