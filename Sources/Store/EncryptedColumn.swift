import MatrixCrypto
import MatrixModels

/// A column of pickles or sealed bytes: what `sealbridge rotate-pickle-key` re-encrypts.
///
/// Each module that writes such a column describes it here (the crypto store:
/// ``PostgresCryptoStore/encryptedColumns``; the outbox, the quarantine: next to their code), so the
/// rotation can walk it without knowing the module. Names are constants of the code, never input.
public struct EncryptedColumn: Sendable {
    /// What the column holds.
    public enum Content: Sendable {
        /// `text` libolm pickles of one kind of object.
        case pickle(PickledObject)
        /// `bytea` sealed with ``StoreCipher/seal(_:context:)``; `context` builds the sealing context
        /// from the row's ``EncryptedColumn/contextColumns`` values, in that order.
        case sealed(context: @Sendable ([String]) throws -> String)
    }

    /// A primary-key column and its SQL type (`text` or `bigint`), for walking the table in key order.
    public struct KeyColumn: Sendable {
        public var name: String
        public var type: String

        public init(_ name: String, type: String = "text") {
            self.name = name
            self.type = type
        }
    }

    public var table: String
    public var column: String
    /// The table's primary key, in index order.
    public var key: [KeyColumn]
    /// The columns a sealed row's context is made of (empty for pickles).
    public var contextColumns: [String]
    public var content: Content

    public init(table: String, column: String, key: [KeyColumn], contextColumns: [String] = [], content: Content) {
        self.table = table
        self.column = column
        self.key = key
        self.contextColumns = contextColumns
        self.content = content
    }

    /// `table.column`, as progress lines show it.
    public var name: String { "\(table).\(column)" }
}

extension PostgresCryptoStore {
    /// Every column of the crypto store that holds a pickle or sealed bytes.
    public static let encryptedColumns: [EncryptedColumn] = [
        EncryptedColumn(table: "sealbridge_crypto_accounts", column: "pickle", key: [.init("user_id")], content: .pickle(.account)),
        EncryptedColumn(
            table: "sealbridge_olm_sessions", column: "pickle",
            key: [.init("local_user_id"), .init("local_device_id"), .init("sender_key"), .init("session_id")], content: .pickle(.olmSession)),
        EncryptedColumn(
            table: "sealbridge_inbound_group_sessions", column: "pickle", key: [.init("room_id"), .init("session_id"), .init("sender_key")],
            content: .pickle(.inboundGroupSession)),
        EncryptedColumn(
            table: "sealbridge_outbound_group_sessions", column: "pickle", key: [.init("room_id"), .init("sender_user_id")],
            content: .pickle(.outboundGroupSession)),
        EncryptedColumn(
            table: "sealbridge_outbound_group_sessions", column: "initial_pickle", key: [.init("room_id"), .init("sender_user_id")],
            content: .pickle(.outboundGroupSession)),
        EncryptedColumn(
            table: "sealbridge_retired_outbound_sessions", column: "initial_pickle", key: [.init("session_id")],
            content: .pickle(.outboundGroupSession)),
        EncryptedColumn(
            table: "sealbridge_parked_events", column: "sealed", key: [.init("event_id")], contextColumns: ["event_id"],
            content: .sealed { parkedContext($0[0]) }),
        EncryptedColumn(
            table: "sealbridge_pending_to_device", column: "sealed", key: [.init("id")], contextColumns: ["id"],
            content: .sealed { pendingContext($0[0]) }),
        EncryptedColumn(
            table: "sealbridge_cross_signing_identities", column: "sealed_seeds", key: [.init("user_id")], contextColumns: ["user_id"],
            content: .sealed { StoredCrossSigningIdentity.sealContext(try UserID($0[0])) }),
        EncryptedColumn(
            table: "sealbridge_history_bundles", column: "sealed", key: [.init("id")], contextColumns: ["id"],
            content: .sealed { historyBundleContext($0[0]) }),
    ]
}
