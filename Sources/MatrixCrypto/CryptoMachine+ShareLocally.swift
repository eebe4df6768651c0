import MatrixModels
import Olm

/// The public identity of a local device, as its account holds it.
struct LocalIdentity: Hashable {
    var deviceID: DeviceID
    var curve25519: String
    var ed25519: String
}

extension CryptoMachine {
    /// The recipients that are devices of this daemon: a local user's current device, listed by the
    /// homeserver with exactly its account's keys (Curve25519 and Ed25519).
    ///
    /// Such a device's private keys are in this store, so it gets a room key without Olm (see
    /// ``shareLocally(_:roomKey:scratch:changes:)``). Anything else that belongs to a local user (a
    /// replaced device still listed, or keys this database does not hold under a local device id) is
    /// treated as a remote device, as before.
    func localRecipients(_ recipients: [VerifiedDeviceKeys], scratch: Scratch) async throws -> Set<ShareKey> {
        guard !recipients.isEmpty else { return [] }
        let users = Array(Set(recipients.map(\.userID))).sorted()
        let devices = try await store.localDeviceIDs(userIDs: users)
        guard !devices.isEmpty else { return [] }
        var local: Set<ShareKey> = []
        for device in recipients {
            guard devices[device.userID] == device.deviceID, let identity = try await localIdentity(device.userID, deviceID: device.deviceID, scratch: scratch),
                identity.curve25519 == device.curve25519, identity.ed25519 == device.ed25519, !device.dehydrated
            else { continue }
            local.insert(ShareKey(userID: device.userID, deviceID: device.deviceID, curve25519: device.curve25519))
        }
        return local
    }

    /// A local device's identity keys: from the cache while the user's device is the same, else
    /// from its account. nil when the account is gone or no longer has that device, or its pickle
    /// does not open (that device is then treated as a remote one).
    func localIdentity(_ userID: UserID, deviceID: DeviceID, scratch: Scratch) async throws -> LocalIdentity? {
        if let cached = localIdentities.get(userID), cached.deviceID == deviceID { return cached }
        let account: Account
        if let loaded = scratch.accounts[userID] {
            guard loaded.record.deviceID == deviceID else { return nil }
            account = loaded.account
        } else {
            guard let record = try await store.account(userID: userID), record.deviceID == deviceID,
                let unpickled = try? cipher.unpickle(record.pickle, { try Account.unpickle($0, key: $1) })
            else { return nil }
            account = unpickled
        }
        let keys = account.identityKeys
        let identity = LocalIdentity(deviceID: deviceID, curve25519: keys.curve25519, ed25519: keys.ed25519)
        localIdentities.put(userID, identity)
        return identity
    }

    /// Gives the room key to `devices`, recipients held by this daemon, without Olm.
    ///
    /// What an `m.room_key` from the sender would have left after Olm decryption is stored directly:
    /// the inbound session from the current index, claimed by the sender's user, Curve25519 and
    /// Ed25519 keys (``acceptRoomKey(_:senderKey:sender:senderEd25519:scratch:changes:)``, so an
    /// earlier copy of the same owner is kept). Inbound sessions are shared by every local device,
    /// so one copy serves them all; each device gets its share record at that index in the same
    /// commit, as a to-device send that succeeded would have written it.
    ///
    /// The copy is stored even when no other local device is in the room: the homeserver pushes the
    /// sender's own events back to us, and without it they would wait as undecryptable until
    /// expiry (and ask keys of ourselves). mautrix-go and matrix-rust-sdk keep the same copy.
    func shareLocally(_ devices: [VerifiedDeviceKeys], plan: SharePlan, roomKey: JSONValue, scratch: Scratch, changes: inout CryptoChanges) async throws {
        let identity = plan.account.identityKeys
        _ = try await acceptRoomKey(
            roomKey, senderKey: identity.curve25519, sender: plan.local.userID, senderEd25519: identity.ed25519, scratch: scratch,
            changes: &changes)
        let index = plan.session.messageIndex
        changes.outboundShares += devices.map { device in
            OutboundShare(
                roomID: plan.record.roomID, senderUserID: plan.local.userID, sessionID: plan.record.sessionID, userID: device.userID,
                deviceID: device.deviceID, curve25519: device.curve25519, messageIndex: index, withheldCode: nil)
        }
    }
}

extension ShareKey {
    init(_ device: VerifiedDeviceKeys) {
        self.init(userID: device.userID, deviceID: device.deviceID, curve25519: device.curve25519)
    }
}
