import AppService
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Postgres
import SealbridgeApp
import SealbridgeConfig
import TestSupport
import Testing

let hsToken = "hs-" + String(repeating: "x", count: 40)

/// A configuration for the front door on a test database.
func testConfiguration(databaseURL: String, maxBodySize: Int = 128 * 1024 * 1024) throws -> SealbridgeConfiguration {
    try SealbridgeConfiguration.parse("""
        homeserver: {url: "http://127.0.0.1:1", server_name: localhost}
        appservice:
          port: 29999
          as_token: "as-\(String(repeating: "y", count: 40))"
          hs_token: "\(hsToken)"
          max_body_size: \(maxBodySize)
          journal: {path: "\(FileManager.default.temporaryDirectory.appendingPathComponent("sb-test-journal-\(UUID().uuidString)").path)"}
        database: {uri: "\(databaseURL)"}
        encryption: {pickle_key: "\(String(repeating: "k", count: 44))"}
        """)
}

/// A fresh database with Sealbridge's schema, and an application factory over it.
struct Harness {
    let client: PostgresClient
    let database: String
    let configuration: SealbridgeConfiguration

    static func make(maxBodySize: Int = 128 * 1024 * 1024) async throws -> Harness {
        let (client, name) = try await TestDatabase.fresh()
        try await Migrator.migrate(SealbridgeMigrations.all, on: client)
        return Harness(client: client, database: name, configuration: try testConfiguration(databaseURL: try TestDatabase.url(database: name), maxBodySize: maxBodySize))
    }

    /// A new application instance (as after a restart) on the same database.
    func application(handler: any TransactionHandler = TransactionLog()) -> some ApplicationProtocol {
        buildAppServiceApplication(
            configuration: configuration, client: client,
            pipeline: TransactionPipeline(
                configuration: configuration, client: client, handler: handler, cipher: nil, lock: nil, quarantine: nil, logger: Logger(label: "test")),
            metricsRegistry: nil, logger: Logger(label: "test"))
    }

    /// The daemon's pipeline with a quarantine (and the journal, sealed with a test key).
    func application(handler: any TransactionHandler, quarantine: TransactionQuarantine) -> some ApplicationProtocol {
        buildAppServiceApplication(
            configuration: configuration, client: client,
            pipeline: TransactionPipeline(
                configuration: configuration, client: client, handler: handler, cipher: TestSealing().cipher, lock: nil, quarantine: quarantine,
                logger: Logger(label: "test")),
            metricsRegistry: nil, logger: Logger(label: "test"))
    }

    func loggedTransactions() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await client.query("SELECT txn_id, events FROM sealbridge_transaction_log") {
            counts[try row.decode(String.self, "txn_id")] = try row.decode(Int.self, "events")
        }
        return counts
    }

    func committedTransactionIDs() async throws -> Set<String> {
        Set(try await client.query("SELECT txn_id FROM sealbridge_appservice_transactions").map { try $0.decode(String.self, "txn_id") })
    }

    func close() async {
        await TestDatabase.drop(client, database)
    }
}

let authorized: HTTPFields = [.authorization: "Bearer \(hsToken)", .contentType: "application/json"]

func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

func json(_ buffer: ByteBuffer) -> [String: String] {
    (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: String]) ?? [:]
}
