import MatrixModels
import Olm

/// The result of a `/keys/claim`: new Olm sessions to commit, and devices left without one.
public struct KeysClaimOutcome: Sendable {
    public var changes = CryptoChanges()
    /// Requested devices that got no session: no key was returned, or its signature did not verify.
    public var failed: Set<DeviceRef> = []
}

extension CryptoMachine {
    /// The body of `POST /keys/claim` for `devices`.
    public nonisolated static func keysClaimBody(_ devices: [DeviceRef]) -> JSONValue {
        var users: [String: JSONValue] = [:]
        for device in devices {
            var mine = users[device.userID.rawValue]?.objectValue ?? [:]
            mine[device.deviceID.rawValue] = .string(EncryptionAlgorithm.signedCurve25519)
            users[device.userID.rawValue] = .object(mine)
        }
        return ["one_time_keys": .object(users), "timeout": 10_000]
    }

    /// Creates outbound Olm sessions from a `/keys/claim` response, for the local device of `sender`.
    ///
    /// Each claimed key must carry the device's signature (made with the Ed25519 key from its verified
    /// device keys), or a homeserver could substitute a key of its own.
    public func receiveKeysClaim(_ response: JSONValue, requested: [DeviceRef], sender: UserID) async throws -> KeysClaimOutcome {
        let scratch = Scratch()
        var outcome = KeysClaimOutcome()
        guard let (record, account) = try await loadAccount(sender, into: scratch) else {
            throw CryptoError(code: .noLocalDevice, message: "\(sender) has no device")
        }
        let devices = try await store.devices(userIDs: Array(Set(requested.map(\.userID))))
        let keys = response["one_time_keys"]
        var claims: [ClaimedKey] = []
        for ref in requested {
            guard let device = devices[ref.userID]?.first(where: { $0.deviceID == ref.deviceID }),
                let (_, key) = keys?[ref.userID.rawValue]?[ref.deviceID.rawValue]?.objectValue?
                    .first(where: { $0.key.hasPrefix(EncryptionAlgorithm.signedCurve25519 + ":") })
            else {
                outcome.failed.insert(ref)
                continue
            }
            claims.append(ClaimedKey(ref: ref, curve25519: device.curve25519, ed25519: device.ed25519, key: key))
        }
        for created in try await createOutboundSessions(claims, account: account) {
            guard let (sessionID, pickle) = created.session else {
                outcome.failed.insert(created.ref)
                continue
            }
            outcome.changes.olmSessions.append(StoredOlmSession(
                localUserID: record.userID, localDeviceID: record.deviceID, senderKey: created.curve25519, sessionID: sessionID,
                pickle: pickle, lastUsed: now()))
        }
        return outcome
    }

    /// Olm-encrypts `type`/`content` from a local device to one remote device, as the spec's payload
    /// requires (sender, recipient and both Ed25519 keys), with MSC4147 `sender_device_keys`.
    nonisolated static func olmEncrypt(
        type: String, content: JSONValue, from local: StoredAccount, identity: IdentityKeys, ownDeviceKeys: JSONValue,
        to device: VerifiedDeviceKeys, session: Session
    ) throws -> JSONValue {
        let payload: JSONValue = [
            "type": .string(type), "content": content,
            "sender": .string(local.userID.rawValue), "sender_device": .string(local.deviceID.rawValue),
            "recipient": .string(device.userID.rawValue), "recipient_keys": ["ed25519": .string(device.ed25519)],
            "keys": ["ed25519": .string(identity.ed25519)],
            "sender_device_keys": ownDeviceKeys,
        ]
        let message: OlmMessage
        do {
            message = try session.encrypt(payload.serialized())
        } catch {
            throw CryptoError(code: .olm, message: "Olm encryption to \(device.userID) \(device.deviceID) failed: \(error.code)")
        }
        return [
            "algorithm": .string(EncryptionAlgorithm.olm), "sender_key": .string(identity.curve25519),
            "ciphertext": .object([device.curve25519: ["type": .integer(Int64(message.kind.rawValue)), "body": .string(message.ciphertext)]]),
        ]
    }

    /// The local device's own signed device keys, for `sender_device_keys`.
    func ownDeviceKeys(_ record: StoredAccount, _ account: Account) throws -> JSONValue {
        do {
            return try KeysUpload.signedDeviceKeys(of: account, userID: record.userID, deviceID: record.deviceID)
        } catch {
            throw CryptoError(code: .olm, message: "signing the device keys of \(record.userID) failed: \(error)")
        }
    }
}
