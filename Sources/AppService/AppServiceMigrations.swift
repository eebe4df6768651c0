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
    ]
}
