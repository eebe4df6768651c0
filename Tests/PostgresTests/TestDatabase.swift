import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Postgres
import Testing

/// The throwaway cluster `scripts/test` starts (see scripts/pg-test-cluster).
enum TestDatabase {
    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "SEALBRIDGE_TEST_DATABASE_URL is not set: run the tests with scripts/test, or run "
                + "`scripts/pg-test-cluster start DIR` and export SEALBRIDGE_TEST_DATABASE_URL and SEALBRIDGE_TEST_PG_DIR=DIR"
        }
    }

    static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SEALBRIDGE_TEST_DATABASE_URL"], !url.isEmpty else { throw Missing() }
        return url
    }

    static func client(poolSize: Int = 4, connectTimeout: Duration = .seconds(10)) throws -> PostgresClient {
        PostgresClient(configuration: PostgresConfiguration(connectionString: try url(), poolSize: poolSize, connectTimeout: connectTimeout))
    }

    /// A table name unique to one test, so suites can run in parallel.
    static func table(_ prefix: String) -> String {
        "t_\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
    }

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Restarts the test cluster with scripts/pg-test-cluster.
    ///
    /// Spawned with posix_spawn and reaped with waitpid: Foundation's `Process.waitUntilExit` was seen
    /// to miss this child's exit here (pg_ctl leaves a daemon behind) and hang.
    static func restartServer() throws {
        guard let dir = ProcessInfo.processInfo.environment["SEALBRIDGE_TEST_PG_DIR"] else { throw Missing() }
        let script = packageRoot.appendingPathComponent("scripts/pg-test-cluster").path
        let arguments = [script, "restart", dir]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, script, nil, nil, &argv, environ)
        #expect(spawned == 0)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        #expect(status == 0, "pg-test-cluster restart failed with status \(status)")
    }
}
