import Store

extension Outbox {
    /// The outbox's sealed deliveries, for `sealbridge rotate-pickle-key`.
    public static let encryptedColumns: [EncryptedColumn] = [
        EncryptedColumn(
            table: "sealbridge_outbox", column: "sealed", key: [.init("id", type: "bigint")], contextColumns: ["event_id"],
            content: .sealed { context($0[0]) }),
    ]
}
