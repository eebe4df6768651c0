import Postgres
import TestSupport
import Testing

struct Boom: Error {}

@Suite("Transactions, pipelines and the pool")
struct TransactionTests {
    @Test("commit keeps the rows; a thrown error rolls everything back")
    func commitAndRollback() async throws {
        let client = try TestDatabase.client()
        let table = TestDatabase.table("tx")
        try await client.execute("CREATE TABLE \(unescaped: table) (id int8)")
        try await client.withTransaction { connection in
            try await connection.execute("INSERT INTO \(unescaped: table) VALUES (\(1))")
        }
        await #expect(throws: Boom.self) {
            try await client.withTransaction { connection in
                try await connection.execute("INSERT INTO \(unescaped: table) VALUES (\(2))")
                throw Boom()
            }
        }
        let ids = try await client.query("SELECT id FROM \(unescaped: table) ORDER BY id").map { try $0.decode(Int.self, "id") }
        #expect(ids == [1])
        await client.close()
    }

    @Test("1,000 inserts in one pipeline")
    func pipeline() async throws {
        let client = try TestDatabase.client()
        let table = TestDatabase.table("pipe")
        try await client.execute("CREATE TABLE \(unescaped: table) (id int8, payload bytea)")
        let queries: [PostgresQuery] = (0..<1000).map { "INSERT INTO \(unescaped: table) VALUES (\($0), \([UInt8](repeating: UInt8($0 % 256), count: 16)))" }
        let counts = try await client.withConnection { try await $0.pipeline(queries) }
        #expect(counts == Array(repeating: 1, count: 1000))
        let total = try await client.query("SELECT count(*) AS n, sum(id) AS s FROM \(unescaped: table)").first
        #expect(try total?.decode(Int.self, "n") == 1000)
        #expect(try total?.decode(Int.self, "s") == 499_500)
        await client.close()
    }

    @Test("a failing statement fails the whole pipeline and nothing of it stays")
    func pipelineFailure() async throws {
        let client = try TestDatabase.client()
        let table = TestDatabase.table("pipefail")
        try await client.execute("CREATE TABLE \(unescaped: table) (id int8 PRIMARY KEY)")
        var queries: [PostgresQuery] = (0..<600).map { "INSERT INTO \(unescaped: table) VALUES (\($0))" }
        queries.insert("INSERT INTO \(unescaped: table) VALUES (\(5))", at: 400)  // duplicate key in the second chunk
        await #expect { try await client.withConnection { try await $0.pipeline(queries) } } throws: {
            ($0 as? PostgresError)?.sqlState == "23505"
        }
        #expect(try await client.query("SELECT count(*) AS n FROM \(unescaped: table)").first?.decode(Int.self, "n") == 0)
        // Inside a caller's transaction, the failure rolls back the caller's earlier work too.
        await #expect(throws: PostgresError.self) {
            try await client.withTransaction { connection in
                try await connection.execute("INSERT INTO \(unescaped: table) VALUES (\(1000))")
                try await connection.pipeline(["INSERT INTO \(unescaped: table) VALUES (\(1001))", "INSERT INTO \(unescaped: table) VALUES (\(1001))"])
            }
        }
        #expect(try await client.query("SELECT count(*) AS n FROM \(unescaped: table)").first?.decode(Int.self, "n") == 0)
        await client.close()
    }

    @Test("the pool never opens more than its size; a waiter gets a connection when one is returned")
    func poolBound() async throws {
        let client = try TestDatabase.client(poolSize: 2)
        let peak = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    try await client.withConnection { connection in
                        try await connection.query("SELECT pg_sleep(0.05)")
                        return await client.openConnections
                    }
                }
            }
            var peak = 0
            for try await open in group { peak = max(peak, open) }
            return peak
        }
        #expect(peak == 2)
        let backends = try await client.query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = ''")
        #expect(try backends.first?.decode(Int.self, "n") ?? 0 >= 1)
        await client.close()
        await #expect { try await client.query("SELECT 1") } throws: { ($0 as? PostgresError)?.code == .poolClosed }
    }
}
