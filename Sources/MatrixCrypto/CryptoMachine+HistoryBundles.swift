import Foundation
import MatrixModels
import Olm

/// MSC4268 history bundles, receiving side (docs/history-bundles.md): a pointer arrives over Olm and
/// is kept; once the recipient's invite from the same sender is seen, the engine downloads the file
/// (after a commit, outside the lock) and hands the bytes to ``CryptoMachine/importHistoryBundle(_:download:)``.
extension CryptoMachine {
    /// How long a bundle waits for its invite (and an invite for its bundle): a day, as
    /// matrix-rust-sdk accepts a bundle up to a day after the join.
    public static let historyBundleWindow: TimeInterval = 86_400

    /// Keeps an `m.room_key_bundle` pointer from a verified device (the caller checked the Olm
    /// payload's addressing and sender device), to import once the recipient's invite is seen.
    ///
    /// MSC4268 makes `sender_device_keys` (MSC4147) mandatory on this message: without them it is refused.
    func receiveHistoryBundle(
        _ payload: JSONValue, sender: UserID, senderKey: String, senderDevice: VerifiedDeviceKeys, recipient: StoredAccount,
        changes: inout CryptoChanges
    ) throws(DecryptionFailure) {
        guard let keys = payload["sender_device_keys"], keys.objectValue != nil else {
            throw .unverifiedSender("a room key bundle without sender_device_keys")
        }
        guard let content = payload["content"], content.objectValue != nil else { throw .malformed("room key bundle without content") }
        guard let room = content["room_id"]?.stringValue, let roomID = try? RoomID(room) else {
            throw .malformed("room key bundle without a valid room_id")
        }
        let file = try EncryptedFile(json: content["file"] ?? .null)
        changes.historyBundles.append(PendingHistoryBundle(
            id: Self.randomID(), recipient: DeviceRef(userID: recipient.userID, deviceID: recipient.deviceID), roomID: roomID, sender: sender,
            senderDeviceID: senderDevice.deviceID, senderKey: senderKey, senderEd25519: senderDevice.ed25519, file: file, receivedAt: now()))
    }

    /// Records who invited a local user (one with a device here) into a room: the only sender whose
    /// history bundle for that room the user will take.
    func recordInvite(_ event: JSONValue, roomID: RoomID, userID: UserID, scratch: Scratch, changes: inout CryptoChanges) async throws {
        guard let inviter = event["sender"]?.stringValue.flatMap({ try? UserID($0) }), inviter != userID,
            try await hasAccount(userID, scratch: scratch)
        else { return }
        changes.roomInvites.append(RoomInvite(roomID: roomID, userID: userID, inviter: inviter, invitedAt: now()))
    }

    /// The history bundles to download now: those whose recipient's invite into the room came from
    /// the bundle's sender, within ``historyBundleWindow`` of the bundle. Bundles from anyone else
    /// than the inviter, and bundles whose invite never came within the window, are released and
    /// reported in the returned step (commit it); the others keep waiting.
    public func dueHistoryBundles(limit: Int) async throws -> (due: [PendingHistoryBundle], step: CryptoStep) {
        var step = CryptoStep()
        var due: [PendingHistoryBundle] = []
        for bundle in try await store.historyBundles(receivedBefore: now().addingTimeInterval(-Self.historyBundleWindow), limit: limit) {
            switch try await judge(bundle) {
            case .none: due.append(bundle)
            case .some(.wait): continue
            case .some(.refuse(let failure)):
                step.changes.releasedHistoryBundles.insert(bundle.id)
                step.historyBundles.append(HistoryBundleOutcome(
                    roomID: bundle.roomID, sender: bundle.sender, recipient: bundle.recipient.userID, failure: failure))
            }
        }
        return (due, step)
    }

    enum BundleVerdict {
        case wait
        case refuse(HistoryBundleFailure)
    }

    /// nil: the bundle may be imported.
    func judge(_ bundle: PendingHistoryBundle) async throws -> BundleVerdict? {
        let age = now().timeIntervalSince(bundle.receivedAt)
        guard let invite = try await store.roomInvite(roomID: bundle.roomID, userID: bundle.recipient.userID) else {
            return age > Self.historyBundleWindow ? .refuse(.expired) : .wait
        }
        guard invite.inviter == bundle.sender else { return .refuse(.notInviter) }
        guard abs(invite.invitedAt.timeIntervalSince(bundle.receivedAt)) <= Self.historyBundleWindow else { return .refuse(.expired) }
        return nil
    }

    /// Imports a downloaded history bundle: checks the invite again, verifies `hashes.sha256`,
    /// decrypts (AES-256-CTR), parses, and stores each session of the bundle's room as a claim
    /// marked with the inviter's device (``StoredInboundGroupSession/bundleSender``); then decrypts
    /// the parked events those sessions unlock. The bundle is released whatever happens.
    ///
    /// Each `room_keys` entry is judged alone and skipped (counted) when it is for another room,
    /// malformed (fields, key formats, a `session_key` that does not import or belongs to another
    /// session id), or when its owner cannot be established: the session's `sender_key` must be the
    /// bundle sender's device (then owned by the inviter, its `sender_claimed_keys.ed25519` that
    /// device's), a known device of the inviter or of a sender of events waiting for that session
    /// (and then its Ed25519 key that device's), or else the `sender_key` those waiting events name. A session already held from an equal or earlier index is kept (`kept_ours`);
    /// another owner's claim is never rewritten.
    /// - Parameter download: The file's bytes, or why there are none (released, counted).
    public func importHistoryBundle(_ bundle: PendingHistoryBundle, download: Result<[UInt8], HistoryBundleFailure>) async throws -> CryptoStep {
        let scratch = Scratch()
        var step = CryptoStep()
        step.changes.releasedHistoryBundles.insert(bundle.id)
        var outcome = HistoryBundleOutcome(roomID: bundle.roomID, sender: bundle.sender, recipient: bundle.recipient.userID)
        // A store that cannot be read fails the step (the bundle stays for the next sweep), never
        // lets the import through unjudged.
        let verdict = try await judge(bundle)
        let contents: HistoryBundle
        do throws(HistoryBundleFailure) {
            if case .refuse(let failure)? = verdict { throw failure }
            let plaintext = try bundle.file.open(try download.get())
            contents = try HistoryBundle(plaintext: plaintext)
        } catch {
            outcome.failure = error
            step.historyBundles.append(outcome)
            return step
        }
        let origin = BundleSender(userID: bundle.sender, curve25519: bundle.senderKey)
        let entries = contents.roomKeys.prefix(HistoryBundle.maxEntries)
        if contents.roomKeys.count > entries.count { outcome.skipped["too_many"] = contents.roomKeys.count - entries.count }
        // The events waiting for any of these sessions, in one read (not one per entry).
        let sessionIDs = Set(entries.compactMap { $0["session_id"]?.stringValue }.filter(KeyFormat.isSessionID))
        let waiting = Dictionary(grouping: try await store.parkedEvents(sessionIDs: sessionIDs).filter { $0.roomID == bundle.roomID }, by: \.sessionID)
        for entry in entries {
            let verdict = try await importBundleEntry(
                entry, bundle: bundle, origin: origin, waiting: waiting, scratch: scratch, changes: &step.changes)
            if let skipped = verdict { outcome.skipped[skipped, default: 0] += 1 } else { outcome.imported += 1 }
        }
        // Withheld notices of the bundle's room: hints about the inviter's own sessions only (a
        // notice applies to events of its sender and sender key).
        for entry in contents.withheld.prefix(HistoryBundle.maxEntries) {
            guard entry["room_id"]?.stringValue == bundle.roomID.rawValue, let notice = Self.withheldNotice(entry, sender: bundle.sender) else { continue }
            step.changes.withheldNotices.append(notice)
        }
        try await decryptRoomEvents([], retrying: [], scratch: scratch, step: &step)
        step.keyConflicts = scratch.conflicts
        step.historyBundles.append(outcome)
        return step
    }

    /// Stores one `room_keys` entry; returns the reason it was skipped, or nil when it was stored.
    func importBundleEntry(
        _ entry: JSONValue, bundle: PendingHistoryBundle, origin: BundleSender, waiting: [String: [ParkedEvent]], scratch: Scratch,
        changes: inout CryptoChanges
    ) async throws -> String? {
        guard entry.objectValue != nil, let room = entry["room_id"]?.stringValue else { return "malformed" }
        guard room == bundle.roomID.rawValue else { return "other_room" }
        guard entry["algorithm"]?.stringValue == EncryptionAlgorithm.megolm,
            let sessionID = entry["session_id"]?.stringValue, KeyFormat.isSessionID(sessionID),
            let senderKey = entry["sender_key"]?.stringValue, KeyFormat.isKey(senderKey),
            let claimedEd25519 = entry["sender_claimed_keys"]?["ed25519"]?.stringValue, KeyFormat.isKey(claimedEd25519),
            entry["session_key"]?.stringValue != nil
        else { return "malformed" }
        let owner: UserID?
        if senderKey == bundle.senderKey {
            // The inviter's own session, from the very device that sent the bundle (keys verified on receipt).
            owner = claimedEd25519 == bundle.senderEd25519 ? bundle.sender : nil
        } else {
            owner = try await bundleSessionOwner(
                senderKey: senderKey, claimedEd25519: claimedEd25519, inviter: bundle.sender, waiting: waiting[sessionID] ?? [], scratch: scratch)
        }
        guard let owner else { return "unknown_owner" }
        do {
            let stored = try await acceptRoomKey(
                entry, senderKey: senderKey, sender: owner, senderEd25519: claimedEd25519, bundleSender: origin, scratch: scratch, changes: &changes)
            return stored ? nil : "kept_ours"
        } catch {
            return "malformed"
        }
    }

    /// Who a bundled session belongs to, as far as we can tell: the user (the inviter, or a sender of
    /// events waiting for the session in that room) with a known device of that curve25519 key and
    /// Ed25519 key; else the sender of waiting events that name that curve25519 key. nil: nobody
    /// (a key claimed for a known device with another Ed25519 key is a lie: nobody either).
    func bundleSessionOwner(
        senderKey: String, claimedEd25519: String, inviter: UserID, waiting: [ParkedEvent], scratch: Scratch
    ) async throws -> UserID? {
        var candidates = [inviter]
        for event in waiting where !candidates.contains(event.sender) { candidates.append(event.sender) }
        for user in candidates.prefix(10) {
            if scratch.senderDevices[user] == nil { scratch.senderDevices[user] = try await store.devices(userIDs: [user])[user] ?? [] }
            if let device = scratch.senderDevices[user]?.first(where: { $0.curve25519 == senderKey }) {
                return device.ed25519 == claimedEd25519 ? user : nil
            }
        }
        return waiting.first { $0.senderKey == senderKey }?.sender
    }

    /// The trust an event decrypted with `claim` carries: its sharing device's, and for a session
    /// from a history bundle no higher than the inviter's device that sent the bundle.
    func decryptionTrust(_ claim: StoredInboundGroupSession, scratch: Scratch) async throws -> DeviceTrust {
        let trust = try await senderTrust(claim, scratch: scratch)
        guard let origin = claim.bundleSender else { return trust }
        let inviterDevice = StoredInboundGroupSession(
            roomID: claim.roomID, sessionID: claim.sessionID, senderKey: origin.curve25519, senderUserID: origin.userID, firstKnownIndex: 0, pickle: "")
        return trust.capped(at: try await senderTrust(inviterDevice, scratch: scratch))
    }
}
