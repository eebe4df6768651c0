import Postgres

/// The appservice front door's tables.
public enum AppServiceMigrations {
    public static let all: [Migration] = [
        Migration(version: 1, name: "appservice transactions", sql: """
            CREATE TABLE sealbridge_appservice_transactions (
                txn_id text PRIMARY KEY,
                committed_at timestamptz NOT NULL DEFAULT now()
            )
            """),
        Migration(version: 2, name: "transaction log", sql: """
            CREATE TABLE sealbridge_transaction_log (
                txn_id text PRIMARY KEY REFERENCES sealbridge_appservice_transactions (txn_id) ON DELETE CASCADE,
                events integer NOT NULL,
                ephemeral integer NOT NULL,
                to_device integer NOT NULL,
                to_device_dropped integer NOT NULL,
                device_lists_changed integer NOT NULL,
                device_lists_left integer NOT NULL,
                otk_count_devices integer NOT NULL,
                fallback_devices integer NOT NULL
            )
            """),
        Migration(version: 3, name: "skipped transaction entries", sql: """
            ALTER TABLE sealbridge_transaction_log ADD COLUMN skipped jsonb NOT NULL DEFAULT '{}'
            """),
        Migration(version: 4, name: "body digests of committed transactions; quarantine", sql: """
            ALTER TABLE sealbridge_appservice_transactions ADD COLUMN body_sha256 bytea;
            CREATE TABLE sealbridge_quarantine (
                id bigserial PRIMARY KEY,
                txn_id text NOT NULL,
                sealed bytea NOT NULL,
                error text NOT NULL,
                attempts integer NOT NULL,
                quarantined_at timestamptz NOT NULL DEFAULT now(),
                retried_at timestamptz,
                resolved_at timestamptz
            );
            """),
        Migration(version: 5, name: "retention: committed transactions by age", sql: """
            CREATE INDEX sealbridge_appservice_transactions_committed_at ON sealbridge_appservice_transactions (committed_at);
            """),
    ]
}
