import MatrixCrypto
import MatrixModels

extension CryptoEngine {
    /// `userID`'s devices with their trust levels and identity, after refreshing the device list
    /// when it is tracked but outdated (queried as `requester`). A failed refresh shows what is stored.
    public func whois(_ userID: UserID, as requester: UserID) async throws -> (devices: [(VerifiedDeviceKeys, DeviceTrust)], identity: StoredUserIdentity?) {
        if try await store.trackedUsers([userID])[userID] == true {
            do {
                try await refreshDevices([userID], as: requester)
            } catch {
                logger.warning("whois: keys query failed; showing stored devices", metadata: ["user": "\(userID)", "error": "\(error)"])
            }
        }
        return try await machine.deviceTrust(of: userID)
    }

    /// Records an admin's vouch for `userID`'s current master key (re-pinning a changed one) and
    /// commits it; devices it cross-signs are `verified` from the next decryption or send on.
    ///
    /// - Returns: The identity vouched for, or why nothing was.
    public func trust(_ userID: UserID, fingerprint: String) async throws -> Result<StoredUserIdentity, VouchRefusal> {
        try await step { () -> (CryptoChanges, Result<StoredUserIdentity, VouchRefusal>) in
            switch try await machine.vouch(for: userID, fingerprint: fingerprint) {
            case .success(let changes): (changes, .success(changes.userIdentities[userID]!))
            case .failure(let refusal): (CryptoChanges(), .failure(refusal))
            }
        }
    }
}
