import Postgres
import TestSupport
import Testing

@Suite("Migrations, advisory locks, reconnection")
struct MigrationAndLockTests {
    @Test("migrations apply once, in order, in one transaction; a second run applies nothing; downgrade refused")
    func migrations() async throws {
        let (client, database) = try await TestDatabase.fresh()
        let table = TestDatabase.table("mig")
        let first = [
            Migration(version: 1, name: "create", sql: "CREATE TABLE \(table) (id int8); CREATE INDEX ON \(table) (id)"),
            Migration(version: 2, name: "column", sql: "ALTER TABLE \(table) ADD COLUMN name text"),
        ]
        #expect(try await Migrator.migrate(first.reversed(), on: client) == [1, 2])
        #expect(try await Migrator.migrate(first, on: client) == [])
        try await client.execute("INSERT INTO \(unescaped: table) (id, name) VALUES (\(1), \("a"))")

        // A failing migration leaves nothing of its run behind.
        let broken = first + [
            Migration(version: 3, name: "ok", sql: "ALTER TABLE \(table) ADD COLUMN extra text"),
            Migration(version: 4, name: "bad", sql: "ALTER TABLE no_such_table ADD COLUMN x text"),
        ]
        await #expect { try await Migrator.migrate(broken, on: client) } throws: { "\($0)".contains("migration 4") }
        let versions = try await client.query("SELECT version FROM sealbridge_schema_migrations ORDER BY version").map { try $0.decode(Int.self, "version") }
        #expect(versions == [1, 2])
        await #expect(throws: PostgresError.self) { try await client.query("SELECT extra FROM \(unescaped: table)") }

        // This build knows only version 1 while the database has 2: refuse.
        await #expect { try await Migrator.migrate(Array(first.prefix(1)), on: client) } throws: { ($0 as? PostgresError)?.code == .migration }
        await #expect { try await Migrator.migrate([first[0], first[0]], on: client) } throws: { ($0 as? PostgresError)?.code == .migration }
        await TestDatabase.drop(client, database)
    }

    @Test("an advisory lock held by one client blocks another until released")
    func advisoryLock() async throws {
        let one = try TestDatabase.client(), two = try TestDatabase.client()
        let key = Int64.random(in: 1...Int64.max)
        let held = try #require(try await one.tryAdvisoryLock(key: key))
        #expect(await held.isHeld())
        #expect(try await two.tryAdvisoryLock(key: key) == nil)
        await held.release()
        let taken = try #require(try await two.tryAdvisoryLock(key: key))
        #expect(await taken.isHeld())
        #expect(try await one.tryAdvisoryLock(key: key) == nil)

        // A standby waiting in advisoryLock(key:) takes over when the holder goes away.
        let standby = Task { try await one.advisoryLock(key: key, pollEvery: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(200))
        await taken.release()
        let takenOver = try await standby.value
        #expect(await takenOver.isHeld())
        await takenOver.release()
        await one.close()
        await two.close()
    }

    @Test("after the server restarts, the broken call throws and later calls reconnect")
    func reconnect() async throws {
        let cluster = try PrivateCluster.start()
        defer { cluster.destroy() }
        let client = PostgresClient(configuration: PostgresConfiguration(connectionString: cluster.url, poolSize: 1, connectTimeout: .seconds(20)))
        let key = Int64.random(in: 1...Int64.max)
        let lock = try #require(try await client.tryAdvisoryLock(key: key))
        #expect(await client.ping())
        try cluster.restart()
        // The pooled connection died with the server: the first call on it reports that.
        await #expect { try await client.query("SELECT 1") } throws: {
            [.connectionLost, .connectionFailed].contains(($0 as? PostgresError)?.code)
        }
        // The next call opens a fresh connection.
        #expect(try await client.query("SELECT 41 + 1 AS n").first?.decode(Int.self, "n") == 42)
        // The lock's connection died too, so the lock is gone and says so.
        #expect(await lock.isHeld() == false)
        await lock.release()
        await client.close()
    }
}
