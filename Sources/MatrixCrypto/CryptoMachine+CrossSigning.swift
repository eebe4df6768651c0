import MatrixModels

extension CryptoMachine {
    /// The identity to store for `userID` after a keys answer: the previous pin (or this master key,
    /// trusted on first use), the admin's vouch kept, the current keys and the devices they sign.
    ///
    /// An answer without a usable master key keeps the pin and clears the rest (every device of the
    /// user falls to `device_only`); a user never seen cross-signed gets no row.
    static func nextIdentity(
        previous: StoredUserIdentity?, keys: CrossSigningKeys?, signedDevices: [DeviceID: String], userID: UserID
    ) -> StoredUserIdentity? {
        guard let keys else {
            guard var identity = previous else { return nil }
            identity.masterKey = nil
            identity.selfSigningKey = nil
            identity.userSigningKey = nil
            identity.crossSignedDevices = [:]
            return identity
        }
        return StoredUserIdentity(
            userID: userID, pinnedMasterKey: previous?.pinnedMasterKey ?? keys.masterKey, masterKey: keys.masterKey,
            selfSigningKey: keys.selfSigningKey, userSigningKey: keys.userSigningKey,
            crossSignedDevices: keys.selfSigningKey == nil ? [:] : signedDevices, vouchedMasterKey: previous?.vouchedMasterKey)
    }

    /// Each device of `userID` with its trust level now, and the user's identity (nil: never seen
    /// cross-signed), for `whois`.
    public func deviceTrust(of userID: UserID) async throws -> (devices: [(VerifiedDeviceKeys, DeviceTrust)], identity: StoredUserIdentity?) {
        let devices = try await store.devices(userIDs: [userID])[userID] ?? []
        let identity = try await store.userIdentities([userID])[userID]
        return (devices.map { ($0, DeviceTrust.of($0, identity: identity)) }, identity)
    }

    /// The trust level, now, of the device that shared an inbound session: found by the claim's
    /// sender, curve25519 key and (when recorded) Ed25519 key. Read once per sender per step.
    func senderTrust(_ claim: StoredInboundGroupSession, scratch: Scratch) async throws -> DeviceTrust {
        let user = claim.senderUserID
        if scratch.senderDevices[user] == nil {
            scratch.senderDevices[user] = try await store.devices(userIDs: [user])[user] ?? []
        }
        if scratch.identities[user] == nil {
            scratch.identities[user] = .some(try await store.userIdentities([user])[user])
        }
        let device = scratch.senderDevices[user]?.first {
            $0.curve25519 == claim.senderKey && (claim.senderEd25519.isEmpty || $0.ed25519 == claim.senderEd25519)
        }
        return DeviceTrust.of(device, identity: scratch.identities[user] ?? nil)
    }

    /// Records an admin's vouch for `userID`'s current master key (`trust @user FINGERPRINT`),
    /// compared in constant time; trusting a changed identity re-pins it.
    ///
    /// - Returns: The changes to commit, or a refusal saying why nothing was vouched for.
    public func vouch(for userID: UserID, fingerprint: String) async throws -> Result<CryptoChanges, VouchRefusal> {
        guard var identity = try await store.userIdentities([userID])[userID], let master = identity.masterKey else {
            return .failure(.noIdentity)
        }
        let given = MasterKeyFingerprint.normalized(fingerprint)
        guard MasterKeyFingerprint.matches(given, master) else { return .failure(.mismatch) }
        identity.pinnedMasterKey = master
        identity.vouchedMasterKey = master
        var changes = CryptoChanges()
        changes.userIdentities[userID] = identity
        return .success(changes)
    }
}

/// Why `trust @user FINGERPRINT` vouched for nothing.
public enum VouchRefusal: Error, Sendable, Hashable {
    /// The user has no current cross-signing identity (unknown user, or no master key published).
    case noIdentity
    /// The fingerprint is not the user's current master key.
    case mismatch
}
