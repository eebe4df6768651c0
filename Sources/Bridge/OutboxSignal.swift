/// Wakes long-polling consumers when deliveries were committed.
///
/// A generation counter closes the gap between "no rows yet" and "start waiting": a waiter passes
/// the generation it read before its query and returns at once if a commit happened since.
public actor OutboxSignal {
    private var generation: UInt64 = 0
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0

    public init() {}

    public var current: UInt64 { generation }

    /// The highest delivery id a long-poll returned (this process's, or the stored one once read).
    public private(set) var handedOut: Int64 = 0

    func handOut(through id: Int64) { handedOut = max(handedOut, id) }

    public func notify() {
        generation &+= 1
        let woken = waiters
        waiters = [:]
        for continuation in woken.values { continuation.resume() }
    }

    /// Returns after the next ``notify()`` (or at once if one came after `seen`), after `timeout`,
    /// or when the waiting task is cancelled (so a shutdown does not wait out a long-poll).
    public func wait(since seen: UInt64, timeout: Duration) async {
        guard generation == seen else { return }
        let id = nextWaiter
        nextWaiter &+= 1
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Cancelled before we got here: the handler below found no waiter to wake.
                if Task.isCancelled {
                    continuation.resume()
                    return
                }
                waiters[id] = continuation
                Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.expire(id)
                }
            }
        } onCancel: {
            Task { await self.expire(id) }
        }
    }

    private func expire(_ id: UInt64) {
        waiters.removeValue(forKey: id)?.resume()
    }
}
