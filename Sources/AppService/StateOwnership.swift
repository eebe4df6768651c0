import Postgres
import Synchronization

/// Whether this process may write crypto state now: it holds the instance lock. While it does not
/// (the lock's connection died with a database restart, and is being taken again), transactions are
/// held and then journaled like during any database outage, never processed.
public final class StateOwnership: Sendable {
    private let owned: Mutex<Bool>

    public init(owned: Bool = true) {
        self.owned = Mutex(owned)
    }

    public var isOwned: Bool { owned.withLock { $0 } }

    public func set(_ value: Bool) { owned.withLock { $0 = value } }
}

/// The instance lock is not held at the moment: retry later (the transaction is held, then journaled).
public struct StateNotOwned: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "this instance does not hold the instance lock at the moment" }
}

/// Whether `error` says the database (or the right to write to it) is away for now — unavailable,
/// the instance lock not held, or the write fenced out by a newer instance — so that the transaction
/// should wait and be journaled rather than counted as a failure of its own.
public func isDatabaseUnavailable(_ error: any Error) -> Bool {
    if let error = error as? PostgresError { return error.isUnavailable || error.isFencedOut }
    return error is StateNotOwned
}
