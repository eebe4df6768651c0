import MatrixModels
import Olm

extension CryptoMachine {
    /// The identity to store for `userID` after a keys answer: the previous pin (or this master key,
    /// trusted on first use), the admin's vouch kept, the current keys and the devices they sign.
    ///
    /// An answer without a usable master key keeps the pin and clears the rest (every device of the
    /// user falls to `device_only`); a user never seen cross-signed gets no row.
    ///
    /// - Parameter anchor: The trust anchor (the bot) and its current user-signing key: a valid
    ///   signature of it on the master key makes the identity verified, and stays recorded (answers
    ///   given to another requester do not show it) until the master key changes.
    static func nextIdentity(
        previous: StoredUserIdentity?, keys: CrossSigningKeys?, signedDevices: [DeviceID: String], userID: UserID,
        anchor: (userID: UserID, userSigningKey: String)? = nil
    ) -> StoredUserIdentity? {
        guard let keys else {
            guard var identity = previous else { return nil }
            identity.masterKey = nil
            identity.selfSigningKey = nil
            identity.userSigningKey = nil
            identity.crossSignedDevices = [:]
            identity.signedByUserSigningKey = nil
            return identity
        }
        var signedBy = previous?.masterKey == keys.masterKey ? previous?.signedByUserSigningKey : nil
        if let anchor, keys.masterIsSigned(by: anchor.userID, userSigningKey: anchor.userSigningKey) { signedBy = anchor.userSigningKey }
        if let recorded = signedBy, let anchor, recorded != anchor.userSigningKey { signedBy = nil }
        return StoredUserIdentity(
            userID: userID, pinnedMasterKey: previous?.pinnedMasterKey ?? keys.masterKey, masterKey: keys.masterKey,
            selfSigningKey: keys.selfSigningKey, userSigningKey: keys.userSigningKey,
            crossSignedDevices: keys.selfSigningKey == nil ? [:] : signedDevices, vouchedMasterKey: previous?.vouchedMasterKey,
            signedByUserSigningKey: signedBy)
    }

    /// Each device of `userID` with its trust level now, and the user's identity (nil: never seen
    /// cross-signed), for `whois`.
    public func deviceTrust(of userID: UserID) async throws -> (devices: [(VerifiedDeviceKeys, DeviceTrust)], identity: StoredUserIdentity?) {
        let devices = try await store.devices(userIDs: [userID])[userID] ?? []
        let identity = try await store.userIdentities([userID])[userID]
        return (devices.map { ($0, DeviceTrust.of($0, identity: identity)) }, identity)
    }

    /// Reads, before a step decrypts, the replay entries its ciphertexts can hit and the device lists
    /// and identities of the senders of its encrypted events, whatever this step has not read yet:
    /// three queries for a whole transaction (not per sender or event), sent at once — each on its
    /// own pooled connection — so the step waits for one round trip instead of three.
    ///
    /// `meanwhile` (the parallel libolm decryption, which needs neither) runs while the reads are in
    /// flight, so their round trip costs the transaction nothing.
    func prefetch(
        replayKeys: Set<ReplayLedger.Key>, sendersOf events: [JSONValue], scratch: Scratch, meanwhile: () async throws -> Void = {}
    ) async throws {
        let senders = Set(events.compactMap { event -> UserID? in
            guard event["type"]?.stringValue == "m.room.encrypted", event["state_key"] == nil else { return nil }
            return event["sender"]?.stringValue.flatMap { try? UserID($0) }
        })
        let missing = senders.filter { scratch.senderDevices[$0] == nil || scratch.identities[$0] == nil }.sorted()
        let missingReplay = replayKeys.subtracting(scratch.ledgerKeys)
        let store = store
        async let replayRead = missingReplay.isEmpty ? [:] : store.replayEntries(missingReplay)
        async let devicesRead = missing.isEmpty ? [:] : store.devices(userIDs: missing)
        async let identitiesRead = missing.isEmpty ? [:] : store.userIdentities(missing)
        try await meanwhile()
        let (replay, devices, identities) = try await (replayRead, devicesRead, identitiesRead)
        scratch.ledgerKeys.formUnion(missingReplay)
        scratch.ledger.merge(stored: replay)
        for user in missing {
            if scratch.senderDevices[user] == nil { scratch.senderDevices[user] = devices[user] ?? [] }
            if scratch.identities[user] == nil { scratch.identities[user] = .some(identities[user]) }
        }
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
    /// When the trust anchor (the bot) has a cross-signing identity, its user-signing key also signs
    /// the master key: the result carries that `/keys/signatures/upload` body, to send after the commit.
    ///
    /// - Returns: The vouch to commit, or a refusal saying why nothing was vouched for.
    public func vouch(for userID: UserID, fingerprint: String) async throws -> Result<Vouch, VouchRefusal> {
        guard var identity = try await store.userIdentities([userID])[userID], let master = identity.masterKey else {
            return .failure(.noIdentity)
        }
        guard MasterKeyFingerprint.matches(fingerprint, master) else { return .failure(.mismatch) }
        identity.pinnedMasterKey = master
        identity.vouchedMasterKey = master
        var vouch = Vouch(identity: identity)
        vouch.changes.userIdentities[userID] = identity
        vouch.signatureUpload = try await anchorSignature(of: userID, masterKey: master)
        return .success(vouch)
    }

    /// The local user who vouches for others (``CryptoSettings/trustAnchor``).
    public var trustAnchor: UserID? { settings.trustAnchor }

    /// The trust anchor's current user-signing identity, if it has one.
    func anchorKeys() async throws -> (userID: UserID, userSigningKey: String)? {
        guard let anchor = settings.trustAnchor, let identity = try await store.crossSigningIdentity(userID: anchor) else { return nil }
        return (anchor, identity.keys.userSigning)
    }

    /// The `/keys/signatures/upload` body in which the trust anchor's (the bot's) user-signing key
    /// signs `userID`'s master key; nil when the anchor has no cross-signing identity (yet).
    func anchorSignature(of userID: UserID, masterKey: String) async throws -> JSONValue? {
        guard let anchor = settings.trustAnchor, var seeds = try await crossSigningSeeds(of: anchor) else { return nil }
        defer { seeds.wipe() }
        do {
            let signer = try PkSigning(seed: seeds.userSigning)
            let signed = try SignedJSON.sign(
                CrossSigningKeysJSON.key(userID: userID, usage: "master", publicKey: masterKey), userID: anchor,
                keyID: "ed25519:\(signer.publicKey)", with: signer)
            return [userID.rawValue: [masterKey: signed]]
        } catch {
            throw CryptoError(code: .olm, message: "signing the master key of \(userID) failed: \(error)")
        }
    }
}

/// An admin's vouch: the identity as vouched for, the changes to commit, and the signature to upload.
public struct Vouch: Sendable {
    public var identity: StoredUserIdentity
    public var changes = CryptoChanges()
    /// `/keys/signatures/upload` body (the bot's user-signing key over the master key), sent as the
    /// trust anchor after the commit; nil when the anchor has no cross-signing identity.
    public var signatureUpload: JSONValue?
}

/// Why `trust @user FINGERPRINT` vouched for nothing.
public enum VouchRefusal: Error, Sendable, Hashable {
    /// The user has no current cross-signing identity (unknown user, or no master key published).
    case noIdentity
    /// The fingerprint is not the user's current master key.
    case mismatch
}
