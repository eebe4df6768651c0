import Foundation
import MatrixModels
import Olm

/// The crypto engine's front door: owns the Olm state of every local device (bot and puppets) and is
/// driven by inputs, returning changes to persist and requests to send. It performs no I/O itself
/// beyond reading its ``CryptoStore``.
///
/// Mutable Olm objects (accounts, Olm sessions, outbound Megolm sessions) live only inside one call:
/// they are unpickled from the store, used, and their new pickles returned in ``CryptoChanges``; so a
/// failed commit leaves nothing stale in memory. Callers serialize a call and the commit of its changes
/// (one lock in the pipeline), so each session id has one live object at a time. Inbound Megolm
/// sessions, whose use changes nothing that matters, stay in a bounded cache between calls.
public actor CryptoMachine {
    let store: any CryptoStore
    let cipher: StoreCipher
    let policy: OneTimeKeyPolicy
    let settings: CryptoSettings
    let now: @Sendable () -> Date
    var inboundCache: InboundSessionCache
    /// Outbound sessions found shared with every recipient, and at which committed
    /// ``CryptoStore/recipientsVersion()``: until something that could add a recipient is committed,
    /// a send need not re-read members and shares.
    var fullyShared: [OutboundSessionOwner: (sessionID: String, version: Int64)] = [:]
    /// Local devices' public identity (device id, curve25519): fixed for an account's life.
    var identities: [UserID: (deviceID: DeviceID, curve25519: String)] = [:]
    /// When each (requesting device, session) was last answered a key: at most one answer per
    /// ``CryptoSettings/keyRequestAnswerInterval`` (see ``answer(_:)``).
    var answeredKeyRequests: [KeyRequestSlot: Date] = [:]
    /// Per requesting user, the minute's window of key requests looked at: a user who floods requests
    /// costs at most ``CryptoSettings/keyRequestsPerUserPerMinute`` store reads a minute.
    var keyRequestAttempts = MinuteWindowLimiter<UserID>()
    /// Per remote device, the minute's window of key requests sent to it (see ``planKeyRequest(for:)``).
    var requestedFromDevice = MinuteWindowLimiter<DeviceRef>()
    /// Local devices' identity keys, read once from their account pickles, to recognise them among
    /// a room's recipients (``localRecipients(_:scratch:)``); bounded, re-read on a miss.
    var localIdentities = LRUCache<UserID, LocalIdentity>(capacity: 10_000)
    /// Batches of work (Megolm decryption, Olm session creation) done off the actor so far (for tests).
    public internal(set) var parallelBatches = 0
    /// MSC4147 `sender_device_keys` self-signatures checked so far (for tests: once per step and keys).
    public internal(set) var senderDeviceKeysChecks = 0
    /// Transaction steps ``process(_:parked:)`` finished so far (for tests: a step ran before its
    /// transaction's claim was answered).
    public internal(set) var processedSteps = 0

    public init(
        store: any CryptoStore, cipher: StoreCipher, policy: OneTimeKeyPolicy = OneTimeKeyPolicy(),
        settings: CryptoSettings = CryptoSettings(), now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.store = store
        self.cipher = cipher
        self.policy = policy
        self.settings = settings
        self.now = now
        self.inboundCache = InboundSessionCache(capacity: settings.inboundSessionCacheSize)
    }

    /// State loaded during one call, so each object is unpickled once and saved once.
    final class Scratch {
        var accounts: [UserID: (record: StoredAccount, account: Account)] = [:]
        /// The records of `accounts` as read, to write back only what changed.
        var loadedAccounts: [UserID: StoredAccount] = [:]
        /// Account records read ahead for the step's to-device recipients (nil inside: no account).
        var storedAccounts: [UserID: StoredAccount?] = [:]
        /// Olm sessions read ahead for the step's to-device messages, per (recipient, sender key).
        var storedOlmSessions: [OlmSessionsKey: [StoredOlmSession]] = [:]
        /// To-device recipients' records and public keys, read without unpickling their accounts.
        var recipients: [UserID: (record: StoredAccount, identity: IdentityKeys)] = [:]
        /// Claims on inbound sessions read or accepted in the step, per (room, session id).
        var claims: [GroupSessionRef: [StoredInboundGroupSession]] = [:]
        /// Unpickled inbound sessions, per claim.
        var groupSessions: [InboundSessionKey: InboundGroupSession] = [:]
        /// Replay entries for every (session, index) looked up in the step, plus the step's own.
        var ledger = ReplayLedger()
        var ledgerKeys: Set<ReplayLedger.Key> = []
        /// Room state written earlier in the same step (read before the store).
        var rooms: [RoomID: RoomEncryption] = [:]
        var members: [RoomID: [UserID: String]] = [:]
        var tracked: [UserID: Bool] = [:]
        var untracked: Set<UserID> = []
        /// Room state as stored, read in the step (nil inside: none stored), so each is read once.
        var storedRooms: [RoomID: RoomEncryption?] = [:]
        var storedPresentRooms: [UserID: [RoomID]] = [:]
        /// Users whose tracking was read from the store in the step (the tracked ones are in `tracked`).
        var trackedRead: Set<UserID> = []
        /// Whether users have an account (a device) here, as read in the step.
        var localAccounts: [UserID: Bool] = [:]
        /// Withheld notices received earlier in the step.
        var withheld: [GroupSessionRef: [WithheldNotice]] = [:]
        /// Withheld notices read from the store in the step, per session id (one read each).
        var storedWithheld: [GroupSessionRef: [WithheldNotice]] = [:]
        /// Olm sessions per (local user, remote curve25519 key), most recently used first.
        var olmSessions: [OlmSessionsKey: [(record: StoredOlmSession, session: Session)]] = [:]
        /// Room keys another owner already claimed, found in the step (logged and counted).
        var conflicts: [RoomKeyConflict] = []
        /// Device lists of to-device senders read in this step (one read per sender, not per message).
        var senderDevices: [UserID: [VerifiedDeviceKeys]] = [:]
        /// MSC4147 `sender_device_keys` whose self-signature verified in this step, by sender and the
        /// exact JSON: a device sharing a room key with a portal room's puppets sends the same keys in
        /// each of a hundred messages, and each check is an Ed25519 verification (~100 µs).
        var verifiedSenderDeviceKeys: [SenderDeviceKeysRef: VerifiedDeviceKeys] = [:]
        /// Cross-signing identities of room event senders read in this step (nil inside: none stored).
        var identities: [UserID: StoredUserIdentity?] = [:]
        /// The store found unavailable where only one message's failure can be thrown (typed throws):
        /// the step rethrows it after that message, so the transaction is held and journaled with its
        /// to-device part instead of committing the message as failed (a room key in it would be lost).
        var storeFailure: (any Error)?
        /// Local users whose account pickle did not open in this step.
        var unreadableAccounts: Set<UserID> = []
        /// libolm's answers (and parsed plaintexts) for ciphertexts decrypted ahead, in parallel, by event id.
        var predecrypted: [String: MegolmDecryption.Predecrypted] = [:]
        /// What the parallel pass already resolved for the step's own events, by position in them:
        /// the serial pass would work out the same ids, envelope, claim and session again.
        var prepared: [Int: PreparedRoomEvent] = [:]
    }

    /// Records that `session` (new or advanced) is now the most recently used with its remote key,
    /// and returns its record to persist.
    func touchOlmSession(_ session: Session, local: StoredAccount, remoteKey: String, scratch: Scratch) throws -> StoredOlmSession {
        recordOlmSession(session, pickle: try pickle { try cipher.pickle { try session.pickle(key: $0) } }, local: local, remoteKey: remoteKey, scratch: scratch)
    }

    /// ``touchOlmSession(_:local:remoteKey:scratch:)`` with the pickle already made (off the actor).
    func recordOlmSession(_ session: Session, pickle: String, local: StoredAccount, remoteKey: String, scratch: Scratch) -> StoredOlmSession {
        let record = StoredOlmSession(
            localUserID: local.userID, localDeviceID: local.deviceID, senderKey: remoteKey, sessionID: session.sessionID,
            pickle: pickle, lastUsed: now())
        let key = OlmSessionsKey(localUserID: local.userID, remoteKey: remoteKey)
        var list = scratch.olmSessions[key] ?? []
        list.removeAll { $0.record.sessionID == record.sessionID }
        list.insert((record, session), at: 0)
        scratch.olmSessions[key] = list
        return record
    }

    func loadAccount(_ userID: UserID, into scratch: Scratch) async throws -> (record: StoredAccount, account: Account)? {
        if let loaded = scratch.accounts[userID] { return loaded }
        let read: StoredAccount?
        if let ahead = scratch.storedAccounts[userID] { read = ahead } else { read = try await store.account(userID: userID) }
        guard let record = read else { return nil }
        let account: Account
        do {
            account = try cipher.unpickle(record.pickle) { try Account.unpickle($0, key: $1) }
        } catch {
            throw CryptoError(code: .storeCorrupted, message: "account of \(userID) does not unpickle: \(error)")
        }
        scratch.accounts[userID] = (record, account)
        scratch.loadedAccounts[userID] = record
        return (record, account)
    }

    /// ``loadAccount(_:into:)`` for the per-entry paths of a transaction: an account whose pickle does
    /// not open fails only the entries that need it (reported in ``Scratch/unreadableAccounts``), not
    /// the transaction. Store errors (the database) still throw.
    func readableAccount(_ userID: UserID, into scratch: Scratch) async throws -> (record: StoredAccount, account: Account)? {
        do {
            return try await loadAccount(userID, into: scratch)
        } catch let error as CryptoError where error.code == .storeCorrupted {
            scratch.unreadableAccounts.insert(userID)
            return nil
        }
    }

    /// Pickles every account the step changed into `changes`. An account only read (a to-device message
    /// on an existing session, a signature, an identity key) is left as stored: a 5 KB pickle made,
    /// sealed and written back for nothing, a hundred times in a transaction of room keys to puppets.
    func flushAccounts(_ scratch: Scratch, into changes: inout CryptoChanges) throws {
        for (user, entry) in scratch.accounts.sorted(by: { $0.key < $1.key }) {
            if !entry.account.hasChanges, let loaded = scratch.loadedAccounts[user], loaded == entry.record { continue }
            var record = entry.record
            record.pickle = try pickle { try cipher.pickle { try entry.account.pickle(key: $0) } }
            changes.accounts.append(record)
        }
    }

    /// Whether `error` says the store is away for now (``StoreAvailabilityError``): the step must fail.
    nonisolated static func storeUnavailable(_ error: any Error) -> Bool {
        (error as? any StoreAvailabilityError)?.isStoreUnavailable == true
    }

    nonisolated func pickle(_ body: () throws -> String) throws -> String {
        do {
            return try body()
        } catch {
            throw CryptoError(code: .olm, message: "pickling failed: \(error)")
        }
    }
}
