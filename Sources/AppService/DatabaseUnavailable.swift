import Postgres

/// Whether `error` says the database (or the right to write to it) is away for now — unavailable, or
/// this instance not owning the crypto state (its lock lost, or fenced out by a newer instance) — so
/// that the transaction should wait and be journaled rather than counted as a failure of its own.
public func isDatabaseUnavailable(_ error: any Error) -> Bool {
    guard let error = error as? PostgresError else { return false }
    return error.isUnavailable || error.isFencedOut
}
