/// A PostgreSQL session-level advisory lock held on a connection of its own.
///
/// Sealbridge takes one at start so that only one process ever uses an Olm account: two would fork
/// the ratchets. The lock lives as long as its connection, so it is freed if the process dies; if the
/// connection is lost, ``isHeld()`` turns false and the holder must stop writing crypto state.
public final class AdvisoryLock: Sendable {
    public let key: Int64
    let connection: PostgresConnection

    init(key: Int64, connection: PostgresConnection) {
        self.key = key
        self.connection = connection
    }

    /// Whether the lock's connection is alive (and so the lock still held).
    public func isHeld() async -> Bool {
        guard !connection.isBroken else { return false }
        return (try? await connection.query("SELECT 1 AS ok")) != nil
    }

    /// Releases the lock and closes its connection.
    public func release() async {
        _ = try? await connection.query("SELECT pg_advisory_unlock(\(key))")
        await connection.close()
    }
}

extension PostgresClient {
    /// Takes the advisory lock `key` on a dedicated connection, or returns nil if another session holds it.
    public func tryAdvisoryLock(key: Int64) async throws -> AdvisoryLock? {
        let connection = try await ConnectionPool.connectWithBackoff(configuration)
        do {
            let acquired = try await connection.query("SELECT pg_try_advisory_lock(\(key)) AS acquired").first?.decode(Bool.self, "acquired")
            guard acquired == true else {
                await connection.close()
                return nil
            }
            return AdvisoryLock(key: key, connection: connection)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Waits (polling every `interval`, cancellable) until the advisory lock `key` is ours.
    ///
    /// A standby instance waits here while the active one runs, and takes over when it stops. It asks
    /// on one connection, kept for the wait (a new one only when it breaks, with backoff), not a new
    /// connection per attempt.
    /// - Parameter onWaiting: Called once, the first time the lock is found held by another session.
    public func advisoryLock(
        key: Int64, pollEvery interval: Duration = .seconds(1), onWaiting: @Sendable () -> Void = {}
    ) async throws -> AdvisoryLock {
        var told = false
        var connection: PostgresConnection?
        var delay = Duration.milliseconds(500)
        while true {
            try Task.checkCancellation()
            do {
                let current: PostgresConnection
                if let connection, !connection.isBroken {
                    current = connection
                } else {
                    current = try await ConnectionPool.connectWithBackoff(configuration)
                    connection = current
                }
                let acquired = try await current.query("SELECT pg_try_advisory_lock(\(key)) AS acquired").first?.decode(Bool.self, "acquired")
                if acquired == true { return AdvisoryLock(key: key, connection: current) }
                if !told {
                    told = true
                    onWaiting()
                }
                delay = .milliseconds(500)
                try await Task.sleep(for: interval)
            } catch is CancellationError {
                await connection?.close()
                throw CancellationError()
            } catch {
                // The database is away: wait and try again on a fresh connection.
                if let broken = connection, broken.isBroken { await broken.close() }
                if connection?.isBroken == true { connection = nil }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Whether `connection` reaches the same server session statement after statement: a pooler in
    /// transaction mode hands each statement to any backend, which breaks session advisory locks (two
    /// instances would both "hold" the lock).
    public func hasStableSession(_ lock: AdvisoryLock) async throws -> Bool {
        var pids = Set<Int>()
        for _ in 0..<3 {
            if let pid = try await lock.connection.query("SELECT pg_backend_pid() AS pid").first?.decode(Int.self, "pid") { pids.insert(pid) }
        }
        return pids.count == 1
    }
}
