import Synchronization

/// The fencing token that proves, inside every write of crypto state, that this instance still owns
/// it — not only at startup.
///
/// Whoever takes the instance lock increments the epoch (``takeOver(client:holder:)``); every
/// `PostgresCryptoStore` write then starts with `sealbridge_check_epoch(mine)`, which refuses the
/// write before COMMIT once another instance has taken a newer epoch (`fenced_out`). The check takes
/// the epoch row `FOR SHARE`, so a takeover waits for writes already in flight and the old instance's
/// next write fails: two instances never both advance a ratchet. While the instance does not own the
/// state (``epoch`` nil: the lock was lost and not taken back) writes are refused without asking the
/// database, transactions are held and journaled, and `/health` says standby. It is the one record
/// of whether this instance owns the state.
public final class InstanceFence: Sendable {
    private let current = Mutex<Int64?>(nil)

    public init(epoch: Int64? = nil) {
        current.withLock { $0 = epoch }
    }

    /// The epoch this instance holds, nil while it does not own the state.
    public var epoch: Int64? { current.withLock { $0 } }

    /// Stops every write at once (the lock was lost).
    public func revoke() { current.withLock { $0 = nil } }

    /// Takes a new epoch; call with the instance lock held.
    /// - Returns: The new epoch.
    @discardableResult
    public func takeOver(client: PostgresClient, holder: String) async throws -> Int64 {
        let epoch = try await client.query("""
            UPDATE sealbridge_instance SET epoch = epoch + 1, holder = \(holder.storableHolder), taken_at = now() WHERE id = 1 RETURNING epoch
            """).first?.decode(Int64.self, "epoch") ?? 0
        current.withLock { $0 = epoch }
        return epoch
    }

    /// Whether this instance owns the crypto state now.
    public var owns: Bool { epoch != nil }

    /// The statement that opens every write of crypto state.
    /// - Throws: `fencedOut` while this instance does not own the state.
    public func check() throws(PostgresError) -> PostgresQuery {
        guard let epoch else {
            throw PostgresError(code: .fencedOut, message: "this instance does not own the crypto state (no fencing epoch)")
        }
        return "SELECT sealbridge_check_epoch(\(epoch))"
    }
}

extension String {
    fileprivate var storableHolder: String { String(unicodeScalars.filter { $0.value >= 0x20 }.prefix(200)) }
}
