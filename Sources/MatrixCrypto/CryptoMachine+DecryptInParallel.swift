import Foundation
import MatrixModels
import Olm

extension CryptoMachine {
    /// Events with fewer Megolm ciphertexts than this are decrypted one by one on the actor.
    static let parallelDecryptThreshold = 8

    /// The libolm part of Megolm decryption for many events at once, spread over the cores.
    ///
    /// libolm's decrypt (signature check included) is most of a transaction's work and each session's
    /// messages are independent of every other session's. Events are grouped by session and the groups
    /// split into one batch per core; each batch task unpickles **its own** copies of its sessions, so
    /// no Olm object is shared across tasks and the actor's cached objects are never touched off the
    /// actor. Only libolm's answer comes back; every check that follows (payload, room, replay ledger,
    /// parking) still runs on the actor, in event order, in ``decryptRoomEvent(_:scratch:)``.
    /// Transactions too small to gain are left to the serial path.
    func decryptInParallel(_ events: [JSONValue], scratch: Scratch) async throws {
        var groups: [String: (pickle: String, items: [(eventID: String, ciphertext: String)])] = [:]
        var total = 0
        for event in events where event["type"]?.stringValue == "m.room.encrypted" {
            guard let eventID = event["event_id"]?.stringValue, let roomID = event["room_id"]?.stringValue.flatMap({ try? RoomID($0) }),
                let envelope = try? MegolmDecryption.Envelope(content: event["content"] ?? .null),
                let (record, _) = try await loadGroupSession(roomID, envelope.sessionID, scratch: scratch)
            else { continue }
            groups[Self.groupKey(roomID, envelope.sessionID), default: (record.pickle, [])].items.append((eventID, envelope.ciphertext))
            total += 1
        }
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        guard total >= Self.parallelDecryptThreshold, groups.count >= 2, cores >= 2 else { return }
        // Largest groups first, each to the lightest batch: batches of about equal work.
        var batches = Array(repeating: [(pickle: String, items: [(eventID: String, ciphertext: String)])](), count: min(cores, groups.count))
        var load = Array(repeating: 0, count: batches.count)
        for group in groups.values.sorted(by: { $0.items.count > $1.items.count }) {
            let lightest = load.indices.min { load[$0] < load[$1] }!
            batches[lightest].append(group)
            load[lightest] += group.items.count
        }
        let key = cipher.pickleKey
        let results = await withTaskGroup(of: [String: Result<InboundGroupSession.Decrypted, OlmError>].self) { tasks in
            for batch in batches {
                tasks.addTask { Self.olmDecrypt(batch, key: key) }
            }
            var merged: [String: Result<InboundGroupSession.Decrypted, OlmError>] = [:]
            for await part in tasks { merged.merge(part) { first, _ in first } }
            return merged
        }
        scratch.predecrypted.merge(results) { first, _ in first }
        parallelBatches += batches.count
    }

    /// Runs off the actor: unpickles each session of `batch` and decrypts its ciphertexts.
    /// A session that does not unpickle is skipped; the serial path then reports the error.
    nonisolated static func olmDecrypt(
        _ batch: [(pickle: String, items: [(eventID: String, ciphertext: String)])], key: PickleKey
    ) -> [String: Result<InboundGroupSession.Decrypted, OlmError>] {
        var results: [String: Result<InboundGroupSession.Decrypted, OlmError>] = [:]
        for group in batch {
            guard let session = try? InboundGroupSession.unpickle(group.pickle, key: key) else { continue }
            for item in group.items {
                do {
                    results[item.eventID] = .success(try session.decrypt(item.ciphertext))
                } catch {
                    results[item.eventID] = .failure(error)
                }
            }
        }
        return results
    }
}
