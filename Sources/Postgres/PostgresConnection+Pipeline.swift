internal import CLibPQ

extension PostgresConnection {
    /// Statements sent before each pipeline sync; keeps socket buffers from filling in blocking mode.
    static let pipelineChunk = 256

    /// Runs many statements in few round trips using libpq's pipeline mode.
    ///
    /// Atomic: outside a transaction the batch is wrapped in its own BEGIN/COMMIT; inside one it
    /// joins it. If any statement fails, the batch throws that statement's error (and, when the batch
    /// opened the transaction, rolls it back).
    /// - Returns: The number of rows each statement affected.
    @discardableResult
    public func pipeline(_ queries: [PostgresQuery]) async throws(PostgresError) -> [Int] {
        guard !queries.isEmpty else { return [] }
        for query in queries { try query.checkStorable() }
        // Statements queued with enqueue(_:) go first; they belong to a transaction already begun.
        let pending = takeDeferred()
        return try await run { handle throws(PostgresError) in
            let conn = handle!
            let ownsTransaction = pending.isEmpty && PQtransactionStatus(conn) == PQTRANS_IDLE
            if ownsTransaction { try Self.simple(conn, "BEGIN") }
            do throws(PostgresError) {
                var counts: [Int] = []
                counts.reserveCapacity(queries.count)
                let all = pending + queries
                var start = 0
                while start < all.count {
                    let chunk = all[start..<min(start + Self.pipelineChunk, all.count)]
                    counts += try Self.sendPipeline(conn, chunk)
                    start += chunk.count
                }
                counts.removeFirst(pending.count)
                if ownsTransaction { try Self.simple(conn, "COMMIT") }
                return counts
            } catch {
                if ownsTransaction, PQstatus(conn) == CONNECTION_OK { try? Self.simple(conn, "ROLLBACK") }
                throw error
            }
        }
    }

    static func simple(_ conn: OpaquePointer, _ sql: String) throws(PostgresError) {
        let result = PQexec(conn, sql)
        defer { PQclear(result) }
        try check(conn, result)
    }

    /// Sends `chunk` then a sync, and reads every result back, in pipeline mode.
    /// - Parameter lastRows: Receives the rows of the chunk's last statement (nil: not read).
    static func sendPipeline(
        _ conn: OpaquePointer, _ chunk: ArraySlice<PostgresQuery>, lastRows: UnsafeMutablePointer<[PostgresRow]>? = nil
    ) throws(PostgresError) -> [Int] {
        guard PQenterPipelineMode(conn) == 1 else {
            throw PostgresError(code: .server, message: "cannot enter pipeline mode: \(String(cString: PQerrorMessage(conn)))")
        }
        defer { PQexitPipelineMode(conn) }
        for query in chunk {
            let sent = withParameters(query.binds) { count, types, values, lengths, formats in
                PQsendQueryParams(conn, query.sql, count, types, values, lengths, formats, 0)
            }
            guard sent == 1 else {
                throw PostgresError(code: PQstatus(conn) == CONNECTION_OK ? .server : .connectionLost,
                    message: "pipeline send failed: \(String(cString: PQerrorMessage(conn)).trimmingTrailingWhitespace)")
            }
        }
        guard PQpipelineSync(conn) == 1 else {
            throw PostgresError(code: .connectionLost, message: "pipeline sync failed: \(String(cString: PQerrorMessage(conn)))")
        }
        var counts: [Int] = []
        var firstError: PostgresError?
        for position in chunk.indices {
            let result = PQgetResult(conn)
            if result == nil, PQstatus(conn) != CONNECTION_OK {
                throw PostgresError(code: .connectionLost, message: "connection lost during pipeline")
            }
            do {
                try check(conn, result)
                counts.append(Int(String(cString: PQcmdTuples(result))) ?? 0)
                if position == chunk.index(before: chunk.endIndex), let lastRows { lastRows.pointee = rows(of: result) }
            } catch {
                if firstError == nil || firstError?.sqlState == nil { firstError = firstError ?? error }
                counts.append(0)
            }
            PQclear(result)
            // Each statement's results end with a NULL.
            while let extra = PQgetResult(conn) { PQclear(extra) }
        }
        // The sync's own result.
        if let sync = PQgetResult(conn) { PQclear(sync) }
        if let firstError { throw firstError }
        return counts
    }
}
