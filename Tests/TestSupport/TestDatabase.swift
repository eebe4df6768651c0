import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Postgres

/// The throwaway cluster `scripts/test` starts (see scripts/pg-test-cluster).
public enum TestDatabase {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "SEALBRIDGE_TEST_DATABASE_URL is not set: run the tests with scripts/test, or run "
                + "`scripts/pg-test-cluster start DIR` and export SEALBRIDGE_TEST_DATABASE_URL=$(cat DIR/url)"
        }
    }

    public static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SEALBRIDGE_TEST_DATABASE_URL"], !url.isEmpty else { throw Missing() }
        return url
    }

    public static func client(poolSize: Int = 4, connectTimeout: Duration = .seconds(10)) throws -> PostgresClient {
        PostgresClient(configuration: PostgresConfiguration(connectionString: try url(), poolSize: poolSize, connectTimeout: connectTimeout))
    }

    /// A new, empty database for one test, and a client for it; drop it with ``drop(_:)``.
    ///
    /// Tests that own whole-database state (migrations, the appservice txn table) use one each, so they
    /// can run in parallel with everything else.
    public static func fresh(poolSize: Int = 4) async throws -> (client: PostgresClient, name: String) {
        let name = "sb_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try client(poolSize: 1)
        try await admin.execute("CREATE DATABASE \(unescaped: name)")
        await admin.close()
        let base = try url()
        let url = base[..<base.lastIndex(of: "/")!] + "/" + name
        return (PostgresClient(configuration: PostgresConfiguration(connectionString: String(url), poolSize: poolSize)), name)
    }

    /// The connection string of database `name` on the test cluster.
    public static func url(database name: String) throws -> String {
        let base = try url()
        return String(base[..<base.lastIndex(of: "/")!]) + "/" + name
    }

    /// Closes `client` and drops its database.
    public static func drop(_ client: PostgresClient, _ name: String) async {
        await client.close()
        guard let admin = try? TestDatabase.client(poolSize: 1) else { return }
        _ = try? await admin.execute("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)")
        await admin.close()
    }

    /// A table name unique to one test, so suites can run in parallel.
    public static func table(_ prefix: String) -> String {
        "t_\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
    }

    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `scripts/pg-test-cluster <arguments>` and waits for it.
    ///
    /// Spawned with posix_spawn and reaped with waitpid: Foundation's `Process.waitUntilExit` was seen
    /// to miss this child's exit here (pg_ctl leaves a daemon behind) and hang.
    static func clusterScript(_ arguments: [String]) throws {
        let script = packageRoot.appendingPathComponent("scripts/pg-test-cluster").path
        var argv: [UnsafeMutablePointer<CChar>?] = ([script] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, script, nil, nil, &argv, environ) == 0 else { throw ClusterError(arguments: arguments) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else { throw ClusterError(arguments: arguments) }
    }

    struct ClusterError: Error, CustomStringConvertible {
        var arguments: [String]
        var description: String { "scripts/pg-test-cluster \(arguments.joined(separator: " ")) failed" }
    }
}

/// A PostgreSQL cluster of a test's own, for tests that stop or restart the server and so must not
/// disturb the shared one other suites use in parallel.
public struct PrivateCluster: Sendable {
    public let directory: String
    public let url: String

    /// Creates and starts a cluster in a new temporary directory (about a second).
    public static func start() throws -> PrivateCluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sealbridge-pg-\(UUID().uuidString)").path
        try TestDatabase.clusterScript(["start", directory])
        let url = try String(contentsOfFile: directory + "/url", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return PrivateCluster(directory: directory, url: url)
    }

    public func restart() throws {
        try TestDatabase.clusterScript(["restart", directory])
    }

    /// Stops the server and deletes its files.
    public func destroy() {
        try? TestDatabase.clusterScript(["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }
}
