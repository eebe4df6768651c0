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
    /// commits it; devices it cross-signs are `verified` from the next decryption or send on. Then,
    /// when the bot has a cross-signing identity, uploads its user-signing key's signature of that
    /// master key (a failed upload is logged: the vouch stands on its own).
    ///
    /// - Returns: The vouch (with whether the signature was published), or why nothing was vouched for.
    public func trust(_ userID: UserID, fingerprint: String) async throws -> Result<(identity: StoredUserIdentity, signed: Bool), VouchRefusal> {
        let result = try await step { () -> (CryptoChanges, Result<Vouch, VouchRefusal>) in
            let result = try await machine.vouch(for: userID, fingerprint: fingerprint)
            return ((try? result.get())?.changes ?? CryptoChanges(), result)
        }
        switch result {
        case .failure(let refusal):
            return .failure(refusal)
        case .success(let vouch):
            guard let body = vouch.signatureUpload, let anchor = await machine.trustAnchor else { return .success((vouch.identity, false)) }
            do {
                let failures = try await transport.uploadSignatures(body, as: anchor)
                if failures.isEmpty { return .success((vouch.identity, true)) }
                logger.warning("the homeserver refused the bot's signature of a master key", metadata: ["user": "\(userID)", "failures": "\(failures)"])
            } catch {
                logger.warning("uploading the bot's signature of a master key failed", metadata: ["user": "\(userID)", "error": "\(error)"])
            }
            return .success((vouch.identity, false))
        }
    }
}
