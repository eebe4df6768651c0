import Foundation
import MatrixModels

/// Where the crypto engine keeps its state: one batched write, reads by key.
///
/// Everything it holds is either public or encrypted: pickles are encrypted by libolm under keys
/// of the ``StoreCipher`` (``StoreCipher/pickle(_:)``). Implementations: ``MemoryCryptoStore`` for tests, and the PostgreSQL
/// store (module `Store`), whose `save` joins the appservice transaction's database transaction.
public protocol CryptoStore: Sendable {
    /// The Olm account of a local device (bot or puppet), if it has one.
    func account(userID: UserID) async throws -> StoredAccount?
    /// Local devices in user id order, after `after` (for walking all of them in pages).
    func localDevices(after: UserID?, limit: Int) async throws -> [DeviceRef]
    /// The device of each of `userIDs` that is a local user (holds an account here); others are absent.
    func localDeviceIDs(userIDs: [UserID]) async throws -> [UserID: DeviceID]
    /// ``account(userID:)`` of each of `userIDs` that has an account.
    func accounts(userIDs: [UserID]) async throws -> [UserID: StoredAccount]
    /// What ``account(userID:)`` says of each of `userIDs` that has an account, without the pickle.
    func accountStates(userIDs: [UserID]) async throws -> [UserID: LocalAccountState]
    /// Olm sessions of a local device with a remote curve25519 key, most recently used first.
    func olmSessions(localUserID: UserID, localDeviceID: DeviceID, senderKey: String) async throws -> [StoredOlmSession]
    /// Every stored claim on the inbound Megolm session (room, session id), lowest first known index
    /// first: one per owner (sender key), since another sender's copy of a key never rewrites the
    /// owner's. Shared by every local device.
    func inboundGroupSessions(roomID: RoomID, sessionID: String) async throws -> [StoredInboundGroupSession]
    /// Replay-protection entries for the given (session, message index) pairs, where they exist.
    func replayEntries(_ keys: Set<ReplayLedger.Key>) async throws -> [ReplayLedger.Key: String]
    /// Events parked until one of the Megolm sessions `sessionIDs` is known.
    func parkedEvents(sessionIDs: Set<String>) async throws -> [ParkedEvent]
    /// Events parked before `parkedBefore` and not yet surfaced to the bridge logic as undecryptable,
    /// oldest first.
    func parkedEventsToSurface(parkedBefore: Date, limit: Int) async throws -> [ParkedEvent]
    /// The most recently parked events still waiting, in `roomID` or everywhere, newest first.
    func recentParkedEvents(roomID: RoomID?, limit: Int) async throws -> [ParkedEvent]
    /// Decrypted to-device payloads waiting until one of `senders`' device lists is known.
    func pendingToDevice(senders: Set<UserID>) async throws -> [PendingToDevice]
    /// Senders with to-device payloads waiting, oldest first, and a local recipient of each (to
    /// query their devices as).
    func pendingSenders(limit: Int) async throws -> [(sender: UserID, recipient: UserID)]
    /// Forgets parked events parked before `parkedBefore` (already surfaced as undecryptable) and
    /// pending to-device payloads received before `pendingBefore`.
    /// - Returns: How many of each were removed.
    func expire(parkedBefore: Date, pendingBefore: Date) async throws -> (parked: Int, pending: Int)
    /// A number that grows with every committed change that could add a recipient to a room's key
    /// (rooms, members, device lists, tracking, discarded sessions). Read from the committed state,
    /// so a send's shortcut never trusts an in-memory counter that a lost COMMIT answer left behind.
    func recipientsVersion() async throws -> Int64
    /// Writes every change at once: all or nothing.
    func save(_ changes: CryptoChanges) async throws

    // MARK: Device tracking
    /// The verified devices of each of `userIDs` (users with none, or untracked, are absent).
    func devices(userIDs: [UserID]) async throws -> [UserID: [VerifiedDeviceKeys]]
    /// Tracked users among `userIDs`, each with its outdated flag.
    func trackedUsers(_ userIDs: [UserID]) async throws -> [UserID: Bool]
    /// The cross-signing identities seen (and pinned) for each of `userIDs`, where there is one.
    func userIdentities(_ userIDs: [UserID]) async throws -> [UserID: StoredUserIdentity]

    // MARK: Rooms
    func room(_ roomID: RoomID) async throws -> RoomEncryption?
    /// The encryption settings of those of `roomIDs` that have them.
    func rooms(_ roomIDs: [RoomID]) async throws -> [RoomID: RoomEncryption]
    /// Every member of the room the machine knows of, with their membership.
    func members(roomID: RoomID) async throws -> [UserID: String]
    /// Rooms in which `userID` is joined or invited.
    func presentRooms(userID: UserID) async throws -> [RoomID]
    /// ``presentRooms(userID:)`` of each of `userIDs` that is in any room.
    func presentRooms(userIDs: [UserID]) async throws -> [UserID: [RoomID]]

    // MARK: Sending
    /// The outbound session of a local sender in a room, with its committed share records.
    func outboundGroupSession(roomID: RoomID, senderUserID: UserID) async throws -> StoredOutboundGroupSession?
    /// The same without reading the share records (`shares` is empty): for a send that knows they are complete.
    func outboundGroupSessionWithoutShares(roomID: RoomID, senderUserID: UserID) async throws -> StoredOutboundGroupSession?
    /// A local device's outbound session `sessionID`, current or retired (replaced within the
    /// retention), with the share record of `recipient` if it was given the key: what answering a
    /// key request needs. nil: not a session a local device created, or forgotten.
    func sharedRoomKey(sessionID: String, recipient: DeviceRef) async throws -> SharedRoomKey?
    /// The outstanding key requests for any of `sessionIDs`.
    func outgoingKeyRequests(sessionIDs: Set<String>) async throws -> [OutgoingKeyRequest]
    /// One parked event (the oldest) per session whose key should be asked for now: parked before
    /// `parkedBefore`, not sent by a local user (whose sessions Sealbridge created), not among
    /// `excluding`, and not asked for, or last asked before `askedBefore`; oldest first.
    func keyRequestsDue(parkedBefore: Date, askedBefore: Date, excluding: Set<String>, limit: Int) async throws -> [ParkedEvent]
    /// Olm sessions of a local device with each of `remoteKeys`, most recently used first.
    func olmSessions(localUserID: UserID, localDeviceID: DeviceID, remoteKeys: [String]) async throws -> [String: [StoredOlmSession]]
    /// Olm sessions of each of `localDevices` with `senderKey`, most recently used first (devices
    /// with none are left out).
    func olmSessions(senderKey: String, localDevices: [DeviceRef]) async throws -> [DeviceRef: [StoredOlmSession]]
    /// The withheld notices received for an inbound session, one per (sender, sender key): hints
    /// that apply only to events whose sender and sender key match.
    func withheldNotices(roomID: RoomID, sessionID: String) async throws -> [WithheldNotice]
    /// When `localUserID` last replaced a wedged session with `remoteKey`.
    func lastOlmRecovery(localUserID: UserID, remoteKey: String) async throws -> Date?

    // MARK: Local cross-signing
    /// A local user's own cross-signing identity, if it has one.
    func crossSigningIdentity(userID: UserID) async throws -> StoredCrossSigningIdentity?
    /// Local users after `after` (in user id order) whose identity is missing, unpublished, or does
    /// not sign their current device: the backfill's work list.
    func crossSigningBacklog(after: UserID?, limit: Int) async throws -> [UserID]
    /// How many local devices are fully cross-signed.
    func crossSigningProgress() async throws -> CrossSigningProgress

    // MARK: History bundles (MSC4268)
    /// History bundle pointers ready to be judged, oldest first: those whose recipient's invite into
    /// the room was seen (from anyone), and those received before `receivedBefore` (expired). The
    /// others wait, and never crowd out the ready ones.
    func historyBundles(receivedBefore: Date, limit: Int) async throws -> [PendingHistoryBundle]
    /// Who last invited local user `userID` into `roomID`, if that invite was seen (and not expired).
    func roomInvite(roomID: RoomID, userID: UserID) async throws -> RoomInvite?
    /// Forgets history bundle pointers received, and invites seen, before `before`.
    /// - Returns: How many rows were removed.
    func expireHistoryBundles(before: Date) async throws -> Int
}

/// An error a store throws when its database is away for now (unreachable, or this instance no longer
/// the one allowed to write), as opposed to a row it cannot read. A step that meets one fails as a
/// whole, so that its transaction is held and retried with its to-device part; a bad row fails only
/// the message that needed it.
public protocol StoreAvailabilityError: Error {
    var isStoreUnavailable: Bool { get }
}

extension CryptoStore {
    /// One ``olmSessions(localUserID:localDeviceID:senderKey:)`` read per device; stores override it with one query.
    public func olmSessions(senderKey: String, localDevices: [DeviceRef]) async throws -> [DeviceRef: [StoredOlmSession]] {
        var found: [DeviceRef: [StoredOlmSession]] = [:]
        for device in localDevices {
            let sessions = try await olmSessions(localUserID: device.userID, localDeviceID: device.deviceID, senderKey: senderKey)
            if !sessions.isEmpty { found[device] = sessions }
        }
        return found
    }

    /// One ``room(_:)`` read per room; stores override it with one query.
    public func rooms(_ roomIDs: [RoomID]) async throws -> [RoomID: RoomEncryption] {
        var found: [RoomID: RoomEncryption] = [:]
        for room in roomIDs { found[room] = try await self.room(room) }
        return found
    }

    /// One ``presentRooms(userID:)`` read per user; stores override it with one query.
    public func presentRooms(userIDs: [UserID]) async throws -> [UserID: [RoomID]] {
        var found: [UserID: [RoomID]] = [:]
        for user in userIDs {
            let rooms = try await presentRooms(userID: user)
            if !rooms.isEmpty { found[user] = rooms }
        }
        return found
    }

    /// One ``account(userID:)`` read per user; stores override it with one query.
    public func accounts(userIDs: [UserID]) async throws -> [UserID: StoredAccount] {
        var found: [UserID: StoredAccount] = [:]
        for user in userIDs {
            if let account = try await account(userID: user) { found[user] = account }
        }
        return found
    }

    /// One ``account(userID:)`` read per user; stores override it with one query.
    public func accountStates(userIDs: [UserID]) async throws -> [UserID: LocalAccountState] {
        var found: [UserID: LocalAccountState] = [:]
        for user in userIDs {
            if let account = try await account(userID: user) { found[user] = LocalAccountState(account) }
        }
        return found
    }

    /// One ``account(userID:)`` read per user; stores override it with one query.
    public func localDeviceIDs(userIDs: [UserID]) async throws -> [UserID: DeviceID] {
        var found: [UserID: DeviceID] = [:]
        for user in userIDs {
            if let account = try await account(userID: user) { found[user] = account.deviceID }
        }
        return found
    }
}

/// A local device's Olm account.
public struct StoredAccount: Sendable, Hashable {
    public var userID: UserID
    public var deviceID: DeviceID
    public var pickle: String
    /// Whether the device keys have been accepted by the homeserver.
    public var deviceKeysUploaded: Bool
    /// When the fallback key was last replaced; the previous one is forgotten a grace period later
    /// (a peer may still be using it for a pre-key message in flight).
    public var fallbackRotatedAt: Date?

    public init(userID: UserID, deviceID: DeviceID, pickle: String, deviceKeysUploaded: Bool, fallbackRotatedAt: Date? = nil) {
        self.userID = userID
        self.deviceID = deviceID
        self.pickle = pickle
        self.deviceKeysUploaded = deviceKeysUploaded
        self.fallbackRotatedAt = fallbackRotatedAt
    }
}

/// A local account's record without its pickle: enough to tell whether the account must be opened.
public struct LocalAccountState: Sendable, Hashable {
    public var deviceID: DeviceID
    public var deviceKeysUploaded: Bool
    public var fallbackRotatedAt: Date?

    public init(deviceID: DeviceID, deviceKeysUploaded: Bool, fallbackRotatedAt: Date?) {
        self.deviceID = deviceID
        self.deviceKeysUploaded = deviceKeysUploaded
        self.fallbackRotatedAt = fallbackRotatedAt
    }

    public init(_ account: StoredAccount) {
        self.init(deviceID: account.deviceID, deviceKeysUploaded: account.deviceKeysUploaded, fallbackRotatedAt: account.fallbackRotatedAt)
    }
}

/// An Olm session between a local device and a remote curve25519 key.
public struct StoredOlmSession: Sendable, Hashable {
    public var localUserID: UserID
    public var localDeviceID: DeviceID
    public var senderKey: String
    public var sessionID: String
    public var pickle: String
    public var lastUsed: Date

    public init(localUserID: UserID, localDeviceID: DeviceID, senderKey: String, sessionID: String, pickle: String, lastUsed: Date) {
        self.localUserID = localUserID
        self.localDeviceID = localDeviceID
        self.senderKey = senderKey
        self.sessionID = sessionID
        self.pickle = pickle
        self.lastUsed = lastUsed
    }
}

/// An inbound Megolm session with who sent it: one owner's claim on a session id.
public struct StoredInboundGroupSession: Sendable, Hashable {
    public var roomID: RoomID
    public var sessionID: String
    /// The curve25519 key of the device that shared it (the Olm session's remote key).
    public var senderKey: String
    public var senderUserID: UserID
    /// The Ed25519 key of the sharing device, from its verified device keys.
    public var senderEd25519: String
    public var firstKnownIndex: UInt32
    public var pickle: String
    /// Imported from an `m.forwarded_room_key` (in answer to our request, from the session's own
    /// device), not received as `m.room_key`: its events are delivered with `encryption.forwarded`.
    public var forwarded = false
    /// Imported from an MSC4268 history bundle of this inviter's device: its events are delivered
    /// with `encryption.from_bundle`, at a trust no higher than that device's.
    public var bundleSender: BundleSender?
    /// Known only through another device's word: forwarded in answer to a request, or from a history bundle.
    public var isIndirect: Bool { forwarded || bundleSender != nil }

    public init(
        roomID: RoomID, sessionID: String, senderKey: String, senderUserID: UserID, senderEd25519: String = "", firstKnownIndex: UInt32,
        pickle: String
    ) {
        self.roomID = roomID
        self.sessionID = sessionID
        self.senderKey = senderKey
        self.senderUserID = senderUserID
        self.senderEd25519 = senderEd25519
        self.firstKnownIndex = firstKnownIndex
        self.pickle = pickle
    }

    /// Whether `other` is the same owner's claim (same sender key, user and Ed25519 key): only then
    /// may a copy known from an earlier index replace this one.
    public func hasSameOwner(as other: StoredInboundGroupSession) -> Bool {
        senderKey == other.senderKey && senderUserID == other.senderUserID && senderEd25519 == other.senderEd25519
    }

    /// Whether this copy replaces `existing` in the store: the same owner's, known from an earlier
    /// index, or the owner's own `m.room_key` from the same index where `existing` was only another
    /// device's word (forwarded or bundled) — the direct copy carries the owner device's trust.
    public func supersedes(_ existing: StoredInboundGroupSession) -> Bool {
        guard hasSameOwner(as: existing) else { return false }
        return firstKnownIndex < existing.firstKnownIndex || (firstKnownIndex == existing.firstKnownIndex && existing.isIndirect && !isIndirect)
    }
}

/// Everything one step of the engine changed, written by ``CryptoStore/save(_:)`` in one go.
public struct CryptoChanges: Sendable {
    /// Local users whose account (device) is forgotten, applied before `accounts`: the device is gone
    /// from the homeserver or holds another account's keys, and a new one replaces it.
    public var discardedAccounts: Set<UserID> = []
    public var accounts: [StoredAccount] = []
    public var olmSessions: [StoredOlmSession] = []
    /// Kept once per (room, session id, sender key): a copy known from an earlier index replaces a later
    /// one of the same owner (sender key, user, Ed25519 key), never the reverse; another owner's copy
    /// never changes a stored claim.
    public var inboundGroupSessions: [StoredInboundGroupSession] = []
    public var replayEntries: [ReplayLedger.Key: String] = [:]
    /// Events to keep until their key arrives (keyed by event id: parking twice keeps one copy).
    public var parkedEvents: [ParkedEvent] = []
    /// Event ids of parked events now decrypted (or failed for good): remove them.
    public var releasedEvents: Set<String> = []
    /// Event ids of parked events just delivered to the bridge logic as undecryptable.
    public var surfacedEvents: Set<String> = []
    /// Decrypted to-device payloads that wait for their sender's device list.
    public var pendingToDevice: [PendingToDevice] = []
    /// Ids of pending to-device payloads now processed (or refused for good): remove them.
    public var releasedToDevice: Set<String> = []
    /// A user's complete, verified device list from `/keys/query`: replaces what was stored.
    public var deviceLists: [UserID: [VerifiedDeviceKeys]] = [:]
    /// Remote users' cross-signing identities (pins, current keys, cross-signed devices, vouches):
    /// each replaces the stored one. Kept when a user is untracked, so a pin outlives leaving rooms.
    public var userIdentities: [UserID: StoredUserIdentity] = [:]
    /// Users to track, with their outdated flag (true: query their devices before the next send).
    public var trackedUsers: [UserID: Bool] = [:]
    /// Users who share no room any more: forget them and their devices.
    public var untrackedUsers: Set<UserID> = []
    public var rooms: [RoomID: RoomEncryption] = [:]
    public var memberships: [RoomMembership] = []
    /// Outbound sessions to discard (a `rotate` command); applied before `outboundGroupSessions`.
    public var discardedOutboundSessions: [OutboundSessionOwner] = []
    /// Outbound sessions, created or advanced; a new session id replaces the room sender's old one and its shares.
    public var outboundGroupSessions: [StoredOutboundGroupSession] = []
    /// Share records, only for to-device sends that succeeded.
    public var outboundShares: [OutboundShare] = []
    public var withheldNotices: [WithheldNotice] = []
    public var olmRecoveries: [OlmRecovery] = []
    /// Local users' cross-signing identities, created or advanced (one per user: the last wins).
    public var crossSigningIdentities: [StoredCrossSigningIdentity] = []
    /// Key requests sent (or sent again): each replaces the (room, session)'s earlier one.
    public var keyRequests: [OutgoingKeyRequest] = []
    /// Key requests answered or no longer needed: removed (only if still the same request id).
    public var settledKeyRequests: [OutgoingKeyRequest] = []
    /// Local users' invites seen (who invited them where): one per (room, user), the last wins.
    public var roomInvites: [RoomInvite] = []
    /// MSC4268 history bundle pointers received: one per (recipient user, room, sender), the last wins.
    public var historyBundles: [PendingHistoryBundle] = []
    /// Ids of history bundles imported or refused: removed.
    public var releasedHistoryBundles: Set<String> = []

    public init() {}

    public var isEmpty: Bool {
        discardedAccounts.isEmpty && accounts.isEmpty && olmSessions.isEmpty && inboundGroupSessions.isEmpty && replayEntries.isEmpty
            && parkedEvents.isEmpty && releasedEvents.isEmpty && surfacedEvents.isEmpty && pendingToDevice.isEmpty
            && releasedToDevice.isEmpty && deviceLists.isEmpty && userIdentities.isEmpty && trackedUsers.isEmpty
            && untrackedUsers.isEmpty && rooms.isEmpty && memberships.isEmpty && discardedOutboundSessions.isEmpty
            && outboundGroupSessions.isEmpty && outboundShares.isEmpty && withheldNotices.isEmpty && olmRecoveries.isEmpty
            && crossSigningIdentities.isEmpty && keyRequests.isEmpty && settledKeyRequests.isEmpty
            && roomInvites.isEmpty && historyBundles.isEmpty && releasedHistoryBundles.isEmpty
    }

    /// Appends `other`'s changes after these (later writes win where both touch one row).
    public mutating func merge(_ other: CryptoChanges) {
        discardedAccounts.formUnion(other.discardedAccounts)
        accounts += other.accounts
        olmSessions += other.olmSessions
        inboundGroupSessions += other.inboundGroupSessions
        replayEntries.merge(other.replayEntries) { first, _ in first }
        parkedEvents += other.parkedEvents
        releasedEvents.formUnion(other.releasedEvents)
        surfacedEvents.formUnion(other.surfacedEvents)
        pendingToDevice += other.pendingToDevice
        releasedToDevice.formUnion(other.releasedToDevice)
        deviceLists.merge(other.deviceLists) { _, new in new }
        userIdentities.merge(other.userIdentities) { _, new in new }
        trackedUsers.merge(other.trackedUsers) { _, new in new }
        untrackedUsers.formUnion(other.untrackedUsers)
        rooms.merge(other.rooms) { _, new in new }
        memberships += other.memberships
        discardedOutboundSessions += other.discardedOutboundSessions
        outboundGroupSessions += other.outboundGroupSessions
        outboundShares += other.outboundShares
        withheldNotices += other.withheldNotices
        olmRecoveries += other.olmRecoveries
        crossSigningIdentities += other.crossSigningIdentities
        keyRequests += other.keyRequests
        settledKeyRequests += other.settledKeyRequests
        roomInvites += other.roomInvites
        historyBundles += other.historyBundles
        releasedHistoryBundles.formUnion(other.releasedHistoryBundles)
    }
}

extension CryptoChanges {
    /// Whether these changes can add a recipient to some room's key, so that the committed
    /// ``CryptoStore/recipientsVersion()`` must grow with them (a device whose trust rises may now
    /// get a key a sharing policy withheld).
    public var changesRecipients: Bool {
        !rooms.isEmpty || !memberships.isEmpty || !deviceLists.isEmpty || !userIdentities.isEmpty || !trackedUsers.isEmpty || !untrackedUsers.isEmpty
            || !discardedOutboundSessions.isEmpty
    }
}
