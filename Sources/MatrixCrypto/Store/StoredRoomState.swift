import Foundation
import MatrixModels

/// A room's `m.room.encryption` settings and history visibility, as the machine last saw them.
public struct RoomEncryption: Sendable, Hashable {
    public var algorithm: String
    /// `rotation_period_ms`; nil means the configured default.
    public var rotationPeriodMilliseconds: Int64?
    /// `rotation_period_msgs`; nil means the configured default.
    public var rotationPeriodMessages: Int64?
    /// `m.room.history_visibility`: `invited` or looser shares keys with invited members too.
    public var historyVisibility: String

    public init(algorithm: String, rotationPeriodMilliseconds: Int64? = nil, rotationPeriodMessages: Int64? = nil, historyVisibility: String = "shared") {
        self.algorithm = algorithm
        self.rotationPeriodMilliseconds = rotationPeriodMilliseconds
        self.rotationPeriodMessages = rotationPeriodMessages
        self.historyVisibility = historyVisibility
    }

    /// Whether invited (not yet joined) members get room keys.
    public var sharesWithInvited: Bool { historyVisibility != "joined" }
}

/// A member's state in a room: `join`, `invite`, `leave`, `ban`, `knock`.
public struct RoomMembership: Sendable, Hashable {
    public var roomID: RoomID
    public var userID: UserID
    public var membership: String

    public init(roomID: RoomID, userID: UserID, membership: String) {
        self.roomID = roomID
        self.userID = userID
        self.membership = membership
    }

    /// Joined or invited: the states that keep a user's device list tracked.
    public var isPresent: Bool { membership == "join" || membership == "invite" }
}

/// An `m.room_key.withheld` a sender told us about: why we will not get a session's key.
///
/// A hint, not a fact: anyone can send one (it travels in plaintext), so it changes the reason
/// reported only for events of the same sender and sender key, and never stops a later key from
/// being accepted.
public struct WithheldNotice: Sendable, Hashable {
    public var roomID: RoomID
    public var sessionID: String
    /// `m.unverified`, `m.blacklisted`, `m.unauthorised`, `m.unavailable`, `m.no_olm`.
    public var code: String
    public var reason: String?
    /// The to-device message's `sender` (set by the homeserver, so authenticated).
    public var senderUserID: UserID
    /// The curve25519 key the notice names (claimed, unauthenticated).
    public var senderKey: String

    public init(roomID: RoomID, sessionID: String, code: String, reason: String?, senderUserID: UserID, senderKey: String) {
        self.roomID = roomID
        self.sessionID = sessionID
        self.code = code
        self.reason = reason
        self.senderUserID = senderUserID
        self.senderKey = senderKey
    }

    /// Whether the notice speaks for an event of `sender` whose envelope names `senderKey`.
    public func applies(to sender: UserID, senderKey envelopeKey: String?) -> Bool {
        senderUserID == sender && (envelopeKey == nil || envelopeKey == senderKey)
    }
}

/// When a local device last replaced a wedged Olm session with a remote key (rate limit: one per hour).
public struct OlmRecovery: Sendable, Hashable {
    public var localUserID: UserID
    public var remoteKey: String
    public var at: Date

    public init(localUserID: UserID, remoteKey: String, at: Date) {
        self.localUserID = localUserID
        self.remoteKey = remoteKey
        self.at = at
    }
}
