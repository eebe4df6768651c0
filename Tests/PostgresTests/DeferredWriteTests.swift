import Postgres
import TestSupport
import Testing

@Suite("Writes queued for the next round trip")
struct DeferredWriteTests {
    @Test("queued writes are seen by the transaction's next read and committed with COMMIT, in order")
    func queuedThenRead() async throws {
        let client = try TestDatabase.client()
        let table = TestDatabase.table("deferred")
        try await client.execute("CREATE TABLE \(unescaped: table) (id int8 PRIMARY KEY, seq bigserial)")
        let seen = try await client.withTransaction { connection in
            try connection.enqueue((0..<300).map { "INSERT INTO \(unescaped: table) (id) VALUES (\($0))" })
            // The read goes out after the queued writes, in the same pipeline.
            return try await connection.query("SELECT count(*) AS n FROM \(unescaped: table)").first?.decode(Int.self, "n")
        }
        #expect(seen == 300)
        try await client.withTransaction { connection in
            try connection.enqueue(["INSERT INTO \(unescaped: table) (id) VALUES (\(1000))", "INSERT INTO \(unescaped: table) (id) VALUES (\(999))"])
        }
        let ids = try await client.query("SELECT id FROM \(unescaped: table) ORDER BY seq").map { try $0.decode(Int.self, "id") }
        #expect(ids == Array(0..<300) + [1000, 999])
        await client.close()
    }

    @Test("a queued write that fails at COMMIT fails the transaction and leaves nothing of it")
    func failureAtCommit() async throws {
        let client = try TestDatabase.client()
        let table = TestDatabase.table("deferredfail")
        try await client.execute("CREATE TABLE \(unescaped: table) (id int8 PRIMARY KEY)")
        await #expect { 
            try await client.withTransaction { connection in
                try await connection.execute("INSERT INTO \(unescaped: table) VALUES (\(1))")
                try connection.enqueue(["INSERT INTO \(unescaped: table) VALUES (\(2))", "INSERT INTO \(unescaped: table) VALUES (\(1))"])
            }
        } throws: { ($0 as? PostgresError)?.sqlState == "23505" }
        #expect(try await client.query("SELECT count(*) AS n FROM \(unescaped: table)").first?.decode(Int.self, "n") == 0)
        // The pooled connection comes back clean: nothing queued or left open leaks into the next use.
        try await client.withTransaction { connection in
            try connection.enqueue(["INSERT INTO \(unescaped: table) VALUES (\(3))"])
        }
        let ids = try await client.query("SELECT id FROM \(unescaped: table) ORDER BY id").map { try $0.decode(Int.self, "id") }
        #expect(ids == [3])
        await client.close()
    }

    @Test("sendQueued runs what is queued at once, inside the transaction, and throws its error itself")
    func sendQueuedNow() async throws {
        let client = try TestDatabase.client(poolSize: 2)
        let table = TestDatabase.table("deferredsend")
        try await client.execute("CREATE TABLE \(unescaped: table) (id int8 PRIMARY KEY)")
        // A backend gets a transaction id with its first write: seen from another connection, that
        // tells whether a queued write has reached PostgreSQL yet.
        func hasWritten(_ pid: Int) async throws -> Bool {
            try await client.query("SELECT backend_xid IS NOT NULL AS wrote FROM pg_stat_activity WHERE pid = \(pid)").first?.decode(Bool.self, "wrote") == true
        }
        try await client.withTransaction { connection in
            let pid = try await connection.query("SELECT pg_backend_pid() AS pid").first!.decode(Int.self, "pid")
            try connection.enqueue(["INSERT INTO \(unescaped: table) VALUES (\(1))"])
            #expect(try await !hasWritten(pid))
            try await connection.sendQueued()
            #expect(try await hasWritten(pid))
            // Not committed: invisible outside until COMMIT.
            #expect(try await client.query("SELECT count(*) AS n FROM \(unescaped: table)").first?.decode(Int.self, "n") == 0)
            try connection.enqueue(["INSERT INTO \(unescaped: table) VALUES (\(2))"])
        }
        var thrownBySend = false
        await #expect {
            try await client.withTransaction { connection in
                try connection.enqueue(["INSERT INTO \(unescaped: table) VALUES (\(3))", "INSERT INTO \(unescaped: table) VALUES (\(1))"])
                do {
                    try await connection.sendQueued()
                } catch {
                    thrownBySend = true
                    throw error
                }
            }
        } throws: { ($0 as? PostgresError)?.sqlState == "23505" }
        #expect(thrownBySend)
        let ids = try await client.query("SELECT id FROM \(unescaped: table) ORDER BY id").map { try $0.decode(Int.self, "id") }
        #expect(ids == [1, 2])
        await client.close()
    }

    @Test("an error thrown by the caller discards what it queued")
    func thrownErrorDiscards() async throws {
        let client = try TestDatabase.client(poolSize: 1)
        let table = TestDatabase.table("deferredthrow")
        try await client.execute("CREATE TABLE \(unescaped: table) (id int8)")
        await #expect(throws: Boom.self) {
            try await client.withTransaction { connection in
                try connection.enqueue(["INSERT INTO \(unescaped: table) VALUES (\(1))"])
                throw Boom()
            }
        }
        // The same (only) connection runs the next statement: the discarded insert must not ride along.
        try await client.execute("INSERT INTO \(unescaped: table) VALUES (\(2))")
        let ids = try await client.query("SELECT id FROM \(unescaped: table) ORDER BY id").map { try $0.decode(Int.self, "id") }
        #expect(ids == [2])
        await client.close()
    }

    @Test("text PostgreSQL cannot store is refused when queued, not later")
    func unstorableRefusedAtOnce() async throws {
        let client = try TestDatabase.client()
        try await client.withTransaction { connection in
            #expect(throws: PostgresError.self) { try connection.enqueue(["SELECT \("a\u{0}b")"]) }
        }
        await client.close()
    }
}
