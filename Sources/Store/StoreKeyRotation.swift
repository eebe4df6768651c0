import Foundation
import MatrixCrypto
import Postgres

/// Re-encrypts every pickle and sealed row under the cipher's current key (`sealbridge rotate-pickle-key`),
/// while the daemon runs.
///
/// Each table is walked in primary-key order in batches. A batch reads rows not yet under the
/// current key, re-encrypts them with no transaction open (libolm and AES work only), then writes
/// them back in one short transaction, each row with a compare-and-swap on its old ciphertext: a row
/// the daemon changed (or deleted) in between is left alone, since the daemon writes under the
/// current key too. A rerun skips rows already under the current key, so the rotation resumes
/// where it stopped.
///
/// It does not take the instance lock nor the fencing epoch (``InstanceFence``): fencing keeps a
/// stale instance from changing crypto state, and a rewrite changes no state — the same account,
/// session or payload, only encrypted under another key — and never overwrites a newer value
/// (the compare-and-swap). A row lock is waited for at most ``lockTimeout`` so that the daemon's
/// transactions never queue long behind a batch (a batch that gives up is retried).
public struct StoreKeyRotation: Sendable {
    /// How many rows of a column are stored, and how many are not yet under the current key.
    public struct Progress: Sendable, Equatable {
        public var total: Int
        public var left: Int
    }

    /// What one batch did.
    public struct Batch: Sendable {
        /// Where the next batch starts (the last key read); nil when the column has no more rows to read.
        public var cursor: [String]?
        public var rewritten = 0
        /// Rows changed or deleted by someone else between read and write (left as they are).
        public var changed = 0
        /// Rows no configured key opens (damaged, or under a key not in the keyring): left as they are.
        public var failed = 0
    }

    /// How long a batch waits for a row the daemon holds before giving up (and retrying).
    public static let lockTimeout = "200ms"

    let client: PostgresClient
    let cipher: StoreCipher

    public init(client: PostgresClient, cipher: StoreCipher) {
        self.client = client
        self.cipher = cipher
    }

    /// Counts `column`'s rows and those not yet under the current key.
    public func progress(_ column: EncryptedColumn) async throws -> Progress {
        var query = SQL()
        let notCurrent = query.notCurrent(column, cipher)
        query.sql = """
            SELECT count(*) AS total, count(*) FILTER (WHERE \(notCurrent)) AS left_over
            FROM \(column.table) WHERE \(column.column) IS NOT NULL
            """
        let row = try await client.query(query.query).first
        return Progress(total: Int(try row?.decode(Int64.self, "total") ?? 0), left: Int(try row?.decode(Int64.self, "left_over") ?? 0))
    }

    /// Re-encrypts up to `limit` rows of `column` after `cursor` that are not under the current key.
    public func batch(_ column: EncryptedColumn, after cursor: [String]?, limit: Int) async throws -> Batch {
        let rows = try await read(column, after: cursor, limit: limit, onlyStale: true)
        var outcome = try await rewrite(column, rows)
        outcome.cursor = rows.count < limit ? nil : rows.last?.key
        return outcome
    }

    /// Re-encrypts `rows` (as ``read(_:after:limit:onlyStale:)`` returned them) and writes each back
    /// unless its value changed meanwhile, in one transaction.
    func rewrite(_ column: EncryptedColumn, _ rows: [Row]) async throws -> Batch {
        var outcome = Batch()
        var updates: [PostgresQuery] = []
        for row in rows {
            guard let value = try? reencrypt(row, column) else {
                outcome.failed += 1
                continue
            }
            var update = SQL()
            let new = value.bind(&update), old = row.value.bind(&update), key = update.keyEquals(column, row.key)
            update.sql = "UPDATE \(column.table) SET \(column.column) = \(new) WHERE \(key) AND \(column.column) = \(old)"
            updates.append(update.query)
        }
        guard !updates.isEmpty else { return outcome }
        var attempt = 0
        while true {
            do {
                let written = try await client.withTransaction { connection in
                    try await connection.execute("SET LOCAL lock_timeout = '\(unescaped: Self.lockTimeout)'")
                    var written = 0
                    for update in updates { written += try await connection.execute(update) }
                    return written
                }
                outcome.rewritten = written
                outcome.changed = updates.count - written
                return outcome
            } catch let error as PostgresError where ["55P03", "40P01"].contains(error.sqlState) && attempt < 20 {
                // Lock timeout or deadlock with a daemon transaction: the daemon goes first, the batch again later.
                attempt += 1
                try await Task.sleep(for: .milliseconds(50 * attempt))
            }
        }
    }

    /// Opens every row of `column` with the keyring (writes nothing): how many open and how many do not.
    public func verify(_ column: EncryptedColumn, batchSize: Int) async throws -> (opened: Int, failed: Int) {
        var cursor: [String]?, opened = 0, failed = 0
        repeat {
            let rows = try await read(column, after: cursor, limit: batchSize, onlyStale: false)
            for row in rows {
                if (try? open(row, column)) != nil { opened += 1 } else { failed += 1 }
            }
            cursor = rows.count < batchSize ? nil : rows.last?.key
        } while cursor != nil
        return (opened, failed)
    }

    /// One stored value: a pickle or sealed bytes.
    enum Value {
        case pickle(String)
        case sealed([UInt8])

        func bind(_ query: inout SQL) -> String {
            switch self {
            case .pickle(let text): query.bind(text)
            case .sealed(let bytes): query.bind(bytes)
            }
        }
    }

    struct Row {
        var key: [String]
        var context: [String]
        var value: Value
    }

    func read(_ column: EncryptedColumn, after cursor: [String]?, limit: Int, onlyStale: Bool) async throws -> [Row] {
        var query = SQL()
        var conditions = ["\(column.column) IS NOT NULL"]
        if onlyStale { conditions.append(query.notCurrent(column, cipher)) }
        if let cursor {
            let names = column.key.map(\.name).joined(separator: ", ")
            let values = zip(column.key, cursor).map { "\(query.bind($1))::\($0.type)" }.joined(separator: ", ")
            conditions.append("(\(names)) > (\(values))")
        }
        let keys = column.key.enumerated().map { "\($1.name)::text AS k\($0)" }
        let contexts = column.contextColumns.enumerated().map { "\($1)::text AS c\($0)" }
        let limitParameter = query.bind(Int64(limit))
        query.sql = """
            SELECT \((keys + contexts).joined(separator: ", ")), \(column.column) AS value FROM \(column.table)
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(column.key.map(\.name).joined(separator: ", ")) LIMIT \(limitParameter)
            """
        return try await client.query(query.query).map { row in
            let value: Value
            switch column.content {
            case .pickle: value = .pickle(try row.decode(String.self, "value"))
            case .sealed: value = .sealed(try row.decode([UInt8].self, "value"))
            }
            return Row(
                key: try column.key.indices.map { try row.decode(String.self, "k\($0)") },
                context: try column.contextColumns.indices.map { try row.decode(String.self, "c\($0)") }, value: value)
        }
    }

    func reencrypt(_ row: Row, _ column: EncryptedColumn) throws -> Value {
        switch (column.content, row.value) {
        case (.pickle(let object), .pickle(let text)): .pickle(try cipher.repickle(text, as: object))
        case (.sealed(let context), .sealed(let bytes)): .sealed(try cipher.reseal(bytes, context: try context(row.context)))
        default: throw CryptoError(code: .storeCorrupted, message: "column kind mismatch")
        }
    }

    func open(_ row: Row, _ column: EncryptedColumn) throws {
        switch (column.content, row.value) {
        case (.pickle(let object), .pickle(let text)): try cipher.checkUnpickles(text, as: object)
        case (.sealed(let context), .sealed(let bytes)):
            var plain = try cipher.open(bytes, context: try context(row.context))
            _ = plain.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        default: throw CryptoError(code: .storeCorrupted, message: "column kind mismatch")
        }
    }
}

/// A statement whose SQL text is assembled from the code's constant identifiers and `$n` placeholders.
struct SQL {
    var sql = ""
    var binds: [PostgresBind] = []

    mutating func bind(_ value: some PostgresEncodable) -> String {
        binds.append(value.postgresBind)
        return "$\(binds.count)"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }

    /// The condition "this row's value is not under the cipher's current key".
    mutating func notCurrent(_ column: EncryptedColumn, _ cipher: StoreCipher) -> String {
        switch column.content {
        case .pickle: "NOT starts_with(\(column.column), \(bind(cipher.picklePrefix)))"
        case .sealed:
            "substring(\(column.column) from 1 for \(cipher.sealedPrefix.count)) <> \(bind(cipher.sealedPrefix))"
        }
    }

    mutating func keyEquals(_ column: EncryptedColumn, _ values: [String]) -> String {
        zip(column.key, values).map { "\($0.name) = \(bind($1))::\($0.type)" }.joined(separator: " AND ")
    }
}
