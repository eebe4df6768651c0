import Foundation
import MatrixCrypto
import MatrixModels
import Postgres

/// Pruning of crypto state that only grows, in small batches, each fenced like every other write.
///
/// What goes: replay ledger entries older than the retention (each pruned session keeps a floor below
/// which every index counts as seen), Olm sessions beyond the most recent few per (local device, remote key) that have not
/// been used for a while (a peer that replaced a session never goes back to an old one it has not
/// used in days; the newest few stay for messages in flight), withheld notices older than the
/// retention (they only explain why an old event is undecryptable), wedged-session recovery
/// records older than the retention (they only throttle a recovery for an hour), and replaced
/// outbound sessions kept to answer key requests, after their retention.
extension PostgresCryptoStore {
    /// Deletes up to `batch` Olm sessions ranked after the `keep` most recently used ones of their
    /// (local device, remote key) and last used before `idleBefore`.
    public func pruneOlmSessions(keep: Int, idleBefore: Date, batch: Int) async throws -> Int {
        try await fenced { connection in
            try await connection.execute("""
                DELETE FROM sealbridge_olm_sessions s USING (
                    SELECT local_user_id, local_device_id, sender_key, session_id FROM (
                        SELECT local_user_id, local_device_id, sender_key, session_id, last_used,
                               row_number() OVER (PARTITION BY local_user_id, local_device_id, sender_key
                                                  ORDER BY last_used DESC, session_id DESC) AS rank
                        FROM sealbridge_olm_sessions) ranked
                    WHERE rank > \(keep) AND last_used < \(idleBefore) LIMIT \(batch)) old
                WHERE s.local_user_id = old.local_user_id AND s.local_device_id = old.local_device_id
                  AND s.sender_key = old.sender_key AND s.session_id = old.session_id
                """)
        }
    }

    /// Deletes up to `batch` replay entries seen before `before`, raising each affected session's floor
    /// to just above the highest index deleted, in the same statement.
    ///
    /// Replay detection stays correct: an index that was deleted is below its session's floor, and a
    /// lookup reports every index below the floor as seen (``replayEntriesQuery(_:)``), so a replayed
    /// old ciphertext is still refused. The price: an event that arrives for the first time, older
    /// than the retention and below what its session showed since, is refused too.
    /// - Returns: The entries deleted.
    public func pruneReplayLedger(seenBefore before: Date, batch: Int) async throws -> Int {
        try await fenced { connection in
            try await connection.query("""
                WITH old AS (
                    DELETE FROM sealbridge_megolm_replay WHERE ctid IN (
                        SELECT ctid FROM sealbridge_megolm_replay WHERE seen_at < \(before) LIMIT \(batch))
                    RETURNING session_id, message_index
                ), floors AS (
                    INSERT INTO sealbridge_megolm_replay_floors (session_id, below)
                    SELECT session_id, max(message_index) + 1 FROM old GROUP BY session_id
                    ON CONFLICT (session_id) DO UPDATE
                        SET below = greatest(sealbridge_megolm_replay_floors.below, EXCLUDED.below), updated_at = now()
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM old) AS pruned, (SELECT count(*) FROM floors) AS sessions
                """).first?.decode(Int.self, "pruned") ?? 0
        }
    }

    /// Deletes up to `batch` withheld notices received before `before`.
    public func pruneWithheldNotices(receivedBefore before: Date, batch: Int) async throws -> Int {
        try await fenced { connection in
            try await connection.execute("""
                DELETE FROM sealbridge_withheld_sessions WHERE ctid IN (
                    SELECT ctid FROM sealbridge_withheld_sessions WHERE received_at < \(before) LIMIT \(batch))
                """)
        }
    }

    /// Deletes up to `batch` wedged-session recovery records older than `before`.
    public func pruneOlmRecoveries(recoveredBefore before: Date, batch: Int) async throws -> Int {
        try await fenced { connection in
            try await connection.execute("""
                DELETE FROM sealbridge_olm_recoveries WHERE ctid IN (
                    SELECT ctid FROM sealbridge_olm_recoveries WHERE recovered_at < \(before) LIMIT \(batch))
                """)
        }
    }

    /// Deletes up to `batch` retired outbound sessions (with their share records) replaced before
    /// `before`: their recipients can no longer ask for their keys.
    public func pruneRetiredOutboundSessions(retiredBefore before: Date, batch: Int) async throws -> Int {
        try await fenced { connection in
            try await connection.execute("""
                DELETE FROM sealbridge_retired_outbound_sessions WHERE session_id IN (
                    SELECT session_id FROM sealbridge_retired_outbound_sessions WHERE retired_at < \(before) LIMIT \(batch))
                """)
        }
    }

    /// Runs `body` in a transaction whose first statement proves this instance owns the state.
    func fenced(_ body: (PostgresConnection) async throws -> Int) async throws -> Int {
        if let fence { _ = try fence.check() }
        return try await client.withTransaction { connection in
            if let fence { _ = try await connection.execute(try fence.check()) }
            return try await body(connection)
        }
    }
}
