import Logging
import MatrixCrypto
import MatrixModels

extension CryptoEngine {
    /// Commits room state fetched from the homeserver (after a join: `/state` and `/members`).
    public func updateRoom(_ roomID: RoomID, encryption: RoomEncryption?, members: [UserID: String]) async throws {
        try await step { () -> (CryptoChanges, Void) in (try await machine.updateRoom(roomID, encryption: encryption, members: members), ()) }
    }

    /// Queries `users`' device lists now (after joining a room) and commits them.
    public func refreshDevices(_ users: [UserID], as requester: UserID) async throws {
        guard !users.isEmpty else { return }
        let response = try await transport.queryKeys(users, as: requester)
        try await commitKeysQuery(response, users: users)
    }

    /// Commits a `/keys/query` answer for `users`; devices the machine refused are logged. Trust
    /// changes of known devices are delivered to the bridge logic in the same database transaction
    /// (one `sealbridge.trust_update` per room their owner is in).
    func commitKeysQuery(_ response: JSONValue, users: [UserID]) async throws {
        try await locked {
            let outcome = try await machine.receiveKeysQuery(response, users: users)
            for rejected in outcome.rejected {
                logger.warning("ignored a device", metadata: [
                    "user": "\(rejected.userID)", "device": "\(rejected.deviceID)", "reason": "\(rejected.reason)",
                ])
            }
            for refused in outcome.refusedKeys {
                logger.warning("ignored a cross-signing key", metadata: ["user": "\(refused.userID)", "reason": "\(refused.reason)"])
            }
            for user in outcome.changedIdentities {
                logger.warning("a user's master key changed since it was pinned; their devices are identity_changed until an admin trusts it", metadata: ["user": "\(user)"])
            }
            var step = CryptoStep()
            step.changes = outcome.changes
            for change in outcome.trustChanges {
                logger.info("a device's trust level changed", metadata: [
                    "user": "\(change.userID)", "device": "\(change.deviceID)", "from": "\(change.previous)", "to": "\(change.current)",
                ])
                for room in try await store.presentRooms(userID: change.userID) { step.trustUpdates.append((change, room)) }
            }
            try await committer.commit(step)
        }
    }

    /// Discards the outbound session of `sender` in `roomID` (the `rotate` command).
    public func rotate(roomID: RoomID, sender: UserID) async throws {
        try await step { () -> (CryptoChanges, Void) in (await machine.discardOutboundSession(roomID: roomID, sender: sender), ()) }
    }
}
