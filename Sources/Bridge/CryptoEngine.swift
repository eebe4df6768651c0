import Foundation
import Logging
import MatrixCrypto
import MatrixModels
import Postgres

/// Drives the sans-I/O ``CryptoMachine``: performs the requests it asks for through a
/// ``CryptoTransport`` and commits what it changed, in the order that keeps keys safe. One file per
/// verb: `+Devices` (devices, key uploads), `+CrossSigning` (local identities), `+Send`, `+Recover` (wedged sessions), `+Rooms`,
/// `+PendingSenders` (to-device payloads waiting for their sender's keys, undecryptable events),
/// `+HistoryBundles` (MSC4268 room key bundles of inviters).
///
/// One ``lock`` serializes every machine call with the commit of its changes (transactions from the
/// homeserver hold it through their whole database transaction), so two steps never work from the
/// same stored ratchet. Nothing under the lock waits on the network: every homeserver request is
/// made before or after a locked step, never inside one. Sends to one room are serialized by a
/// per-room lock so their Megolm messages leave in ratchet order.
public struct CryptoEngine: Sendable {
    public let machine: CryptoMachine
    let store: any CryptoStore
    let transport: any CryptoTransport
    /// Commits steps that deliver events outside an appservice transaction.
    let committer: any StepCommitter
    public let lock = AsyncLock()
    let roomLocks = KeyedAsyncLock<RoomID>()
    /// Serializes the creation of one user's device (it lists and deletes the user's devices first).
    let deviceLocks = KeyedAsyncLock<UserID>()
    /// Rate limit of `/keys/query` for to-device senders whose devices are unknown.
    let senderQueries: SenderQueryThrottle
    /// Sessions whose key could not be asked for lately (``CryptoEngine/requestRoomKeys(waitingLongerThan:reaskAfter:limit:now:)``).
    let unaskable = UnaskableSessions()
    /// Whether this instance owns the crypto state; no step runs while it does not. nil: always.
    let fence: InstanceFence?
    /// Local users get a cross-signing identity with their device, and what to do about one the
    /// homeserver has that the database does not; nil: cross-signing off.
    let crossSigning: (@Sendable (UserID) -> ForeignIdentityPolicy)?
    let logger: Logger

    /// - Parameters:
    ///   - senderQueryInterval: Shortest time between two `/keys/query` for one unknown to-device
    ///     sender (default 30 s).
    ///   - fence: Whether this instance owns the crypto state; nil: always (tests, tools).
    ///   - crossSigning: Per local user, what to do when the homeserver serves a cross-signing
    ///     identity the database does not hold; nil: no cross-signing.
    public init(
        machine: CryptoMachine, store: any CryptoStore, transport: any CryptoTransport, committer: (any StepCommitter)? = nil,
        senderQueryInterval: TimeInterval = 30, fence: InstanceFence? = nil,
        crossSigning: (@Sendable (UserID) -> ForeignIdentityPolicy)? = nil, logger: Logger = Logger(label: "sealbridge.crypto")
    ) {
        self.fence = fence
        self.crossSigning = crossSigning
        self.machine = machine
        self.store = store
        self.transport = transport
        self.committer = committer ?? StoreStepCommitter(store: store)
        self.senderQueries = SenderQueryThrottle(interval: senderQueryInterval)
        self.logger = logger
    }

    /// Runs a machine call and commits the changes it returns, under the lock.
    ///
    /// - Throws: `fencedOut` while this instance does not own the crypto state.
    func step<T: Sendable>(_ body: () async throws -> (CryptoChanges, T)) async throws -> T {
        try await locked {
            let (changes, value) = try await body()
            if !changes.isEmpty { try await store.save(changes) }
            return value
        }
    }

    /// Runs `body` under the lock, if this instance may write crypto state now.
    func locked<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await lock.withLock {
            if let fence { _ = try fence.check() }
            return try await body()
        }
    }
}
