import Logging
import MatrixCrypto
import MatrixModels

/// Drives the sans-I/O ``CryptoMachine``: performs the requests it asks for through a
/// ``CryptoTransport`` and commits what it changed, in the order that keeps keys safe.
///
/// One ``lock`` serializes every machine call with the commit of its changes (transactions from the
/// homeserver hold it through their whole database transaction), so two steps never work from the
/// same stored ratchet. Network calls happen outside the lock; sends to one room are serialized by a
/// per-room lock so their Megolm messages leave in ratchet order.
public struct CryptoEngine: Sendable {
    public let machine: CryptoMachine
    let store: any CryptoStore
    let transport: any CryptoTransport
    public let lock = AsyncLock()
    let roomLocks = KeyedAsyncLock<RoomID>()
    let logger: Logger

    public init(machine: CryptoMachine, store: any CryptoStore, transport: any CryptoTransport, logger: Logger = Logger(label: "sealbridge.crypto")) {
        self.machine = machine
        self.store = store
        self.transport = transport
        self.logger = logger
    }

    /// Runs a machine call and commits the changes it returns, under the lock.
    func step<T: Sendable>(_ body: () async throws -> (CryptoChanges, T)) async throws -> T {
        try await lock.withLock {
            let (changes, value) = try await body()
            if !changes.isEmpty {
                try await store.save(changes)
                await machine.committed(changes)
            }
            return value
        }
    }

    /// Makes sure `userID` has a device with published keys: creates it on the homeserver (MSC4190),
    /// generates and commits its account, then uploads its keys and records them as published.
    ///
    /// - Returns: The device id (existing or new).
    @discardableResult
    public func ensureDevice(_ userID: UserID, deviceID: DeviceID, displayName: String) async throws -> DeviceID {
        if let existing = try await machine.deviceID(of: userID) { return existing }
        try await transport.provisionDevice(deviceID, for: userID, displayName: displayName)
        let upload = try await step { () -> (CryptoChanges, KeysUpload?) in
            // Another caller may have created it while we talked to the homeserver.
            if try await machine.deviceID(of: userID) != nil { return (CryptoChanges(), nil) }
            let (changes, upload) = try await machine.createDevice(userID: userID, deviceID: deviceID)
            return (changes, upload)
        }
        if let upload { try await self.upload(upload) }
        return try await machine.deviceID(of: userID) ?? deviceID
    }

    /// Sends a key upload the machine prepared (already committed), then records it as published and
    /// tops up again if the server's count is still short.
    public func upload(_ upload: KeysUpload) async throws {
        var pending = [upload]
        var rounds = 0
        while let next = pending.first, rounds < 3 {
            pending.removeFirst()
            rounds += 1
            let counts = try await transport.uploadKeys(next.body, as: next.userID, device: next.deviceID)
            let more = try await step { () -> (CryptoChanges, [KeysUpload]) in
                var changes = try await machine.confirmUpload(next)
                try await store.save(changes)
                await machine.committed(changes)
                changes = CryptoChanges()
                let (topUp, uploads) = try await machine.replenish(counts: [next.userID: [next.deviceID: counts]])
                changes.merge(topUp)
                return (changes, uploads)
            }
            pending += more
        }
    }

    /// Encrypts and sends a room event as `sender`'s device, sharing the room key first with every
    /// device that lacks it.
    ///
    /// - Parameter txnID: The client-side txn id of the send; a retry with the same id is deduplicated
    ///   by the homeserver.
    /// - Returns: The event id.
    public func send(roomID: RoomID, sender: UserID, type: String, content: JSONValue, txnID: String) async throws -> EventID {
        guard let device = try await machine.deviceID(of: sender) else {
            throw CryptoError(code: .noLocalDevice, message: "\(sender) has no device")
        }
        return try await roomLocks.withLock(roomID) {
            var queried = Set<UserID>(), unreachable = Set<DeviceRef>()
            for _ in 0..<8 {
                let next = try await step { () -> (CryptoChanges, RoomEncryptionStep) in
                    let next = try await machine.encrypt(
                        roomID: roomID, sender: sender, type: type, content: content, queried: queried, unreachable: unreachable)
                    switch next {
                    case .encrypted(let event): return (event.changes, next)
                    case .shareRoomKey(let share): return (share.changes, next)
                    default: return (CryptoChanges(), next)
                    }
                }
                switch next {
                case .queryDevices(let users):
                    queried.formUnion(users)
                    let response = try await transport.queryKeys(users, as: sender)
                    try await step { () -> (CryptoChanges, Void) in
                        let outcome = try await machine.receiveKeysQuery(response, users: users)
                        for rejected in outcome.rejected {
                            logger.warning("ignored a device", metadata: [
                                "user": "\(rejected.userID)", "device": "\(rejected.deviceID)", "reason": "\(rejected.reason)",
                            ])
                        }
                        return (outcome.changes, ())
                    }
                case .claimOneTimeKeys(let devices):
                    let response = try await transport.claimKeys(CryptoMachine.keysClaimBody(devices), as: sender, device: device)
                    let failed = try await step { () -> (CryptoChanges, Set<DeviceRef>) in
                        let outcome = try await machine.receiveKeysClaim(response, requested: devices, sender: sender)
                        return (outcome.changes, outcome.failed)
                    }
                    if !failed.isEmpty {
                        logger.notice("no Olm session for some devices; they get m.no_olm", metadata: ["devices": "\(failed.count)"])
                    }
                    unreachable.formUnion(failed)
                case .shareRoomKey(let share):
                    // Each batch counts as shared only once the homeserver took it.
                    for batch in share.batches {
                        try await transport.sendToDevice(batch.request, as: sender, device: device)
                        try await step { () -> (CryptoChanges, Void) in (await machine.confirmShare(batch), ()) }
                    }
                case .encrypted(let event):
                    return try await transport.sendRoomEvent(
                        roomID, eventType: "m.room.encrypted", txnID: txnID, content: event.content, as: sender, device: device)
                }
            }
            throw CryptoError(code: .olm, message: "sharing the room key in \(roomID) did not settle after 8 rounds")
        }
    }

    /// Replaces a wedged Olm session: claims a fresh one-time key of the remote device, creates a new
    /// session and sends `m.dummy` through it, so the peer switches to the new session.
    public func recover(_ wedged: WedgedSession) async throws {
        var target = try await machine.device(userID: wedged.remoteUserID, curve25519: wedged.remoteKey)
        if target == nil {
            let response = try await transport.queryKeys([wedged.remoteUserID], as: wedged.localUserID)
            try await step { () -> (CryptoChanges, Void) in
                (try await machine.receiveKeysQuery(response, users: [wedged.remoteUserID]).changes, ())
            }
            target = try await machine.device(userID: wedged.remoteUserID, curve25519: wedged.remoteKey)
        }
        guard let target else {
            throw CryptoError(code: .unknownDevice, message: "no device of \(wedged.remoteUserID) has the wedged session's key")
        }
        let response = try await transport.claimKeys(CryptoMachine.keysClaimBody([target]), as: wedged.localUserID, device: wedged.localDeviceID)
        let failed = try await step { () -> (CryptoChanges, Set<DeviceRef>) in
            let outcome = try await machine.receiveKeysClaim(response, requested: [target], sender: wedged.localUserID)
            return (outcome.changes, outcome.failed)
        }
        guard failed.isEmpty else { throw CryptoError(code: .unknownDevice, message: "no one-time key for \(target)") }
        let request = try await step { () -> (CryptoChanges, ToDeviceRequest) in
            try await machine.encryptToDevice(sender: wedged.localUserID, to: target, type: "m.dummy", content: [:])
        }
        try await transport.sendToDevice(request, as: wedged.localUserID, device: wedged.localDeviceID)
        logger.notice("replaced a wedged Olm session", metadata: ["local_user": "\(wedged.localUserID)", "remote_user": "\(wedged.remoteUserID)"])
    }

    /// Queries the device lists of to-device senders whose keys are unknown, and commits them (on their
    /// own: device lists do not belong to the transaction), so their room keys can be verified.
    ///
    /// Runs under the lock the caller holds. A failed query is logged; the messages are then refused
    /// as from an unverified sender, as they would be without it.
    public func queryUnknownSenders(of transaction: AppserviceTransaction, logger: Logger) async {
        do {
            let users = try await machine.unknownSenders(transaction)
            guard !users.isEmpty, let requester = transaction.toDevice.first?.toUserID else { return }
            let response = try await transport.queryKeys(users, as: requester)
            let outcome = try await machine.receiveKeysQuery(response, users: users)
            try await store.save(outcome.changes)
            await machine.committed(outcome.changes)
        } catch {
            logger.warning("could not query the devices of to-device senders", metadata: ["error": "\(error)"])
        }
    }

    /// Commits room state fetched from the homeserver (after a join: `/state` and `/members`).
    public func updateRoom(_ roomID: RoomID, encryption: RoomEncryption?, members: [UserID: String]) async throws {
        try await step { () -> (CryptoChanges, Void) in (try await machine.updateRoom(roomID, encryption: encryption, members: members), ()) }
    }

    /// Queries `users`' device lists now (after joining a room) and commits them.
    public func refreshDevices(_ users: [UserID], as requester: UserID) async throws {
        guard !users.isEmpty else { return }
        let response = try await transport.queryKeys(users, as: requester)
        try await step { () -> (CryptoChanges, Void) in (try await machine.receiveKeysQuery(response, users: users).changes, ()) }
    }

    /// Discards the outbound session of `sender` in `roomID` (the `rotate` command).
    public func rotate(roomID: RoomID, sender: UserID) async throws {
        try await step { () -> (CryptoChanges, Void) in (await machine.discardOutboundSession(roomID: roomID, sender: sender), ()) }
    }
}
