import Olm

/// Unpickled inbound Megolm sessions, and the claims on each session id, least recently used
/// evicted first.
///
/// Holds only what was read from the store (committed); a key arriving in a step drops the entries it
/// touches, to be read again after that step, so a rolled-back step cannot leave its key behind in
/// memory. Only this machine writes inbound sessions (one instance owns the state), so what the cache
/// holds stays true between steps.
struct InboundSessionCache {
    /// A cached session with the record it was unpickled from; a class, so a lookup for each event of
    /// a transaction copies one reference instead of a record of eight fields.
    final class Entry {
        let record: StoredInboundGroupSession
        let session: InboundGroupSession

        init(record: StoredInboundGroupSession, session: InboundGroupSession) {
            self.record = record
            self.session = session
        }
    }

    var sessions: LRUCache<InboundSessionKey, Entry>
    var claims: LRUCache<GroupSessionRef, [StoredInboundGroupSession]>

    init(capacity: Int) {
        sessions = LRUCache(capacity: capacity)
        claims = LRUCache(capacity: capacity)
    }

    var count: Int { sessions.count }

    mutating func get(_ key: InboundSessionKey) -> Entry? {
        sessions.get(key)
    }

    mutating func put(_ key: InboundSessionKey, _ record: StoredInboundGroupSession, _ session: InboundGroupSession) {
        sessions.put(key, Entry(record: record, session: session))
    }

    /// Forgets a claim and the claims of its session id: a key for it arrived in the current step.
    mutating func remove(_ key: InboundSessionKey) {
        sessions.remove(key)
        claims.remove(GroupSessionRef(roomID: key.roomID, sessionID: key.sessionID))
    }
}
