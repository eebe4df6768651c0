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
    /// A standby instance waits here while the active one runs, and takes over when it stops.
    public func advisoryLock(key: Int64, pollEvery interval: Duration = .seconds(1)) async throws -> AdvisoryLock {
        while true {
            if let lock = try await tryAdvisoryLock(key: key) { return lock }
            try await Task.sleep(for: interval)
        }
    }
}
