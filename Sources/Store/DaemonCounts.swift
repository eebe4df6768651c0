import MatrixModels
import Postgres

/// The database's side of `status`: counts across the appservice, crypto and bridge tables, read in
/// one statement (one round trip, one snapshot).
public struct DaemonCounts: Sendable, Equatable {
    public var transactions: Int
    /// Seconds since the newest committed transaction; nil before the first.
    public var lastTransactionAge: Int?
    public var devices: Int
    public var puppets: Int
    public var rooms: Int
    public var parked: Int
    public var pendingToDevice: Int
    public var quarantined: Int

    /// - Parameter bot: Not counted among the puppets.
    public static func read(_ client: PostgresClient, bot: UserID) async throws -> DaemonCounts {
        guard let row = try await client.query("""
            SELECT (SELECT count(*) FROM sealbridge_appservice_transactions) AS transactions,
                   (SELECT extract(epoch FROM now() - max(committed_at))::bigint FROM sealbridge_appservice_transactions) AS last_age,
                   (SELECT count(*) FROM sealbridge_crypto_accounts) AS devices,
                   (SELECT count(*) FROM sealbridge_crypto_accounts WHERE user_id <> \(bot.rawValue)) AS puppets,
                   (SELECT count(*) FROM sealbridge_rooms) AS rooms,
                   (SELECT count(*) FROM sealbridge_parked_events) AS parked,
                   (SELECT count(*) FROM sealbridge_pending_to_device) AS pending,
                   (SELECT count(*) FROM sealbridge_quarantine WHERE resolved_at IS NULL) AS quarantined
            """).first
        else { throw PostgresError(code: .decoding, message: "the status query returned no row") }
        return DaemonCounts(
            transactions: try row.decode(Int.self, "transactions"), lastTransactionAge: try row.decode(Int?.self, "last_age"),
            devices: try row.decode(Int.self, "devices"), puppets: try row.decode(Int.self, "puppets"), rooms: try row.decode(Int.self, "rooms"),
            parked: try row.decode(Int.self, "parked"), pendingToDevice: try row.decode(Int.self, "pending"),
            quarantined: try row.decode(Int.self, "quarantined"))
    }
}
