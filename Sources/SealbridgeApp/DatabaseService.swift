import Postgres
import ServiceLifecycle

/// Keeps the database pool open while the daemon runs and closes it last on shutdown.
///
/// Placed first in the ``ServiceGroup`` so that it shuts down after the HTTP server has finished
/// its in-flight transactions.
struct DatabaseService: Service {
    let client: PostgresClient

    func run() async throws {
        try? await gracefulShutdown()
        await client.close()
    }
}

/// Watches the instance lock; if its connection is lost another process may take over, so this one
/// must stop writing crypto state at once: it ends the service group with an error.
struct InstanceLockService: Service {
    struct LockLost: Error, CustomStringConvertible {
        var description: String { "lost the PostgreSQL advisory lock that makes this the only instance; stopping" }
    }

    let lock: AdvisoryLock
    var interval: Duration = .seconds(5)

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: interval)
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            guard await lock.isHeld() else { throw LockLost() }
        }
        await lock.release()
    }
}
