import Foundation
import MatrixModels
import Olm

extension CryptoMachine {
    /// Events with fewer Megolm ciphertexts than this are decrypted one by one on the actor.
    static let parallelDecryptThreshold = 8
    /// Cores to spread work over; read once (on Linux, Foundation reads the cgroup limits for it).
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The libolm part of Megolm decryption for many events at once, spread over the cores.
    ///
    /// libolm's decrypt (signature check included) is most of a transaction's work and each session's
    /// messages are independent of every other session's. Events are grouped by session and one worker
    /// per core (the machine's own thread and helper tasks) takes groups until none is left; each
    /// session object is lent to exactly one worker for the duration (``LentSession``). libolm's answer
    /// and the parsed plaintext come back; every check that follows (payload, room, replay ledger,
    /// parking) still runs on the actor, in event order, in ``decryptRoomEvent(_:scratch:)``.
    /// Transactions too small to gain are left to the serial path.
    func decryptInParallel(_ events: [JSONValue], scratch: Scratch) async throws {
        var groups: [InboundSessionKey: LentSession] = [:]
        groups.reserveCapacity(events.count)
        var total = 0
        // Sized once: a transaction's events fill these from empty.
        scratch.prepared.reserveCapacity(events.count)
        scratch.claims.reserveCapacity(scratch.claims.count + events.count)
        scratch.groupSessions.reserveCapacity(scratch.groupSessions.count + events.count)
        for (position, event) in events.enumerated() where event["type"]?.stringValue == "m.room.encrypted" {
            guard let eventID = event["event_id"]?.stringValue.flatMap({ try? EventID($0) }),
                let roomID = event["room_id"]?.stringValue.flatMap({ try? RoomID($0) }),
                let sender = event["sender"]?.stringValue.flatMap({ try? UserID($0) }),
                let envelope = try? MegolmDecryption.Envelope(content: event["content"] ?? .null),
                let claim = Self.claim(
                    for: sender, envelopeSenderKey: envelope.senderKey,
                    among: try await claims(GroupSessionRef(roomID: roomID, sessionID: envelope.sessionID), scratch: scratch)),
                let session = groupSession(claim, scratch: scratch)
            else { continue }
            scratch.prepared[position] = PreparedRoomEvent(
                eventID: eventID, roomID: roomID, sender: sender, envelope: envelope, claim: claim, session: session)
            groups[InboundSessionKey(claim), default: LentSession(session: session)].items.append((eventID.rawValue, envelope.ciphertext))
            total += 1
        }
        let cores = Self.cores
        guard settings.parallelDecryption, total >= Self.parallelDecryptThreshold, groups.count >= 2, cores >= 2 else { return }
        // Largest groups first; each worker takes the next group not yet taken until none is left, so
        // a worker slowed by other work on its core (PostgreSQL, the HTTP threads) takes fewer groups
        // instead of holding up the rest (fixed halves left one core idle at the end of each step).
        let queue = TakeOnceQueue(groups.values.sorted { $0.items.count > $1.items.count })
        let workers = min(cores, groups.count)
        let results = await withTaskGroup(of: [String: MegolmDecryption.Predecrypted].self) { tasks in
            for _ in 1..<workers {
                tasks.addTask { Self.olmDecrypt(queue) }
            }
            // The machine's own thread is the last worker: it would only wait for the others (nothing
            // else can use the machine meanwhile), and a task started for it reached a core ~0.1 ms late
            // in every step.
            var merged = Self.olmDecrypt(queue)
            merged.reserveCapacity(total)
            for await part in tasks { merged.merge(part) { first, _ in first } }
            return merged
        }
        scratch.predecrypted.merge(results) { first, _ in first }
        parallelBatches += workers
    }

    /// Runs off the actor: takes groups from `queue` until it is empty, decrypting each lent
    /// session's ciphertexts and parsing their plaintexts.
    nonisolated static func olmDecrypt(_ queue: TakeOnceQueue<LentSession>) -> [String: MegolmDecryption.Predecrypted] {
        var results: [String: MegolmDecryption.Predecrypted] = [:]
        while let group = queue.next() {
            for item in group.items {
                results[item.eventID] = MegolmDecryption.Predecrypted(session: group.session, ciphertext: item.ciphertext)
            }
        }
        return results
    }
}

/// An inbound Megolm session lent to one decrypting worker while the machine waits for them.
///
/// Safe to send because the loan is exclusive: each session is in exactly one group, taken by exactly
/// one worker (``TakeOnceQueue``) — a helper task, or the machine's own thread, which takes groups
/// like the helpers and then waits for them in ``CryptoMachine/decryptInParallel(_:scratch:)`` —, and
/// the machine does nothing else meanwhile (every other machine call waits for the engine's lock,
/// which the transaction holds).
struct LentSession: @unchecked Sendable {
    let session: InboundGroupSession
    var items: [(eventID: String, ciphertext: String)] = []
}

/// An `m.room.encrypted` event as ``CryptoMachine/decryptRoomEvent(_:prepared:scratch:)`` starts from:
/// its ids checked, its envelope read, and the claim and session it decrypts with found — exactly
/// what that function works out itself when given none.
struct PreparedRoomEvent {
    let eventID: EventID
    let roomID: RoomID
    let sender: UserID
    let envelope: MegolmDecryption.Envelope
    let claim: StoredInboundGroupSession
    let session: InboundGroupSession
}
