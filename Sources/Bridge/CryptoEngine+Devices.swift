import Logging
import MatrixCrypto
import MatrixModels

extension CryptoEngine {
    /// Makes sure `userID` has a device with published keys: creates it on the homeserver (MSC4190),
    /// generates and commits its account, then uploads its keys and records them as published; with
    /// cross-signing on, a new device is then signed by its user's identity (made if needed). A
    /// cross-signing failure other than a refused foreign identity is logged, not thrown: the device
    /// works, and the backfill retries the identity.
    ///
    /// A new account never takes over a device the homeserver already holds: devices of the user that
    /// Sealbridge made (their id starts with `deviceID`) and the database does not know are left from a
    /// lost or restored database — their keys and one-time keys are another account's, so uploading
    /// ours would be refused ("one time key already exists") and peers would encrypt to keys nobody
    /// holds. They are deleted, loudly, and the new device gets a fresh id.
    ///
    /// - Parameter deviceID: The id for a first device; a suffix is added when it was used before.
    /// - Returns: The device id (existing or new).
    @discardableResult
    public func ensureDevice(_ userID: UserID, deviceID: DeviceID, displayName: String) async throws -> DeviceID {
        if let existing = try await machine.deviceID(of: userID) { return existing }
        return try await deviceLocks.withLock(userID) {
            if let existing = try await machine.deviceID(of: userID) { return existing }
            return try await createDevice(userID, preferred: deviceID, displayName: displayName)
        }
    }

    /// ``ensureDevice(_:deviceID:displayName:)``'s creation, under the user's device lock.
    ///
    /// - Parameter avoid: Ids never to use again (a replaced device's: peers remember its old keys).
    func createDevice(_ userID: UserID, preferred: DeviceID, displayName: String, avoid: Set<DeviceID> = []) async throws -> DeviceID {
        // A user the homeserver creates now has no devices and no identity there: nothing to look for
        // (two requests fewer per new puppet).
        let fresh = try await transport.registerUser(userID)
        let stale = fresh ? [] : try await transport.listDevices(of: userID).filter { $0.rawValue.hasPrefix(preferred.rawValue) }
        for device in stale {
            logger.warning("deleting a device the database does not know (a lost or restored database); the user gets a new device", metadata: [
                "user": "\(userID)", "device": "\(device)",
            ])
            try await transport.deleteDevice(device, of: userID)
        }
        // Only a user the homeserver knows no Sealbridge device of gets the bare preferred id: any
        // earlier device may have used it, and peers remember keys per device id.
        var deviceID = preferred
        while !stale.isEmpty || !avoid.isEmpty, stale.contains(deviceID) || avoid.contains(deviceID) || deviceID == preferred {
            deviceID = try DeviceID(preferred.rawValue + Self.deviceSuffix())
        }
        try await transport.createDevice(deviceID, for: userID, displayName: displayName)
        // Keys are generated and signed before the lock is taken (a new account shares nothing), so
        // devices are made on every core; only the commit holds the lock. So is a new identity, which
        // is committed in the device's own step.
        let created = try machine.newDevice(userID: userID, deviceID: deviceID)
        let identity = await newIdentity(for: userID, deviceID: deviceID, deviceKeys: created.upload.deviceKeys, userIsNew: fresh)
        let (upload, identityCommitted) = try await step { () -> (CryptoChanges, (KeysUpload?, Bool)) in
            if try await machine.deviceID(of: userID) != nil { return (CryptoChanges(), (nil, false)) }
            var changes = created.changes
            guard let identity, try await store.crossSigningIdentity(userID: userID) == nil else { return (changes, (created.upload, false)) }
            changes.merge(identity.changes)
            return (changes, (created.upload, true))
        }
        if let upload, identityCommitted, let identity {
            try await self.upload(upload, publishing: identity.upload)
        } else if let upload {
            try await self.upload(upload)
        }
        if !identityCommitted, let policy = crossSigning?(userID) {
            do {
                try await ensureCrossSigning(userID, onForeignIdentity: policy)
            } catch let error as CrossSigningIdentityError where error.code == .foreignIdentity {
                throw error
            } catch {
                logger.warning("a new device is not cross-signed yet; the backfill will retry", metadata: [
                    "user": "\(userID)", "error": "\(error)",
                ])
            }
        }
        return try await machine.deviceID(of: userID) ?? deviceID
    }

    /// Eight random letters and digits: a new device id never seen on the homeserver.
    static func deviceSuffix() -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        return String((0..<8).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
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
                try await machine.confirmUpload(next, counts: counts)
            }
            pending += more
        }
    }
}
