import Foundation
import MatrixModels
import Olm

extension CryptoMachine {
    /// Everything one send decided about the room's outbound session and its recipients.
    struct SharePlan {
        var local: StoredAccount
        var account: Account
        var record: StoredOutboundGroupSession
        var session: OutboundGroupSession
        /// True when the session was created (or rotated) in this call and is not stored yet.
        var isNew: Bool
        /// Devices that have neither the current key nor a withheld notice (or were withheld
        /// `m.unverified` by the sharing policy and meet it now).
        var missing: [VerifiedDeviceKeys]
        var unreachable: Set<DeviceRef>
        /// Recipients held by this daemon (``localRecipients(_:scratch:)``): they get the key without
        /// Olm, whatever the sharing policy (their keys never leave the process).
        var localRecipients: Set<ShareKey> = []
        /// Recipients' owners' cross-signing identities, for the sharing policy.
        var identities: [UserID: StoredUserIdentity] = [:]
        var claim: [DeviceRef] = []
        var sessions: [String: Session] = [:]
    }

    /// Loads or creates (rotating when due) the outbound session and finds who still lacks it.
    func planShare(roomID: RoomID, sender: UserID, unreachable: Set<DeviceRef>, scratch: Scratch) async throws -> SharePlan {
        guard let (local, account) = try await loadAccount(sender, into: scratch) else {
            throw CryptoError(code: .noLocalDevice, message: "\(sender) has no device")
        }
        guard let settings = try await room(roomID, scratch: scratch), settings.algorithm == EncryptionAlgorithm.megolm else {
            throw CryptoError(code: .roomNotEncrypted, message: "\(roomID) has no m.megolm.v1.aes-sha2 m.room.encryption state")
        }
        let users = try await recipientUsers(roomID, scratch: scratch)
        let devicesByUser = try await store.devices(userIDs: users)
        let recipients = users.flatMap { devicesByUser[$0] ?? [] }
            .filter { !($0.userID == local.userID && $0.deviceID == local.deviceID) }

        let identities = self.settings.sharingPolicy == .all ? [:] : try await store.userIdentities(users)
        let localRecipients = try await localRecipients(recipients, scratch: scratch)
        // Devices that hold the key but no longer meet the sharing policy (an identity changed since):
        // the session rotates, so they get nothing sent after the change.
        let excluded = Set(recipients.filter { !localRecipients.contains(ShareKey($0)) && trustWithheldCode(for: $0, identities: identities) != nil }
            .map { ShareKey(userID: $0.userID, deviceID: $0.deviceID, curve25519: $0.curve25519) })
        var stored = try await store.outboundGroupSession(roomID: roomID, senderUserID: sender)
        var session: OutboundGroupSession?
        if let current = stored {
            guard let unpickled = try? cipher.unpickle(current.pickle, { try OutboundGroupSession.unpickle($0, key: $1) }) else {
                throw CryptoError(code: .storeCorrupted, message: "outbound session in \(roomID) does not unpickle")
            }
            let rotate = needsRotation(current, unpickled, settings: settings, recipients: recipients, excluded: excluded)
            if rotate || current.senderDeviceID != local.deviceID {
                stored = nil
            } else {
                session = unpickled
            }
        }
        let isNew = session == nil
        if session == nil {
            do {
                session = try OutboundGroupSession.create()
            } catch {
                throw CryptoError(code: .olm, message: "creating an outbound session failed: \(error.code)")
            }
        }
        let outbound = session!
        let record: StoredOutboundGroupSession
        if let stored {
            record = stored
        } else {
            record = StoredOutboundGroupSession(
                roomID: roomID, senderUserID: sender, senderDeviceID: local.deviceID, sessionID: outbound.sessionID,
                pickle: try Self.pickled(outbound, cipher), createdAt: now())
        }
        // A device withheld for its trust gets the key once it meets the policy (cross-signed since).
        let byRef = self.settings.sharingPolicy == .all ? [:] : Dictionary(
            recipients.map { (DeviceRef(userID: $0.userID, deviceID: $0.deviceID), $0) }, uniquingKeysWith: { first, _ in first })
        let shared = Set(record.shares.filter { share in
            // A local device has the key only from a share record with an index (no backoff, no policy).
            if localRecipients.contains(ShareKey(userID: share.userID, deviceID: share.deviceID, curve25519: share.curve25519)) {
                return share.messageIndex != nil
            }
            // A device no one-time key could be claimed for is tried again once its backoff is over.
            if share.withheldCode == Self.noOlmCode, share.messageIndex == nil { return (share.retryAfter ?? .distantPast) > now() }
            guard share.withheldCode == Self.unverifiedCode, share.messageIndex == nil,
                let device = byRef[DeviceRef(userID: share.userID, deviceID: share.deviceID)]
            else { return true }
            return trustWithheldCode(for: device, identities: identities) != nil
        }.map { ShareKey(userID: $0.userID, deviceID: $0.deviceID, curve25519: $0.curve25519) })
        let missing = recipients.filter { !shared.contains(ShareKey(userID: $0.userID, deviceID: $0.deviceID, curve25519: $0.curve25519)) }
        var plan = SharePlan(
            local: local, account: account, record: record, session: outbound, isNew: isNew, missing: missing, unreachable: unreachable,
            localRecipients: localRecipients, identities: identities)

        // Remote devices that will get the key need an Olm session; find them, or ask for a claim.
        let needKey = missing.filter { !localRecipients.contains(ShareKey($0)) && withheldCode(for: $0, plan: plan) == nil }
        let sessions = try await store.olmSessions(localUserID: local.userID, localDeviceID: local.deviceID, remoteKeys: needKey.map(\.curve25519))
        for device in needKey {
            let key = OlmSessionsKey(localUserID: local.userID, remoteKey: device.curve25519)
            if let loaded = scratch.olmSessions[key]?.first {
                plan.sessions[device.curve25519] = loaded.session
            } else if let newest = sessions[device.curve25519]?.first {
                guard let unpickled = try? cipher.unpickle(newest.pickle, { try Session.unpickle($0, key: $1) }) else {
                    throw CryptoError(code: .storeCorrupted, message: "Olm session with \(device.userID) \(device.deviceID) does not unpickle")
                }
                scratch.olmSessions[key] = [(newest, unpickled)]
                plan.sessions[device.curve25519] = unpickled
            } else {
                plan.claim.append(DeviceRef(userID: device.userID, deviceID: device.deviceID))
            }
        }
        return plan
    }

    /// Whether the session must be replaced: too old, too many messages, someone who has the key is
    /// no longer a recipient (left, or that device was removed or changed keys), or a device that has
    /// the key no longer meets the sharing policy (`excluded`: its owner's identity changed).
    func needsRotation(
        _ record: StoredOutboundGroupSession, _ session: OutboundGroupSession, settings: RoomEncryption, recipients: [VerifiedDeviceKeys],
        excluded: Set<ShareKey> = []
    ) -> Bool {
        let period = settings.rotationPeriodMilliseconds.map { TimeInterval($0) / 1000 } ?? self.settings.defaultRotationPeriod
        let messages = settings.rotationPeriodMessages ?? self.settings.defaultRotationMessages
        if now().timeIntervalSince(record.createdAt) >= period || Int64(session.messageIndex) >= messages { return true }
        let current = Set(recipients.map { ShareKey(userID: $0.userID, deviceID: $0.deviceID, curve25519: $0.curve25519) })
        return record.shares.contains { share in
            let key = ShareKey(userID: share.userID, deviceID: share.deviceID, curve25519: share.curve25519)
            return share.messageIndex != nil && (!current.contains(key) || excluded.contains(key))
        }
    }

    static let unverifiedCode = "m.unverified"
    static let noOlmCode = "m.no_olm"
    static let unauthorisedCode = "m.unauthorised"

    /// How long after its `failures`-th failed claim a device is tried again: 1 minute, doubling, at most an hour.
    static func claimBackoff(failures: Int) -> TimeInterval {
        min(3600, 60 * pow(2, Double(max(0, failures - 1))))
    }

    /// Why a device gets a withheld notice instead of the key, if it does.
    func withheldCode(for device: VerifiedDeviceKeys, plan: SharePlan) -> String? {
        if plan.localRecipients.contains(ShareKey(device)) { return nil }
        if let code = trustWithheldCode(for: device, identities: plan.identities) { return code }
        if plan.unreachable.contains(DeviceRef(userID: device.userID, deviceID: device.deviceID)) { return Self.noOlmCode }
        return nil
    }

    /// `m.unverified` for a device the sharing policy excludes (MSC4153), and always for a dehydrated
    /// one: a server can plant a dehydrated device as easily as any other, and such a device cannot
    /// answer for itself, so it never gets a key.
    func trustWithheldCode(for device: VerifiedDeviceKeys, identities: [UserID: StoredUserIdentity]) -> String? {
        if device.dehydrated { return Self.unverifiedCode }
        guard settings.sharingPolicy != .all else { return nil }
        return DeviceTrust.of(device, identity: identities[device.userID]).meets(settings.sharingPolicy) ? nil : Self.unverifiedCode
    }

    /// Encrypts the room key for every remote device in `plan.missing` (withheld notices for the
    /// rest); devices held by this daemon get it in `changes` instead (``shareLocally(_:plan:roomKey:scratch:changes:)``).
    ///
    /// - Returns: nil when every recipient already has the key.
    func buildShare(_ plan: SharePlan, scratch: Scratch) async throws -> RoomKeyShare? {
        guard !plan.missing.isEmpty else { return nil }
        var changes = CryptoChanges()
        if plan.isNew { changes.outboundGroupSessions = [plan.record] }
        let roomID = plan.record.roomID, identity = plan.account.identityKeys
        let index = plan.session.messageIndex
        let roomKey: JSONValue = [
            "algorithm": .string(EncryptionAlgorithm.megolm), "room_id": .string(roomID.rawValue),
            "session_id": .string(plan.record.sessionID), "session_key": .string(plan.session.sessionKey),
        ]
        let local = plan.missing.filter { plan.localRecipients.contains(ShareKey($0)) }
        try await shareLocally(local, plan: plan, roomKey: roomKey, scratch: scratch, changes: &changes)
        let remote = plan.missing.filter { !plan.localRecipients.contains(ShareKey($0)) }
        let ownKeys = try ownDeviceKeys(plan.local, plan.account)
        var keyed: [(UserID, DeviceID, JSONValue)] = [], keyedShares: [DeviceRef: OutboundShare] = [:]
        var withheld: [(UserID, DeviceID, JSONValue)] = [], withheldShares: [DeviceRef: OutboundShare] = [:]
        let recipients = remote.compactMap { device -> LentOlmSession? in
            guard withheldCode(for: device, plan: plan) == nil, let session = plan.sessions[device.curve25519] else { return nil }
            return LentOlmSession(device: device, session: session)
        }
        let encrypted = try await encryptRoomKeys(
            recipients, roomKey: roomKey, local: plan.local, identity: identity, ownDeviceKeys: ownKeys)
        for device in remote {
            let ref = DeviceRef(userID: device.userID, deviceID: device.deviceID)
            if let code = withheldCode(for: device, plan: plan) {
                let notice = WithheldKeyNotice(roomID: roomID, sessionID: plan.record.sessionID, senderKey: identity.curve25519, from: plan.local.deviceID)
                withheld.append((device.userID, device.deviceID, notice.content(code: code)))
                var share = OutboundShare(
                    roomID: roomID, senderUserID: plan.local.userID, sessionID: plan.record.sessionID, userID: device.userID,
                    deviceID: device.deviceID, curve25519: device.curve25519, messageIndex: nil, withheldCode: code)
                if code == Self.noOlmCode {
                    let earlier = plan.record.shares.first { $0.userID == device.userID && $0.deviceID == device.deviceID && $0.withheldCode == Self.noOlmCode }
                    share.failedClaims = (earlier?.failedClaims ?? 0) + 1
                    share.retryAfter = now().addingTimeInterval(Self.claimBackoff(failures: share.failedClaims))
                }
                withheldShares[ref] = share
                continue
            }
            guard let session = plan.sessions[device.curve25519], let (envelope, pickle) = encrypted[ref] else { continue }
            keyed.append((device.userID, device.deviceID, envelope))
            changes.olmSessions.append(recordOlmSession(session, pickle: pickle, local: plan.local, remoteKey: device.curve25519, scratch: scratch))
            keyedShares[ref] = OutboundShare(
                roomID: roomID, senderUserID: plan.local.userID, sessionID: plan.record.sessionID, userID: device.userID,
                deviceID: device.deviceID, curve25519: device.curve25519, messageIndex: index, withheldCode: nil)
        }
        var batches: [ShareBatch] = []
        for (type, messages, shares) in [("m.room.encrypted", keyed, keyedShares), ("m.room_key.withheld", withheld, withheldShares)] {
            for request in ToDeviceRequest.batched(type, messages, batchSize: settings.toDeviceBatchSize) {
                let refs = request.messages.flatMap { user, devices in devices.keys.map { DeviceRef(userID: user, deviceID: $0) } }
                batches.append(ShareBatch(request: request, shares: refs.sorted().compactMap { shares[$0] }))
            }
        }
        return RoomKeyShare(changes: changes, batches: batches)
    }

    static func pickled(_ session: OutboundGroupSession, _ cipher: StoreCipher) throws -> String {
        do {
            return try cipher.pickle { try session.pickle(key: $0) }
        } catch {
            throw CryptoError(code: .olm, message: "pickling failed: \(error)")
        }
    }
}

/// A device as it was when shared with: a device that comes back with other keys is someone else.
struct ShareKey: Hashable {
    var userID: UserID
    var deviceID: DeviceID
    var curve25519: String
}
