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
        if let policy = crossSigning?(userID) {
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
                changes = CryptoChanges()
                let (topUp, uploads) = try await machine.replenish(counts: [next.userID: [next.deviceID: counts]])
                changes.merge(topUp)
                return (changes, uploads)
            }
            pending += more
        }
    }
}
