import HomeserverClient
import Logging
import MatrixCrypto
import MatrixModels
import Store

/// What the bridge logic asks of Sealbridge through the bridge API: act as the bot or a puppet in
/// rooms, encrypting where the room is encrypted.
public struct BridgeActions: Sendable {
    let engine: CryptoEngine
    let homeserver: HomeserverClient
    let store: any CryptoStore
    let sends: any BridgeSendLedger
    public let users: LocalUsers
    let rooms: RoomSync
    let plainRooms = RoomSet()
    let logger: Logger

    /// Every local user's device has this id: one device per user, found again after a restart.
    public static let deviceID = try! DeviceID("SEALBRIDGE")

    public init(
        engine: CryptoEngine, homeserver: HomeserverClient, store: any CryptoStore, sends: any BridgeSendLedger, users: LocalUsers,
        logger: Logger = Logger(label: "sealbridge.bridge")
    ) {
        self.engine = engine
        self.homeserver = homeserver
        self.store = store
        self.sends = sends
        self.users = users
        self.rooms = RoomSync(engine: engine, homeserver: homeserver)
        self.logger = logger
    }

    /// Refuses users Sealbridge does not own.
    public func requireLocal(_ user: UserID) throws(BridgeError) {
        guard users.isLocal(user) else { throw BridgeError(.notLocalUser, "\(user) is neither the bot nor in the puppet namespace") }
    }

    /// Registers the puppet (idempotent), sets its display name when given, and gives it a device
    /// with published keys.
    @discardableResult
    public func ensurePuppet(_ user: UserID, displayName: String?) async throws -> DeviceID {
        guard users.isPuppet(user) else { throw BridgeError(.notLocalUser, "\(user) is not in the puppet namespace") }
        try await homeserver.registerUser(localpart: user.localpart)
        if let displayName { try await homeserver.setDisplayName(displayName, for: user) }
        return try await engine.ensureDevice(user, deviceID: Self.deviceID, displayName: "Sealbridge")
    }

    /// Sends an event as `sender`, encrypted if the room is. Idempotent on (`sender`, `txnID`): a
    /// repeated call returns the first event id without sending again.
    ///
    /// The (sender, txn id) is claimed atomically before anything is sent, so a retry that arrives
    /// while the first attempt is still sending gets ``BridgeError/Code/sendInProgress`` instead of
    /// sending twice. A claim left by a crashed attempt is taken over after ``staleClaim``; the
    /// homeserver's own txn-id deduplication (same `sb-` txn id) covers a send that did leave.
    public func send(roomID: RoomID, type: String, txnID: String, content: JSONValue, as sender: UserID) async throws -> EventID {
        try requireLocal(sender)
        let key = BridgeSendKey(sender: sender, txnID: txnID)
        if try await !sends.claim(key, staleAfter: Self.staleClaim) {
            if let sent = try await sends.eventID(of: key) { return sent }
            throw BridgeError(.sendInProgress, "a send with txn id \(txnID) as \(sender) is in progress; retry later")
        }
        let eventID: EventID
        do {
            if try await isEncrypted(roomID, as: sender) {
                try await engine.ensureDevice(sender, deviceID: Self.deviceID, displayName: "Sealbridge")
                eventID = try await engine.send(roomID: roomID, sender: sender, type: type, content: content, txnID: "sb-" + txnID)
            } else {
                eventID = try await homeserver.sendRoomEvent(
                    roomID, eventType: type, txnID: "sb-" + txnID, content: content, as: HomeserverClient.Identity(userID: sender))
            }
        } catch {
            // Nothing was sent (or the homeserver deduplicates the retry): free the claim.
            try? await sends.release(key)
            throw error
        }
        try await sends.finish(key, eventID: eventID)
        return eventID
    }

    /// How long a claim without an event id blocks a retry: longer than any send takes (room-key
    /// sharing to a large room included), short enough that a crash mid-send does not block forever.
    public static let staleClaim = Duration.seconds(300)

    /// Whether `roomID` is encrypted, failing closed: a room the machine does not know yet (a puppet
    /// that joined a moment ago, before its room state was read) is read from the homeserver first,
    /// so nothing meant for an encrypted room ever leaves in plaintext. Rooms found unencrypted are
    /// remembered; if one turns encryption on later, its `m.room.encryption` event reaches the machine
    /// in a transaction and the store answers first.
    public func isEncrypted(_ roomID: RoomID, as user: UserID) async throws -> Bool {
        if try await store.room(roomID) != nil { return true }
        if await plainRooms.contains(roomID) { return false }
        if try await rooms.refresh(roomID, as: user) { return true }
        await plainRooms.insert(roomID)
        return false
    }

    /// Joins as `user` and reads the room into the machine; a puppet meeting an encrypted room gets
    /// its device now (lazily, so puppets that never see encryption cost nothing).
    public func join(_ roomID: RoomID, as user: UserID) async throws {
        try requireLocal(user)
        if users.isPuppet(user) { try await homeserver.registerUser(localpart: user.localpart) }
        try await homeserver.joinRoom(roomID, as: user)
        if try await rooms.refresh(roomID, as: user), users.isPuppet(user) {
            try await engine.ensureDevice(user, deviceID: Self.deviceID, displayName: "Sealbridge")
        }
    }

    public func leave(_ roomID: RoomID, as user: UserID) async throws {
        try requireLocal(user)
        try await homeserver.leaveRoom(roomID, as: user)
    }

    /// Creates a room as `creator` (encrypted unless `encrypted` is false), inviting `invite`.
    public func createRoom(as creator: UserID, name: String?, invite: [UserID], encrypted: Bool, isDirect: Bool) async throws -> RoomID {
        try requireLocal(creator)
        if users.isPuppet(creator) { try await ensurePuppet(creator, displayName: nil) }
        var body: [String: JSONValue] = ["preset": "private_chat", "invite": .array(invite.map { .string($0.rawValue) })]
        if let name { body["name"] = .string(name) }
        if isDirect { body["is_direct"] = true }
        if encrypted {
            body["initial_state"] = [["type": "m.room.encryption", "state_key": "", "content": ["algorithm": .string(EncryptionAlgorithm.megolm)]]]
        }
        let roomID = try await homeserver.createRoom(.object(body), as: creator)
        try await rooms.refresh(roomID, as: creator)
        return roomID
    }
}

/// Rooms seen without encryption, so sends there do not re-read the room state each time.
actor RoomSet {
    private var rooms: Set<RoomID> = []
    func contains(_ room: RoomID) -> Bool { rooms.contains(room) }
    func insert(_ room: RoomID) { rooms.insert(room) }
}
