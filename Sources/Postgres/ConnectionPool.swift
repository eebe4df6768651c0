/// Hands out at most `poolSize` connections, opening them on demand and replacing broken ones.
actor ConnectionPool {
    let configuration: PostgresConfiguration
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var closed = false

    init(configuration: PostgresConfiguration) {
        self.configuration = configuration
    }

    /// A connection for exclusive use until ``release(_:)``; waits while all are busy.
    func acquire() async throws(PostgresError) -> PostgresConnection {
        while true {
            guard !closed else { throw PostgresError(code: .poolClosed, message: "the database pool is closed") }
            if let connection = idle.popLast() { return connection }
            if open < configuration.poolSize {
                open += 1
                do {
                    return try await Self.connectWithBackoff(configuration)
                } catch {
                    open -= 1
                    wakeOne()
                    throw error
                }
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    /// Returns a connection; a broken one is closed and its slot freed for a fresh connection.
    func release(_ connection: PostgresConnection) async {
        if connection.isBroken || closed {
            open -= 1
            wakeOne()
            await connection.close()
        } else {
            idle.append(connection)
            wakeOne()
        }
    }

    /// Closes idle connections now and busy ones as they come back; later acquires fail.
    func close() async {
        closed = true
        let toClose = idle
        idle.removeAll()
        open -= toClose.count
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
        for connection in toClose { await connection.close() }
    }

    var openCount: Int { open }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// Connects, retrying with backoff (100 ms doubling to 5 s) until `connectTimeout` has passed.
    ///
    /// A restart of PostgreSQL then costs callers a short wait rather than an error.
    static func connectWithBackoff(_ configuration: PostgresConfiguration) async throws(PostgresError) -> PostgresConnection {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.connectTimeout)
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try await PostgresConnection.connect(configuration)
            } catch let error as PostgresError {
                let now = clock.now
                guard now < deadline, !Task.isCancelled else { throw error }
                try? await Task.sleep(for: min(delay, now.duration(to: deadline)))
                delay = min(delay * 2, .seconds(5))
            } catch {
                throw PostgresError(code: .connectionFailed, message: "\(error)")
            }
        }
    }
}
