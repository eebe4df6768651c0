import Foundation
import MatrixModels
import Olm

/// A one-time key claimed for a remote device, not yet checked.
struct ClaimedKey: Sendable {
    var ref: DeviceRef
    var curve25519: String
    var ed25519: String
    /// The signed one-time key object as the homeserver returned it.
    var key: JSONValue
}

/// What became of one claim: the new session's id and pickle, or nil when the key did not verify or
/// libolm refused it.
struct CreatedSession: Sendable {
    var ref: DeviceRef
    var curve25519: String
    var session: (id: String, pickle: String)?
}

/// A local device's account lent to the tasks creating outbound sessions while the machine awaits them.
///
/// libolm only reads the account to create an outbound session (`olm_create_outbound_session` takes
/// it `const`), so several tasks may use it at once; the machine does nothing else meanwhile (it is
/// suspended, and every other machine call waits for the engine's lock the caller holds).
struct LentAccount: @unchecked Sendable {
    let account: Account
}

extension CryptoMachine {
    /// Claims below this count are handled on the actor alone.
    static let parallelSessionThreshold = 16

    /// Verifies each claimed one-time key's signature and creates an outbound Olm session to it,
    /// spread over the cores for large claims (the first message into a big room), returning the
    /// sessions pickled, in the order of `claims`.
    func createOutboundSessions(_ claims: [ClaimedKey], account: Account) async throws -> [CreatedSession] {
        let key = cipher
        let lent = LentAccount(account: account)
        let cores = Self.cores
        let results: [CreatedSession]
        if claims.count < Self.parallelSessionThreshold || cores < 2 {
            results = Self.createSessions(claims[...], account: lent, key: key)
        } else {
            let size = (claims.count + cores - 1) / cores
            let chunks = stride(from: 0, to: claims.count, by: size).map { claims[$0..<min($0 + size, claims.count)] }
            results = await withTaskGroup(of: (Int, [CreatedSession]).self) { tasks in
                for (index, chunk) in chunks.enumerated() {
                    tasks.addTask { (index, Self.createSessions(chunk, account: lent, key: key)) }
                }
                var parts: [(Int, [CreatedSession])] = []
                for await part in tasks { parts.append(part) }
                return parts.sorted { $0.0 < $1.0 }.flatMap(\.1)
            }
            parallelBatches += chunks.count
        }
        // A session created but not pickled is an internal failure, not a device without keys.
        if results.contains(where: { $0.session?.pickle.isEmpty == true }) {
            throw CryptoError(code: .olm, message: "pickling a new Olm session failed")
        }
        return results
    }

    /// Runs off the actor for large claims.
    nonisolated static func createSessions(_ claims: ArraySlice<ClaimedKey>, account: LentAccount, key: StoreCipher) -> [CreatedSession] {
        claims.map { claim in
            var created = CreatedSession(ref: claim.ref, curve25519: claim.curve25519)
            guard let publicKey = claim.key["key"]?.stringValue,
                (try? SignedJSON.verify(claim.key, userID: claim.ref.userID, keyID: "ed25519:\(claim.ref.deviceID.rawValue)", publicKey: claim.ed25519))
                    != nil,
                let session = try? Session.outbound(account: account.account, theirIdentityKey: claim.curve25519, theirOneTimeKey: publicKey)
            else { return created }
            created.session = (session.sessionID, (try? key.pickle { try session.pickle(key: $0) }) ?? "")
            return created
        }
    }
}

/// An Olm session with one recipient device, lent to one task that encrypts the room key for it.
/// Each session is in exactly one task; the machine awaits them and does nothing else meanwhile.
struct LentOlmSession: @unchecked Sendable {
    let device: VerifiedDeviceKeys
    let session: Session
}

extension CryptoMachine {
    /// Olm-encrypts the room key for each recipient and pickles its advanced session, spread over
    /// the cores when there are many (the first message into a big room).
    ///
    /// - Returns: By device, the to-device content and the session's new pickle.
    func encryptRoomKeys(
        _ recipients: [LentOlmSession], roomKey: JSONValue, local: StoredAccount, identity: IdentityKeys, ownDeviceKeys: JSONValue
    ) async throws -> [DeviceRef: (envelope: JSONValue, pickle: String)] {
        let key = cipher
        let cores = Self.cores
        let work: @Sendable (ArraySlice<LentOlmSession>) throws -> [DeviceRef: (envelope: JSONValue, pickle: String)] = { slice in
            var out: [DeviceRef: (envelope: JSONValue, pickle: String)] = [:]
            for lent in slice {
                let envelope = try Self.olmEncrypt(
                    type: "m.room_key", content: roomKey, from: local, identity: identity, ownDeviceKeys: ownDeviceKeys, to: lent.device,
                    session: lent.session)
                let pickle: String
                do {
                    pickle = try key.pickle { try lent.session.pickle(key: $0) }
                } catch {
                    throw CryptoError(code: .olm, message: "pickling an Olm session failed: \(error)")
                }
                out[DeviceRef(userID: lent.device.userID, deviceID: lent.device.deviceID)] = (envelope, pickle)
            }
            return out
        }
        guard recipients.count >= Self.parallelSessionThreshold, cores >= 2 else { return try work(recipients[...]) }
        let size = (recipients.count + cores - 1) / cores
        let chunks = stride(from: 0, to: recipients.count, by: size).map { recipients[$0..<min($0 + size, recipients.count)] }
        let merged = try await withThrowingTaskGroup(of: [DeviceRef: (envelope: JSONValue, pickle: String)].self) { tasks in
            for chunk in chunks { tasks.addTask { try work(chunk) } }
            var merged: [DeviceRef: (envelope: JSONValue, pickle: String)] = [:]
            for try await part in tasks { merged.merge(part) { first, _ in first } }
            return merged
        }
        parallelBatches += chunks.count
        return merged
    }
}
