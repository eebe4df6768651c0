extension Migrator {
    /// The versions recorded as applied, ascending; empty when the database was never migrated.
    /// Reads only: `sealbridge doctor` runs it next to a running daemon.
    public static func appliedVersions(on client: PostgresClient) async throws -> [Int] {
        let exists = try await client.query("SELECT to_regclass(\(table)) IS NOT NULL AS present").first?.decode(Bool.self, "present") ?? false
        guard exists else { return [] }
        return try await client.query("SELECT version FROM \(unescaped: table) ORDER BY version").map { try $0.decode(Int.self, "version") }
    }
}
