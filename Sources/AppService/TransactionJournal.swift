import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Transactions accepted while the database was unavailable, in a local directory, in order.
///
/// Each entry is one file, `<sequence>.txn`, holding the txn id and the raw body, sealed (AES-256-GCM
/// under a key derived from the pickle key, bound to the sequence number). An entry is written to a
/// temporary file, fsync'd, renamed into place and the directory fsync'd before ``append(txnID:body:)``
/// returns: once the homeserver has its 200, the transaction survives a crash of this process or of
/// the machine. Entries are applied to PostgreSQL oldest first (``JournalReplayService``) and
/// removed only after their commit; while any entry is left, new transactions are journaled
/// behind it, so the order the homeserver sent is the order they are applied.
public actor TransactionJournal {
    public struct Entry: Sendable {
        public var sequence: UInt64
        public var txnID: String
        public var body: [UInt8]
    }

    public struct JournalError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    let directory: String
    let sealing: any TransactionSealing
    private var sequences: [UInt64] = []
    private var loaded = false

    public init(directory: String, sealing: any TransactionSealing) {
        self.directory = directory
        self.sealing = sealing
    }

    /// Entries waiting to be applied.
    public var count: Int {
        get throws {
            try load()
            return sequences.count
        }
    }

    /// Writes an entry durably.
    public func append(txnID: String, body: [UInt8]) throws {
        try load()
        let sequence = (sequences.last ?? 0) + 1
        var plain = withUnsafeBytes(of: UInt32(txnID.utf8.count).bigEndian, Array.init)
        plain += Array(txnID.utf8)
        plain += body
        let sealed = try sealing.seal(plain, context: Self.context(sequence))
        let final = path(sequence), temporary = directory + "/.tmp-\(sequence)"
        try Self.write(sealed, to: temporary)
        guard rename(temporary, final) == 0 else { throw JournalError(message: "cannot rename \(temporary): \(Self.errno())") }
        try Self.syncDirectory(directory)
        sequences.append(sequence)
    }

    /// The oldest entry, opened.
    ///
    /// - Throws: ``JournalError`` when the file does not open (another pickle key, damage): the
    ///   caller moves it aside with ``setAside(_:)``.
    public func oldest() throws -> (sequence: UInt64, entry: Result<Entry, JournalError>)? {
        try load()
        guard let sequence = sequences.first else { return nil }
        guard let sealed = FileManager.default.contents(atPath: path(sequence)) else {
            return (sequence, .failure(JournalError(message: "journal entry \(sequence) cannot be read")))
        }
        do {
            let plain = try sealing.open(Array(sealed), context: Self.context(sequence))
            guard plain.count >= 4 else { throw JournalError(message: "journal entry \(sequence) is truncated") }
            let length = Int(plain[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard plain.count >= 4 + length else { throw JournalError(message: "journal entry \(sequence) is truncated") }
            let txnID = String(decoding: plain[4..<(4 + length)], as: UTF8.self)
            return (sequence, .success(Entry(sequence: sequence, txnID: txnID, body: Array(plain[(4 + length)...]))))
        } catch {
            return (sequence, .failure(JournalError(message: "journal entry \(sequence) does not open: \(error)")))
        }
    }

    /// Removes an entry whose transaction is committed.
    public func remove(_ sequence: UInt64) throws {
        guard unlink(path(sequence)) == 0 || Glibc.errno == ENOENT else { throw JournalError(message: "cannot remove journal entry \(sequence): \(Self.errno())") }
        try Self.syncDirectory(directory)
        sequences.removeAll { $0 == sequence }
    }

    /// Moves an entry that cannot be applied to `rejected/` (kept for an operator), out of the order.
    public func setAside(_ sequence: UInt64) throws {
        let rejected = directory + "/rejected"
        try FileManager.default.createDirectory(atPath: rejected, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard rename(path(sequence), rejected + "/\(sequence).txn") == 0 else {
            throw JournalError(message: "cannot move journal entry \(sequence) aside: \(Self.errno())")
        }
        try Self.syncDirectory(directory)
        sequences.removeAll { $0 == sequence }
    }

    static func context(_ sequence: UInt64) -> String { "sealbridge journal entry \(sequence)" }

    func path(_ sequence: UInt64) -> String { directory + "/" + String(format: "%020llu", sequence) + ".txn" }

    /// Creates the directory (0700) and reads which entries are there, once.
    private func load() throws {
        guard !loaded else { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw JournalError(message: "cannot create the journal directory \(directory): \(error.localizedDescription)")
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        sequences = names.compactMap { name in name.hasSuffix(".txn") ? UInt64(name.dropLast(4)) : nil }.sorted()
        for name in names where name.hasPrefix(".tmp-") { unlink(directory + "/" + name) }
        loaded = true
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw JournalError(message: "cannot create \(path): \(errno())") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if result < 0 {
                if Glibc.errno == EINTR { continue }
                throw JournalError(message: "cannot write \(path): \(errno())")
            }
            written += result
        }
        guard fsync(fd) == 0 else { throw JournalError(message: "cannot fsync \(path): \(errno())") }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw JournalError(message: "cannot open \(path): \(errno())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw JournalError(message: "cannot fsync \(path): \(errno())") }
    }

    static func errno() -> String { String(cString: strerror(Glibc.errno)) }
}
