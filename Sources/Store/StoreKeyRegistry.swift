import Foundation
import MatrixCrypto
import Postgres

/// Which store keys may still have rows (`sealbridge_store_keys`, migration 33), so that a daemon
/// missing one refuses to start instead of failing on the first row it cannot open.
///
/// Every writer records its key id before it writes: the daemon when it takes over the state,
/// `rotate-pickle-key` for its target. Only a rotation that left no row under any other key removes
/// the other ids. Version-1 rows (written before key ids) are not listed: they are tried with every
/// configured key when read.
public struct StoreKeyRegistry: Sendable {
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    /// Key ids listed in the database that `cipher` does not hold, sorted.
    public func missing(from cipher: StoreCipher) async throws -> [String] {
        try await client.query("""
            SELECT key_id FROM sealbridge_store_keys WHERE NOT (key_id = ANY(\(PostgresTextArray(cipher.keyIDs)))) ORDER BY key_id
            """).map { try $0.decode(String.self, "key_id") }
    }

    /// Records that a daemon now writes under `cipher`'s current key.
    public func registerWriter(_ cipher: StoreCipher) async throws {
        try await client.execute("""
            INSERT INTO sealbridge_store_keys (key_id, writer_since) VALUES (\(cipher.keyID), now())
            ON CONFLICT (key_id) DO UPDATE SET writer_since = now()
            """)
    }

    /// Records that a rotation writes under `cipher`'s current key, without claiming to be the daemon's key.
    public func registerRotation(_ cipher: StoreCipher) async throws {
        try await client.execute("INSERT INTO sealbridge_store_keys (key_id) VALUES (\(cipher.keyID)) ON CONFLICT (key_id) DO NOTHING")
    }

    /// The key id the most recently started daemon writes under; nil when no daemon has registered one.
    public func latestWriter() async throws -> String? {
        try await client.query("""
            SELECT key_id FROM sealbridge_store_keys WHERE writer_since IS NOT NULL ORDER BY writer_since DESC LIMIT 1
            """).first?.decode(String.self, "key_id")
    }

    /// The database's clock, to compare with ``retire(except:unless:)``.
    public func now() async throws -> Date {
        try await client.query("SELECT now() AS now").first!.decode(Date.self, "now")
    }

    /// Forgets every key id but `keyID`, except those a daemon started writing under after `since`
    /// (their rows may be newer than the rotation's last count).
    ///
    /// - Returns: The ids forgotten.
    @discardableResult
    public func retire(except keyID: String, unless since: Date) async throws -> [String] {
        try await client.query("""
            DELETE FROM sealbridge_store_keys WHERE key_id <> \(keyID) AND (writer_since IS NULL OR writer_since < \(since))
            RETURNING key_id
            """).map { try $0.decode(String.self, "key_id") }
    }
}
