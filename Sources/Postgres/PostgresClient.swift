/// The daemon's handle on PostgreSQL: a bounded pool of connections on dedicated threads.
///
/// Values are bound, never spliced (see ``PostgresQuery``). A call whose connection dies throws
/// `connectionLost`; the pool drops that connection and the next call opens a new one, retrying with
/// backoff while the server comes back.
public final class PostgresClient: Sendable {
    public let configuration: PostgresConfiguration
    let pool: ConnectionPool

    public init(configuration: PostgresConfiguration) {
        self.configuration = configuration
        self.pool = ConnectionPool(configuration: configuration)
    }

    /// Runs `body` with a connection of its own, returned to the pool afterwards.
    public func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await pool.acquire()
        do {
            let result = try await body(connection)
            // Writes queued outside a transaction go out now, atomically (see ``PostgresConnection/enqueue(_:)``).
            try await connection.flushDeferred()
            await pool.release(connection)
            return result
        } catch {
            connection.discardDeferred()
            await pool.release(connection)
            throw error
        }
    }

    /// Runs `body` inside BEGIN … COMMIT; any error (cancellation included) rolls back and is rethrown.
    ///
    /// If COMMIT itself fails, nothing was committed unless the connection died mid-COMMIT, in which case
    /// the outcome is unknown to us: callers that must know (appservice txn ids) record an idempotency key
    /// in the same transaction and check it on retry.
    public func withTransaction<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            // BEGIN goes out with the body's first statement, and its queued writes with COMMIT: a
            // transaction that only writes costs one round trip more than its reads.
            try connection.enqueue(["BEGIN"])
            do {
                let result = try await body(connection)
                try await connection.commit()
                return result
            } catch {
                connection.discardDeferred()
                if !connection.isBroken { _ = try? await connection.execute("ROLLBACK") }
                throw error
            }
        }
    }

    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await withConnection { try await $0.query(query) }
    }

    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await withConnection { try await $0.execute(query) }
    }

    /// Whether the database answers `SELECT 1` (for `/health`).
    public func ping() async -> Bool {
        (try? await query("SELECT 1 AS ok").first?.decode(Int.self, "ok")) == 1
    }

    /// Connections currently open (idle or in use).
    public var openConnections: Int {
        get async { await pool.openCount }
    }

    /// Closes the pool: idle connections now, busy ones when they are returned.
    public func close() async {
        await pool.close()
    }
}
