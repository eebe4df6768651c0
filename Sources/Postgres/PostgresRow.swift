/// One result row, decoded on demand from PostgreSQL's text format.
public struct PostgresRow: Sendable {
    let columns: PostgresColumns
    let values: [String?]

    /// The value of column `name` as `T`.
    ///
    /// - Throws: `decoding` when the column does not exist, is NULL (use an Optional `T`), or does
    ///   not parse as `T`; the message names the column.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, _ name: String) throws(PostgresError) -> T {
        try decode(type, at: try index(of: name), name: name)
    }

    /// The value of column `name` as `T`, or nil for SQL NULL.
    public func decode<T: PostgresDecodable>(_ type: T?.Type, _ name: String) throws(PostgresError) -> T? {
        let column = try index(of: name)
        guard values[column] != nil else { return nil }
        return try decode(T.self, at: column, name: name)
    }

    /// The value at column position `index` (0-based) as `T`.
    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, column index: Int) throws(PostgresError) -> T {
        guard values.indices.contains(index) else {
            throw PostgresError(code: .decoding, message: "no column at index \(index)")
        }
        return try decode(type, at: index, name: columns.names[index])
    }

    func index(of name: String) throws(PostgresError) -> Int {
        guard let index = columns.index[name] else {
            throw PostgresError(code: .decoding, message: "no column \"\(name)\" in the result")
        }
        return index
    }

    func decode<T: PostgresDecodable>(_ type: T.Type, at index: Int, name: String) throws(PostgresError) -> T {
        guard let text = values[index] else {
            throw PostgresError(code: .decoding, message: "column \"\(name)\" is NULL; decode an Optional")
        }
        do {
            return try T(postgresText: text)
        } catch {
            throw PostgresError(code: .decoding, message: "column \"\(name)\": \(error.message)")
        }
    }
}

/// Column names of a result, shared by all its rows.
final class PostgresColumns: Sendable {
    let names: [String]
    let index: [String: Int]

    init(names: [String]) {
        self.names = names
        var index: [String: Int] = [:]
        for (position, name) in names.enumerated() where index[name] == nil { index[name] = position }
        self.index = index
    }
}
