/// One numbered schema change. Versions are applied in order, once, and never edited after release.
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Applies pending ``Migration``s at start, all in one transaction, and records them.
public enum Migrator {
    /// The table recording applied versions.
    public static let table = "sealbridge_schema_migrations"
    /// Transaction-level advisory lock key that serialises concurrent migrators.
    static let lockKey: Int64 = 0x5EA1_B41D_0000_0001

    /// Applies the migrations not yet recorded; returns the versions applied now (empty when up to date).
    ///
    /// - Throws: `migration` if the list has duplicate versions, or the database has a version newer
    ///   than any known here (a downgrade: this build would misread the schema); any SQL error rolls
    ///   back every migration of this run.
    @discardableResult
    public static func migrate(_ migrations: [Migration], on client: PostgresClient) async throws -> [Int] {
        let sorted = migrations.sorted { $0.version < $1.version }
        guard Set(sorted.map(\.version)).count == sorted.count else {
            throw PostgresError(code: .migration, message: "duplicate migration versions")
        }
        return try await client.withTransaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))")
            try await connection.executeScript("""
                CREATE TABLE IF NOT EXISTS \(table) (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let applied = Set(try await connection.query("SELECT version FROM \(unescaped: table)").map { try $0.decode(Int.self, "version") })
            if let newest = applied.max(), newest > (sorted.last?.version ?? 0) {
                throw PostgresError(
                    code: .migration,
                    message: "database schema version \(newest) is newer than this build knows (\(sorted.last?.version ?? 0)); refusing to downgrade")
            }
            var done: [Int] = []
            for migration in sorted where !applied.contains(migration.version) {
                do {
                    try await connection.executeScript(migration.sql)
                } catch let error as PostgresError {
                    throw PostgresError(
                        code: error.code, message: "migration \(migration.version) (\(migration.name)) failed: \(error.message)",
                        sqlState: error.sqlState)
                }
                try await connection.execute("INSERT INTO \(unescaped: table) (version, name) VALUES (\(migration.version), \(migration.name))")
                done.append(migration.version)
            }
            return done
        }
    }
}
