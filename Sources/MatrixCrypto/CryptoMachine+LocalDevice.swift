import MatrixModels
import Olm

extension CryptoMachine {
    /// Creates the Olm account of a new local device (after the device exists on the homeserver,
    /// MSC4190 `PUT /devices/{id}`), with a fallback key and the policy's one-time keys.
    ///
    /// - Returns: The account to persist and its first key upload, to send after the commit.
    public func createDevice(userID: UserID, deviceID: DeviceID) throws -> (changes: CryptoChanges, upload: KeysUpload) {
        try newDevice(userID: userID, deviceID: deviceID)
    }

    /// ``createDevice(userID:deviceID:)`` off the actor: a new account shares nothing, so generating
    /// and signing its keys (about 3 ms with 50 one-time keys) holds up no other call, and several
    /// devices are made at once on several cores.
    ///
    /// The account is a ``NewAccount``: written as libolm's pickle without going through libolm (whose
    /// create, key generation and pickle cost ~1 ms more per puppet, issue 12 point 4); it unpickles in
    /// libolm like any other the first time a step needs it.
    public nonisolated func newDevice(userID: UserID, deviceID: DeviceID) throws -> (changes: CryptoChanges, upload: KeysUpload) {
        let account: NewAccount
        do {
            account = try NewAccount.create(oneTimeKeys: policy.target)
        } catch {
            throw CryptoError(code: .olm, message: "creating the account of \(userID) failed: \(error)")
        }
        let upload = try KeysUpload.pending(from: account, userID: userID, deviceID: deviceID, includeDeviceKeys: true)
        var changes = CryptoChanges()
        changes.accounts = [StoredAccount(
            userID: userID, deviceID: deviceID, pickle: try pickle { try cipher.pickle { try account.snapshot.seal(key: $0) } },
            deviceKeysUploaded: false)]
        return (changes, upload)
    }

    /// Records that the homeserver accepted `upload`: its keys are published, never offered again.
    public func confirmUpload(_ upload: KeysUpload) async throws -> CryptoChanges {
        let scratch = Scratch()
        guard let (_, account) = try await loadAccount(upload.userID, into: scratch) else {
            throw CryptoError(code: .storeCorrupted, message: "no account for \(upload.userID)")
        }
        account.markKeysAsPublished()
        if upload.deviceKeys != nil { scratch.accounts[upload.userID]?.record.deviceKeysUploaded = true }
        var changes = CryptoChanges()
        try flushAccounts(scratch, into: &changes)
        return changes
    }

    /// ``confirmUpload(_:)`` and ``replenish(counts:)`` for the server's answer to that upload, on one
    /// unpickled account: one pickle, one commit.
    ///
    /// - Returns: The account to commit and the top-up uploads to send after the commit.
    public func confirmUpload(_ upload: KeysUpload, counts: [String: Int]) async throws -> (changes: CryptoChanges, uploads: [KeysUpload]) {
        if let changes = try await confirmInPickle(upload, counts: counts) { return (changes, []) }
        let scratch = Scratch()
        guard let (_, account) = try await loadAccount(upload.userID, into: scratch) else {
            throw CryptoError(code: .storeCorrupted, message: "no account for \(upload.userID)")
        }
        account.markKeysAsPublished()
        if upload.deviceKeys != nil { scratch.accounts[upload.userID]?.record.deviceKeysUploaded = true }
        let uploads = try await replenishKeys(counts: [upload.userID: [upload.deviceID: counts]], unusedFallbackTypes: [:], scratch: scratch)
        var changes = CryptoChanges()
        try flushAccounts(scratch, into: &changes)
        return (changes, uploads)
    }

    /// Tops up one-time keys and rotates used fallback keys from the transaction's MSC3202 fields.
    ///
    /// - Returns: Uploads for devices that need keys (their accounts are in `scratch`, to be saved).
    func replenishKeys(
        counts: [UserID: [DeviceID: [String: Int]]], unusedFallbackTypes: [UserID: [DeviceID: [String]]], scratch: Scratch
    ) async throws -> [KeysUpload] {
        var uploads: [KeysUpload] = []
        let users = Set(counts.keys).union(unusedFallbackTypes.keys).sorted()
        // Synapse reports every appservice user in the rooms a transaction touches: a portal room's
        // hundreds of puppets on each message in it. Only accounts with something to do are opened
        // (read, unpickled, pickled again and written back); the others cost one shared query.
        let states = try await store.accountStates(userIDs: users.filter { scratch.accounts[$0] == nil })
        for user in users {
            if scratch.accounts[user] == nil {
                guard let state = states[user] else { continue }
                let due = state.fallbackRotatedAt.map { now().timeIntervalSince($0) >= settings.fallbackKeyGracePeriod } ?? false
                guard policy.needsAccount(
                    serverCount: counts[user]?[state.deviceID], unusedFallbackTypes: unusedFallbackTypes[user]?[state.deviceID],
                    deviceKeysUploaded: state.deviceKeysUploaded, oldFallbackKeyDue: due)
                else { continue }
            }
            guard let (record, account) = try await readableAccount(user, into: scratch) else { continue }
            do {
                if let count = counts[user]?[record.deviceID] {
                    let missing = policy.keysToGenerate(serverCount: count, unpublished: account.unpublishedOneTimeKeys.count)
                    if missing > 0 { try account.generateOneTimeKeys(count: missing) }
                }
                if let types = unusedFallbackTypes[user]?[record.deviceID], policy.fallbackKeyUsed(unusedTypes: types),
                    account.unpublishedFallbackKey == nil
                {
                    try account.generateFallbackKey()
                    scratch.accounts[user]?.record.fallbackRotatedAt = now()
                } else if let rotated = record.fallbackRotatedAt, now().timeIntervalSince(rotated) >= settings.fallbackKeyGracePeriod {
                    account.forgetOldFallbackKey()
                    scratch.accounts[user]?.record.fallbackRotatedAt = nil
                }
            } catch {
                throw CryptoError(code: .olm, message: "generating keys for \(user) failed: \(error)")
            }
            let upload = try KeysUpload.pending(
                from: account, userID: user, deviceID: record.deviceID, includeDeviceKeys: !record.deviceKeysUploaded)
            if !upload.isEmpty { uploads.append(upload) }
        }
        return uploads
    }
}

extension CryptoMachine {
    /// The device of a local user (bot or puppet), if it has one.
    public func deviceID(of userID: UserID) async throws -> DeviceID? {
        try await store.account(userID: userID)?.deviceID
    }

    /// Tops up one-time keys from counts the homeserver reported outside a transaction (the answer to
    /// an upload, or a periodic check).
    ///
    /// A count read outside a transaction comes without the fallback key's state (`/keys/upload`
    /// answers counts only). With `rotateFallbackWhenExhausted`, a device found with no one-time key
    /// left is treated as if its fallback key were used: a homeserver hands out the fallback key only
    /// once the one-time keys are gone, and no transaction told us whether it did (an idle puppet's
    /// keys are claimed without one). A needless rotation costs one key; the old key stays usable for
    /// the grace period, so a session being set up with it still works.
    ///
    /// - Returns: The accounts to commit and the uploads to send after the commit.
    public func replenish(
        counts: [UserID: [DeviceID: [String: Int]]], rotateFallbackWhenExhausted: Bool = false
    ) async throws -> (changes: CryptoChanges, uploads: [KeysUpload]) {
        let scratch = Scratch()
        var fallbackUsed: [UserID: [DeviceID: [String]]] = [:]
        if rotateFallbackWhenExhausted {
            for (user, byDevice) in counts {
                for (device, count) in byDevice where (count[EncryptionAlgorithm.signedCurve25519] ?? 0) == 0 {
                    fallbackUsed[user, default: [:]][device] = []
                }
            }
        }
        let uploads = try await replenishKeys(counts: counts, unusedFallbackTypes: fallbackUsed, scratch: scratch)
        var changes = CryptoChanges()
        try flushAccounts(scratch, into: &changes)
        return (changes, uploads)
    }
}
