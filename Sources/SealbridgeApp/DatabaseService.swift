import AppService
import Logging
import Postgres
import ServiceLifecycle
import Store

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

/// Watches the instance lock every second. If its connection dies (a database restart, a killed
/// session) another process may take over, so this one stops writing at once: the fencing epoch is
/// revoked (`/health` says standby, crypto steps refuse) and transactions are held, then journaled. After ``yieldFor`` (so that a waiting standby wins the lock) it waits for the lock on
/// one connection; once it has it and a new epoch, processing resumes (and the journal is applied)
/// without a restart. While another instance holds the lock, this one stays on standby.
struct InstanceLockService: Service {
    let client: PostgresClient
    let key: Int64
    let initial: AdvisoryLock
    /// Revoked at once when the lock is lost; a new epoch is taken with the lock.
    let fence: InstanceFence
    let holder: String
    let logger: Logger
    var interval: Duration = .seconds(1)
    /// How long an instance that lost its lock waits before asking for it again: a standby (which asks
    /// every second) takes over first; with none, this instance resumes after the wait.
    var yieldFor: Duration = .seconds(3)

    /// The lock currently held (replaced when it is taken again).
    actor Held {
        var lock: AdvisoryLock
        init(_ lock: AdvisoryLock) { self.lock = lock }
        func replace(_ new: AdvisoryLock) { lock = new }
    }

    func run() async throws {
        let held = Held(initial)
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                if await held.lock.isHeld() { continue }
                fence.revoke()
                logger.error("lost the PostgreSQL instance lock (database restart or killed session); standby until it is taken again")
                try await Task.sleep(for: yieldFor)
                await held.replace(try await retake())
                logger.notice("took the instance lock again; resuming", metadata: ["epoch": "\(fence.epoch.map(String.init) ?? "?")"])
            }
        }
        await held.lock.release()
    }

    /// Waits (on one connection) until the lock is ours again and takes a new fencing epoch
    /// (cancellable by shutdown).
    func retake() async throws -> AdvisoryLock {
        var delay = Duration.milliseconds(500)
        while true {
            let logger = logger
            let lock = try await client.advisoryLock(key: key, pollEvery: interval) {
                logger.warning("another Sealbridge instance holds the lock now; this one stays on standby")
            }
            do {
                try await fence.takeOver(client: client, holder: holder)
                return lock
            } catch {
                logger.warning("took the lock but not a fencing epoch; trying again", metadata: ["error": "\(error)"])
                await lock.release()
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}
