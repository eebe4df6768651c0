internal import CLibPQ

/// Writes that ride along with the next round trip.
///
/// A transaction's writes rarely need an answer one by one: the appservice path writes its log row,
/// the crypto changes and the bridge API's deliveries, and then commits. Sent one statement (or one
/// pipeline) at a time, each costs a round trip to PostgreSQL while the homeserver waits for the 200;
/// queued, they go out together with the next statement that needs an answer, or with COMMIT — one
/// pipeline, one sync. Errors are not lost: the first failing statement's error is thrown by the call
/// that sent it (the next query, or ``commit()``), and the transaction is rolled back as before.
extension PostgresConnection {
    /// Queues `statements` to be sent, in order, before the next statement on this connection.
    ///
    /// Only for writes inside a transaction whose outcome the caller learns at COMMIT. Reads on this
    /// connection see them (they are sent first). A statement with text PostgreSQL cannot store is
    /// refused here, where the caller can tell which.
    public func enqueue(_ statements: [PostgresQuery]) throws(PostgresError) {
        guard !statements.isEmpty else { return }
        for statement in statements { try statement.checkStorable() }
        deferred.withLock { $0 += statements }
    }

    /// Sends what is queued and COMMIT in one pipeline.
    ///
    /// - Throws: The first failing statement's error (COMMIT is then skipped by the server and the
    ///   transaction stays open, aborted: the caller rolls back).
    public func commit() async throws(PostgresError) {
        _ = try await sendAfter(takeDeferred(), "COMMIT")
    }

    /// Forgets what is queued (the transaction is being rolled back).
    public func discardDeferred() {
        deferred.withLock { $0.removeAll() }
    }

    /// Whether statements are waiting for the next round trip.
    var hasDeferred: Bool { deferred.withLock { !$0.isEmpty } }

    func takeDeferred() -> [PostgresQuery] {
        deferred.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
    }

    /// Sends what is queued now, in one pipeline, and waits for PostgreSQL to have run it.
    ///
    /// For a caller with work of its own left before COMMIT: started as a concurrent task
    /// (`async let`), PostgreSQL writes the queued rows on one core while the caller computes on the
    /// others, instead of after it. Errors are thrown here, as ``commit()`` would throw them.
    public func sendQueued() async throws(PostgresError) {
        try await flushDeferred()
    }

    /// Sends what is queued on its own (before a call that does not take part in the pipeline).
    func flushDeferred() async throws(PostgresError) {
        let pending = takeDeferred()
        guard !pending.isEmpty else { return }
        try await run { conn throws(PostgresError) in
            var start = 0
            while start < pending.count {
                let chunk = pending[start..<min(start + Self.pipelineChunk, pending.count)]
                _ = try Self.sendPipeline(conn!, chunk)
                start += chunk.count
            }
        }
    }

    /// Sends `pending` then `final` as one pipeline (several when long) and returns `final`'s answer.
    func sendAfter(_ pending: [PostgresQuery], _ final: PostgresQuery) async throws(PostgresError) -> (count: Int, rows: [PostgresRow]) {
        try final.checkStorable()
        return try await run { conn throws(PostgresError) in
            let all = pending + [final]
            var start = 0, count = 0
            var rows: [PostgresRow] = []
            while start < all.count {
                let chunk = all[start..<min(start + Self.pipelineChunk, all.count)]
                let isLast = chunk.endIndex == all.endIndex
                let counts = try withUnsafeMutablePointer(to: &rows) { pointer throws(PostgresError) in
                    try Self.sendPipeline(conn!, chunk, lastRows: isLast ? pointer : nil)
                }
                if isLast { count = counts.last ?? 0 }
                start += chunk.count
            }
            return (count, rows)
        }
    }
}
