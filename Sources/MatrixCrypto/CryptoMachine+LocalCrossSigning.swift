import MatrixModels
import Olm
import Primitives

extension CryptoMachine {
    /// Makes a new cross-signing identity for a local user, sealed, to commit before anything is
    /// uploaded (so a restart re-sends the same keys rather than making others).
    ///
    /// - Throws: `invalidCrossSigning` if the user already has one: replacing an identity makes every
    ///   peer warn "identity changed", and is done only by ``replaceCrossSigningIdentity(userID:)``.
    public func createCrossSigningIdentity(userID: UserID) async throws -> CryptoChanges {
        if try await store.crossSigningIdentity(userID: userID) != nil {
            throw CryptoError(code: .invalidCrossSigning, message: "\(userID) already has a cross-signing identity")
        }
        return try replaceCrossSigningIdentity(userID: userID)
    }

    /// A new identity for a user whose first device is being made (``newDevice(userID:deviceID:)``), with
    /// everything that publishes it: the keys, and the new device signed by the self-signing key.
    ///
    /// Reads no store and needs no lock, so provisioning makes it on every core and commits it in the
    /// device's own step (one commit instead of two, and no locked re-read of what was just written:
    /// issue 12 point 4). The caller commits `changes` only if the user still has no identity then.
    ///
    /// - Parameter deviceKeys: The new account's signed device keys, as ``KeysUpload/deviceKeys`` holds them.
    public nonisolated func newCrossSigningIdentity(
        userID: UserID, deviceID: DeviceID, deviceKeys: JSONValue
    ) throws -> (changes: CryptoChanges, upload: CrossSigningUpload) {
        var seeds = CrossSigningSeeds.generate()
        defer { seeds.wipe() }
        let signers = try CrossSigningSigners(seeds)
        let changes = try identityChanges(userID: userID, seeds: seeds, keys: signers.publicKeys, published: false)
        var upload = CrossSigningUpload(userID: userID, keys: signers.publicKeys)
        do {
            upload.signingKeys = try CrossSigningKeysJSON.upload(userID: userID, signers: signers)
            let device = try SignedJSON.sign(
                CrossSigningKeysJSON.withoutSignatures(deviceKeys), userID: userID, keyID: "ed25519:\(upload.keys.selfSigning)",
                with: signers.selfSigning)
            upload.deviceSignature = (deviceID, [userID.rawValue: [deviceID.rawValue: device]])
        } catch let error as CryptoError {
            throw error
        } catch {
            throw CryptoError(code: .olm, message: "signing the new cross-signing identity of \(userID) failed: \(error)")
        }
        return (changes, upload)
    }

    /// A fresh identity for `userID`, whatever it had: for an operator's explicit reset.
    public func replaceCrossSigningIdentity(userID: UserID) throws -> CryptoChanges {
        var seeds = CrossSigningSeeds.generate()
        defer { seeds.wipe() }
        return try identityChanges(userID: userID, seeds: seeds, keys: try seeds.publicKeys(), published: false)
    }

    /// Stores an identity whose seeds came from elsewhere (secret storage), after checking they make
    /// the public keys the homeserver serves for the user.
    ///
    /// - Parameter expectedMaster: The user's master key as the homeserver serves it.
    /// - Throws: `invalidCrossSigning` if the seeds make another master key.
    public func importCrossSigningIdentity(userID: UserID, seeds: CrossSigningSeeds, expectedMaster: String) throws -> CryptoChanges {
        let keys = try seeds.publicKeys()
        guard keys.master == expectedMaster else {
            throw CryptoError(code: .invalidCrossSigning, message: "the recovered seeds of \(userID) make another master key than the homeserver serves")
        }
        // The keys may be published already; re-sending identical keys is harmless (the homeserver
        // answers 200), so the upload runs again rather than assuming.
        return try identityChanges(userID: userID, seeds: seeds, keys: keys, published: false)
    }

    /// The opened seeds of a local user's identity, if it has one.
    public func crossSigningSeeds(of userID: UserID) async throws -> CrossSigningSeeds? {
        guard let identity = try await store.crossSigningIdentity(userID: userID) else { return nil }
        return try openSeeds(identity)
    }

    /// What remains to publish of `userID`'s identity (keys, device signature), from committed state;
    /// nil without an identity, empty when all is published.
    public func pendingCrossSigningUpload(userID: UserID) async throws -> CrossSigningUpload? {
        guard let identity = try await store.crossSigningIdentity(userID: userID) else { return nil }
        var upload = CrossSigningUpload(userID: userID, keys: identity.keys)
        let account = try await loadAccount(userID, into: Scratch())
        let unsignedDevice = account.flatMap { $0.record.deviceKeysUploaded && $0.record.deviceID != identity.signedDeviceID ? $0 : nil }
        guard !identity.published || unsignedDevice != nil else { return upload }
        let signers = try openSigners(identity)
        do {
            let selfSigning = signers.selfSigning
            if !identity.published {
                upload.signingKeys = try CrossSigningKeysJSON.upload(userID: userID, signers: signers)
            }
            if let (record, account) = unsignedDevice {
                var device = try KeysUpload.signedDeviceKeys(of: account, userID: userID, deviceID: record.deviceID)
                device = CrossSigningKeysJSON.withoutSignatures(device)
                device = try SignedJSON.sign(device, userID: userID, keyID: "ed25519:\(identity.keys.selfSigning)", with: selfSigning)
                upload.deviceSignature = (record.deviceID, [userID.rawValue: [record.deviceID.rawValue: device]])
            }
        } catch let error as CryptoError {
            throw error
        } catch {
            throw CryptoError(code: .olm, message: "signing the cross-signing identity of \(userID) failed: \(error)")
        }
        return upload
    }

    /// Records what the homeserver accepted of `upload`.
    public func confirmCrossSigningUpload(_ upload: CrossSigningUpload) async throws -> CryptoChanges {
        guard var identity = try await store.crossSigningIdentity(userID: upload.userID), identity.keys == upload.keys else {
            throw CryptoError(code: .invalidCrossSigning, message: "the cross-signing identity of \(upload.userID) changed during its upload")
        }
        if upload.signingKeys != nil { identity.published = true }
        if let signed = upload.deviceSignature { identity.signedDeviceID = signed.deviceID }
        var changes = CryptoChanges()
        changes.crossSigningIdentities = [identity]
        return changes
    }

    /// The identity made by `seeds` as a change to commit, its seeds sealed.
    ///
    /// - Parameter keys: The public keys `seeds` make (the caller has made them once already).
    nonisolated func identityChanges(userID: UserID, seeds: CrossSigningSeeds, keys: CrossSigningPublicKeys, published: Bool) throws -> CryptoChanges {
        var combined = seeds.combined
        defer { secureWipe(&combined) }
        var changes = CryptoChanges()
        changes.crossSigningIdentities = [StoredCrossSigningIdentity(
            userID: userID, keys: keys,
            sealedSeeds: try cipher.seal(combined, context: StoredCrossSigningIdentity.sealContext(userID)), published: published,
            signedDeviceID: nil)]
        return changes
    }

    func openSeeds(_ identity: StoredCrossSigningIdentity) throws -> CrossSigningSeeds {
        var seeds = try unsealSeeds(identity)
        do {
            guard try seeds.publicKeys() == identity.keys else { throw Self.seedsMismatch(identity) }
        } catch {
            seeds.wipe()
            throw error
        }
        return seeds
    }

    /// ``openSeeds(_:)`` as the signing keys, each made once.
    func openSigners(_ identity: StoredCrossSigningIdentity) throws -> CrossSigningSigners {
        var seeds = try unsealSeeds(identity)
        defer { seeds.wipe() }
        let signers = try CrossSigningSigners(seeds)
        guard signers.publicKeys == identity.keys else { throw Self.seedsMismatch(identity) }
        return signers
    }

    private func unsealSeeds(_ identity: StoredCrossSigningIdentity) throws -> CrossSigningSeeds {
        var combined = try cipher.open(identity.sealedSeeds, context: StoredCrossSigningIdentity.sealContext(identity.userID))
        defer { secureWipe(&combined) }
        return try CrossSigningSeeds(combined: combined)
    }

    private static func seedsMismatch(_ identity: StoredCrossSigningIdentity) -> CryptoError {
        CryptoError(code: .storeCorrupted, message: "the sealed cross-signing seeds of \(identity.userID) do not match its public keys")
    }
}
