import MatrixModels
import Olm

extension CryptoMachine {
    /// Every claim on (room, session id) known in this step: accepted earlier in it, cached from an
    /// earlier step, or stored.
    func claims(_ ref: GroupSessionRef, scratch: Scratch) async throws -> [StoredInboundGroupSession] {
        if let known = scratch.claims[ref] { return known }
        if let cached = inboundCache.claims.get(ref) {
            scratch.claims[ref] = cached
            return cached
        }
        let stored = try await store.inboundGroupSessions(roomID: ref.roomID, sessionID: ref.sessionID)
        scratch.claims[ref] = stored
        // An unknown session id is not cached: its key may come in a later step from anywhere.
        if !stored.isEmpty { inboundCache.claims.put(ref, stored) }
        return stored
    }

    /// The claim an event of `sender` is decrypted with: one whose owner is the event's sender — the
    /// claim of the envelope's sender key if there is one, else the one known from the earliest index.
    /// Another user's copy of the key never decrypts this sender's events (it would relabel them).
    static func claim(
        for sender: UserID, envelopeSenderKey: String?, among claims: [StoredInboundGroupSession]
    ) -> StoredInboundGroupSession? {
        // One pass, no array of the sender's own claims: this runs for every event of a transaction.
        var earliest: StoredInboundGroupSession?
        for claim in claims where claim.senderUserID == sender {
            if let key = envelopeSenderKey, claim.senderKey == key { return claim }
            if let best = earliest, (best.firstKnownIndex, best.senderKey) <= (claim.firstKnownIndex, claim.senderKey) { continue }
            earliest = claim
        }
        return earliest
    }

    /// Stores the Megolm session an `m.room_key` carries as its sender's claim.
    ///
    /// A stored claim never changes owner: a key from the same owner (sender key, user, Ed25519 key)
    /// known from an earlier index extends it, and the owner's own key replaces a forwarded or
    /// bundled copy known from the same index; a key naming the same sender key for another user or
    /// Ed25519 key is refused; a key from another sender is kept as that sender's own claim, so an
    /// impostor who re-shares a session first can neither relabel nor block the genuine owner's copy.
    /// Conflicts go to ``Scratch/conflicts``.
    /// - Parameters:
    ///   - forwarded: The key came as `m.forwarded_room_key` (export format), in answer to our request.
    ///   - bundleSender: The key came in an MSC4268 history bundle (export format) from this inviter's device.
    func acceptRoomKey(
        _ content: JSONValue, senderKey: String, sender: UserID, senderEd25519: String, forwarded: Bool = false,
        bundleSender: BundleSender? = nil, scratch: Scratch, changes: inout CryptoChanges
    ) async throws -> Bool {
        let roomKey = try RoomKey(content: content)
        let session = forwarded || bundleSender != nil ? try roomKey.importedSession() : try roomKey.inboundSession()
        let ref = GroupSessionRef(roomID: roomKey.roomID, sessionID: roomKey.sessionID)
        let pickled: String
        do {
            pickled = try cipher.pickle { try session.pickle(key: $0) }
        } catch {
            throw CryptoError(code: .olm, message: "pickling an inbound session failed: \(error)")
        }
        var stored = StoredInboundGroupSession(
            roomID: roomKey.roomID, sessionID: roomKey.sessionID, senderKey: senderKey, senderUserID: sender, senderEd25519: senderEd25519,
            firstKnownIndex: session.firstKnownIndex, pickle: pickled)
        stored.forwarded = forwarded
        stored.bundleSender = bundleSender
        var known = try await claims(ref, scratch: scratch)
        let sameKey = known.first { $0.senderKey == senderKey }
        if let sameKey, sameKey.senderUserID != sender || sameKey.senderEd25519 != senderEd25519 {
            scratch.conflicts.append(RoomKeyConflict(
                roomID: ref.roomID, sessionID: ref.sessionID, existingSender: sameKey.senderUserID, newSender: sender, refused: true))
            return false
        }
        if let other = known.first(where: { $0.senderKey != senderKey }) {
            scratch.conflicts.append(RoomKeyConflict(
                roomID: ref.roomID, sessionID: ref.sessionID, existingSender: other.senderUserID, newSender: sender, refused: false))
        }
        if let sameKey, !stored.supersedes(sameKey) { return false }
        known.removeAll { $0.senderKey == senderKey }
        known.append(stored)
        scratch.claims[ref] = known
        changes.inboundGroupSessions.append(stored)
        let key = InboundSessionKey(stored)
        scratch.groupSessions[key] = session
        inboundCache.remove(key)
        return true
    }

    /// The unpickled session of a claim, from the step, the cache or the store's pickle.
    ///
    /// - Returns: nil when the pickle does not open (wrong key, damage): only the events of this
    ///   session fail, not the transaction.
    func groupSession(_ record: StoredInboundGroupSession, scratch: Scratch) -> InboundGroupSession? {
        let key = InboundSessionKey(record)
        if let loaded = scratch.groupSessions[key] { return loaded }
        if let cached = inboundCache.get(key), cached.record == record {
            scratch.groupSessions[key] = cached.session
            return cached.session
        }
        guard let session = try? cipher.unpickle(record.pickle, { try InboundGroupSession.unpickle($0, key: $1) }) else { return nil }
        scratch.groupSessions[key] = session
        inboundCache.put(key, record, session)
        return session
    }
}
