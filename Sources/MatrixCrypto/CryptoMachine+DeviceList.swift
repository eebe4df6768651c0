import MatrixModels

/// What a `/keys/query` answer changed, and what was refused.
public struct KeysQueryOutcome: Sendable {
    public var changes = CryptoChanges()
    /// Devices ignored, with why: bad self-signature, or keys changed under a known device id.
    public var rejected: [(userID: UserID, deviceID: String, reason: String)] = []
    /// Cross-signing keys refused (not signed by the master key, wrong shape), with why: the user
    /// is judged without them.
    public var refusedKeys: [(userID: UserID, reason: String)] = []
    /// Users whose master key just became other than the pinned one (`identity_changed`).
    public var changedIdentities: [UserID] = []
    /// Devices of already known users whose trust level this answer changes (cross-signed after the
    /// fact, identity changed, a new device that was `unknown_device`): events delivered earlier carry
    /// the old level, so the bridge logic is told.
    public var trustChanges: [DeviceTrustChange] = []
}

/// A known device's trust level changed: what it was, what it is now.
public struct DeviceTrustChange: Sendable, Hashable {
    public var userID: UserID
    public var deviceID: DeviceID
    /// The device's curve25519 key: what `encryption.sender_key` of its events says.
    public var curve25519: String
    public var previous: DeviceTrust
    public var current: DeviceTrust

    public init(userID: UserID, deviceID: DeviceID, curve25519: String, previous: DeviceTrust, current: DeviceTrust) {
        self.userID = userID
        self.deviceID = deviceID
        self.curve25519 = curve25519
        self.previous = previous
        self.current = current
    }
}

extension CryptoMachine {
    /// Marks tracked users in `changed` outdated and forgets users in `left` (MSC3202 device lists).
    func receiveDeviceListChanges(_ lists: DeviceListChanges, scratch: Scratch, changes: inout CryptoChanges) async throws {
        let tracked = try await store.trackedUsers(lists.changed)
        for user in lists.changed where tracked[user] != nil || scratch.tracked[user] != nil {
            scratch.tracked[user] = true
            changes.trackedUsers[user] = true
        }
        for user in lists.left {
            scratch.tracked[user] = nil
            scratch.untracked.insert(user)
            changes.trackedUsers[user] = nil
            changes.untrackedUsers.insert(user)
        }
    }

    /// Members of `roomID` (joined, and invited when history visibility allows) whose device list must
    /// be queried before a room key is shared: outdated or not tracked yet.
    public func outdatedUsers(in roomID: RoomID) async throws -> [UserID] {
        let scratch = Scratch()
        let recipients = try await recipientUsers(roomID, scratch: scratch)
        let tracked = try await store.trackedUsers(recipients)
        return recipients.filter { tracked[$0] ?? true }
    }

    /// Users whose devices get a room's keys.
    func recipientUsers(_ roomID: RoomID, scratch: Scratch) async throws -> [UserID] {
        guard let settings = try await room(roomID, scratch: scratch) else { return [] }
        return try await members(roomID, scratch: scratch)
            .filter { $0.value == "join" || ($0.value == "invite" && settings.sharesWithInvited) }
            .map(\.key).sorted()
    }

    /// Reads a `/keys/query` response for `users`: each device's self-signature is verified; a device
    /// whose keys differ from those stored under its id is refused (keys never change under one id);
    /// devices no longer listed are dropped. Users the server could not answer for stay outdated.
    ///
    /// Each answered user's cross-signing keys are checked too (``CrossSigningKeys``): the master key
    /// is pinned on first sight, and a device counts as cross-signed only when the self-signing key
    /// signed the very keys accepted here. A lie there leaves the user not cross-signed; it never
    /// refuses the answer.
    public func receiveKeysQuery(_ response: JSONValue, users: [UserID]) async throws -> KeysQueryOutcome {
        var outcome = KeysQueryOutcome()
        let known = try await store.devices(userIDs: users)
        let identities = try await store.userIdentities(users)
        let anchor = try await anchorKeys()
        let answered = response["device_keys"]?.objectValue ?? [:]
        for user in users {
            guard let devices = answered[user.rawValue]?.objectValue else { continue }
            let (crossSigning, problems) = CrossSigningKeys.read(response, userID: user)
            outcome.refusedKeys += problems.map { (user, $0) }
            var signed: [DeviceID: String] = [:]
            var verified: [VerifiedDeviceKeys] = []
            for (deviceID, keys) in devices.sorted(by: { $0.key < $1.key }) {
                do throws(DecryptionFailure) {
                    let device = try VerifiedDeviceKeys(keys, expectedUser: user)
                    guard device.deviceID.rawValue == deviceID else { throw .unverifiedSender("device_keys name device \(device.deviceID)") }
                    if let previous = known[user]?.first(where: { $0.deviceID == device.deviceID }),
                        previous.curve25519 != device.curve25519 || previous.ed25519 != device.ed25519
                    {
                        outcome.rejected.append((user, deviceID, "keys changed under a known device id; keeping the old keys"))
                        verified.append(previous)
                        continue
                    }
                    verified.append(device)
                    if crossSigning?.signs(deviceKeys: keys, deviceID: device.deviceID) == true { signed[device.deviceID] = device.ed25519 }
                } catch {
                    outcome.rejected.append((user, deviceID, error.description))
                }
            }
            outcome.changes.trackedUsers[user] = false
            outcome.changes.deviceLists[user] = verified
            let previous = identities[user]
            let identity = Self.nextIdentity(previous: previous, keys: crossSigning, signedDevices: signed, userID: user, anchor: anchor)
            if identity != previous { outcome.changes.userIdentities[user] = identity }
            // A user seen for the first time has no level to change (a room join would otherwise report
            // every member's every device); a new device of a known user was `unknown_device` until now.
            for device in verified where known[user] != nil {
                let before = known[user]?.first(where: { $0.deviceID == device.deviceID })
                let was = DeviceTrust.of(before, identity: previous), now = DeviceTrust.of(device, identity: identity)
                if was != now {
                    outcome.trustChanges.append(DeviceTrustChange(
                        userID: user, deviceID: device.deviceID, curve25519: device.curve25519, previous: was, current: now))
                }
            }
            if identity?.identityChanged == true, previous?.masterKey != identity?.masterKey { outcome.changedIdentities.append(user) }
        }
        return outcome
    }
}
