internal import CLibPQ
import Synchronization

/// One libpq connection, living on its own thread.
///
/// Every libpq call for this connection runs as a job on ``DedicatedThread``, so it never blocks
/// Swift's cooperative pool and the `PGconn` is never used by two threads at once.
public final class PostgresConnection: @unchecked Sendable {
    // @unchecked: `handle` is read and written only inside jobs on `thread`, which run one at a time;
    // `broken` and `deferred` are Mutexes.
    private let thread: DedicatedThread
    private nonisolated(unsafe) var handle: OpaquePointer?
    private let broken = Mutex(false)
    /// Statements waiting to go out with the next round trip (``enqueue(_:)``).
    let deferred = Mutex<[PostgresQuery]>([])

    private init(thread: DedicatedThread) {
        self.thread = thread
    }

    /// Whether a call found the connection dead; the pool then discards it.
    public var isBroken: Bool { broken.withLock { $0 } }

    /// Opens a connection (blocking on its own thread) and sets UTC, ISO dates and UTF-8.
    ///
    /// - Throws: `connectionFailed` with libpq's reason (never the password).
    static func connect(_ configuration: PostgresConfiguration) async throws -> PostgresConnection {
        let connection = PostgresConnection(thread: DedicatedThread(name: "sealbridge-postgres"))
        let connectionString = configuration.connectionString
        let timeout = configuration.statementTimeout.map { timeout in
            "; SET statement_timeout = \(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)"
        } ?? ""
        do {
            try await connection.run(requiringHandle: false) { _ throws(PostgresError) in
                let conn = PQconnectdb(connectionString)
                guard let conn, PQstatus(conn) == CONNECTION_OK else {
                    let reason = conn.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
                    PQfinish(conn)
                    throw PostgresError(
                        code: .connectionFailed,
                        message: "cannot connect to \(configuration.redactedDescription): \(reason.trimmingTrailingWhitespace)")
                }
                connection.handle = conn
                PQsetClientEncoding(conn, "UTF8")
                let setup = PQexec(conn, "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET client_min_messages = warning" + timeout)
                defer { PQclear(setup) }
                guard PQresultStatus(setup) == PGRES_COMMAND_OK else {
                    throw PostgresError(code: .connectionFailed, message: "session setup failed: \(String(cString: PQerrorMessage(conn)))")
                }
            }
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// Runs `body` on the connection's thread and returns its result.
    ///
    /// - Parameter requiringHandle: False only for the job that opens the connection; every other job
    ///   fails with `connectionLost` once the connection was closed.
    func run<T: Sendable>(
        requiringHandle: Bool = true, _ body: @escaping @Sendable (OpaquePointer?) throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        let result: Result<T, PostgresError> = await withCheckedContinuation { continuation in
            thread.submit { [self] in
                let handle = self.handle
                guard handle != nil || !requiringHandle else {
                    continuation.resume(returning: .failure(PostgresError(code: .connectionLost, message: "connection is closed")))
                    return
                }
                let result = Result { () throws(PostgresError) -> T in try body(handle) }
                if case .failure(let error) = result, error.code == .connectionLost || (self.handle.map { PQstatus($0) != CONNECTION_OK } ?? false) {
                    self.broken.withLock { $0 = true }
                }
                continuation.resume(returning: result)
            }
        }
        return try result.get()
    }

    /// Runs `query` and returns its rows.
    ///
    /// Statements queued with ``enqueue(_:)`` go out first, in the same round trip.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws(PostgresError) -> [PostgresRow] {
        let pending = takeDeferred()
        if !pending.isEmpty { return try await sendAfter(pending, query).rows }
        return try await run { conn throws(PostgresError) in
            let result = try Self.exec(conn!, query)
            defer { PQclear(result) }
            return Self.rows(of: result)
        }
    }

    /// Runs `query` and returns how many rows it affected.
    ///
    /// Statements queued with ``enqueue(_:)`` go out first, in the same round trip.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws(PostgresError) -> Int {
        let pending = takeDeferred()
        if !pending.isEmpty { return try await sendAfter(pending, query).count }
        return try await run { conn throws(PostgresError) in
            let result = try Self.exec(conn!, query)
            defer { PQclear(result) }
            return Int(String(cString: PQcmdTuples(result))) ?? 0
        }
    }

    /// Runs SQL text that may hold several statements and no parameters (migrations).
    public func executeScript(_ sql: String) async throws(PostgresError) {
        try await flushDeferred()
        try await run { conn throws(PostgresError) in
            let result = PQexec(conn, sql)
            defer { PQclear(result) }
            try Self.check(conn!, result)
        }
    }

    /// Closes the connection and stops its thread.
    public func close() async {
        let _: Void? = try? await run({ conn in
            PQfinish(conn)
            self.handle = nil
        })
        broken.withLock { $0 = true }
        thread.stop()
    }
}

extension PostgresConnection {
    /// Sends one statement with bound parameters and waits for its result.
    static func exec(_ conn: OpaquePointer, _ query: PostgresQuery) throws(PostgresError) -> OpaquePointer? {
        try query.checkStorable()
        let result = withParameters(query.binds) { count, types, values, lengths, formats in
            PQexecParams(conn, query.sql, count, types, values, lengths, formats, 0)
        }
        try check(conn, result)
        return result
    }

    /// Calls `body` with the C arrays libpq wants for `binds`, valid only during the call.
    static func withParameters<R>(
        _ binds: [PostgresBind],
        _ body: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
    ) -> R {
        let types = binds.map { Oid($0.type.rawValue) }
        let lengths = binds.map { Int32($0.value?.count ?? 0) }
        let formats = binds.map { Int32($0.isBinary ? 1 : 0) }
        // Text parameters must be NUL-terminated; binary ones are read by length.
        let buffers: [UnsafeMutablePointer<CChar>?] = binds.map { bind in
            guard let value = bind.value else { return nil }
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: value.count + 1)
            value.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: value.count) }
            }
            buffer[value.count] = 0
            return buffer
        }
        defer { for buffer in buffers { buffer?.deallocate() } }
        let values = buffers.map { UnsafePointer($0) }
        return body(Int32(binds.count), types, values, lengths, formats)
    }

    /// Throws the right error unless `result` is a success.
    static func check(_ conn: OpaquePointer, _ result: OpaquePointer?) throws(PostgresError) {
        let status = result.map(PQresultStatus) ?? PGRES_FATAL_ERROR
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_PIPELINE_SYNC:
            return
        default:
            if PQstatus(conn) != CONNECTION_OK {
                throw PostgresError(code: .connectionLost, message: "connection lost: \(String(cString: PQerrorMessage(conn)).trimmingTrailingWhitespace)")
            }
            let message = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "M"))) }.map { String(cString: $0) }
                ?? String(cString: PQerrorMessage(conn)).trimmingTrailingWhitespace
            let sqlState = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
            if status == PGRES_PIPELINE_ABORTED {
                throw PostgresError(code: .server, message: "statement skipped: an earlier statement in the pipeline failed")
            }
            throw PostgresError(code: .server, message: message, sqlState: sqlState)
        }
    }

    static func rows(of result: OpaquePointer?) -> [PostgresRow] {
        guard let result else { return [] }
        let rowCount = PQntuples(result), columnCount = PQnfields(result)
        guard rowCount > 0 else { return [] }
        let columns = PostgresColumns(names: (0..<columnCount).map { String(cString: PQfname(result, $0)) })
        var rows: [PostgresRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                values.append(PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column)))
            }
            rows.append(PostgresRow(columns: columns, values: values))
        }
        return rows
    }
}

extension String {
    var trimmingTrailingWhitespace: String {
        var copy = self
        while let last = copy.last, last.isWhitespace { copy.removeLast() }
        return copy
    }
}
