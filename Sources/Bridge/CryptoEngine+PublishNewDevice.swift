import MatrixCrypto
import MatrixModels

extension CryptoEngine {
    /// A cross-signing identity to commit with a user's new device, when cross-signing is on and the
    /// homeserver serves no identity for the user (asked before the lock, as ``ensureCrossSigning(_:onForeignIdentity:)``
    /// would; not asked when `userIsNew`: the homeserver created the user a moment ago): nil otherwise,
    /// and nil on any error, so the device is made anyway and
    /// ``ensureCrossSigning(_:onForeignIdentity:)`` runs afterwards with its own rules (a foreign identity
    /// refused or replaced, a failure left to the backfill).
    func newIdentity(
        for userID: UserID, deviceID: DeviceID, deviceKeys: JSONValue?, userIsNew: Bool
    ) async -> (changes: CryptoChanges, upload: CrossSigningUpload)? {
        guard crossSigning?(userID) != nil, let deviceKeys else { return nil }
        do {
            guard try await store.crossSigningIdentity(userID: userID) == nil else { return nil }
            if !userIsNew {
                let served = try await transport.queryKeys([userID], as: userID)["master_keys"]?[userID.rawValue]
                guard served == nil || served == .null else { return nil }
            }
            return try machine.newCrossSigningIdentity(userID: userID, deviceID: deviceID, deviceKeys: deviceKeys)
        } catch {
            return nil
        }
    }

    /// ``upload(_:)`` for a new device whose identity was committed with it: the device's keys, the
    /// identity and the device's signature are sent, then one step records what the homeserver took
    /// (one commit where there were three, issue 12 point 4).
    ///
    /// A refused or failed identity upload does not fail the device (its keys are up): it is logged and
    /// left unconfirmed, so the backfill sends it again.
    func upload(_ upload: KeysUpload, publishing identity: CrossSigningUpload) async throws {
        let counts = try await transport.uploadKeys(upload.body, as: upload.userID, device: upload.deviceID)
        var accepted: CrossSigningUpload?
        do {
            let sent = try await send(identity)
            accepted = sent.accepted
            if let refused = sent.refused {
                logger.warning("a new device is not cross-signed yet; the backfill will retry", metadata: ["user": "\(upload.userID)", "error": "\(refused)"])
            }
        } catch {
            logger.warning("a new device is not cross-signed yet; the backfill will retry", metadata: ["user": "\(upload.userID)", "error": "\(error)"])
        }
        let more = try await step { () -> (CryptoChanges, [KeysUpload]) in
            var (changes, more) = try await machine.confirmUpload(upload, counts: counts)
            if let accepted, !accepted.isEmpty { changes.merge(try await machine.confirmCrossSigningUpload(accepted)) }
            return (changes, more)
        }
        if let accepted { logPublished(accepted) }
        for next in more { try await self.upload(next) }
    }
}
