/// Mutual exclusion for async code; waiters are resumed in arrival order.
///
/// The crypto pipeline needs a lock held across suspension points (a machine call, then the commit of
/// its changes), which `Mutex` and `NIOLock` cannot do.
public actor AsyncLock {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            held = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Runs `body` with the lock held; the lock is released however `body` ends.
    public nonisolated func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}

/// One ``AsyncLock`` per key (a room), created on first use and dropped when nobody holds or waits.
public actor KeyedAsyncLock<Key: Hashable & Sendable> {
    private var locks: [Key: (lock: AsyncLock, users: Int)] = [:]

    public init() {}

    private func checkOut(_ key: Key) -> AsyncLock {
        let entry = locks[key] ?? (AsyncLock(), 0)
        locks[key] = (entry.lock, entry.users + 1)
        return entry.lock
    }

    private func checkIn(_ key: Key) {
        guard let entry = locks[key] else { return }
        locks[key] = entry.users <= 1 ? nil : (entry.lock, entry.users - 1)
    }

    public nonisolated func withLock<T: Sendable>(_ key: Key, _ body: () async throws -> T) async throws -> T {
        let lock = await checkOut(key)
        do {
            let result = try await lock.withLock(body)
            await checkIn(key)
            return result
        } catch {
            await checkIn(key)
            throw error
        }
    }
}
