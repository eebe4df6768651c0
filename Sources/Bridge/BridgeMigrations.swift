import Postgres

/// The bridge API's tables: the delivery outbox and the record of sends, for idempotency.
public enum BridgeMigrations {
    public static let all: [Migration] = [
        Migration(version: 20, name: "delivery outbox and bridge API sends", sql: """
            CREATE TABLE sealbridge_outbox (
                id bigserial PRIMARY KEY,
                room_id text NOT NULL,
                event_id text NOT NULL UNIQUE,
                sealed bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE sealbridge_bridge_sends (
                sender text NOT NULL,
                txn_id text NOT NULL,
                event_id text NOT NULL,
                sent_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (sender, txn_id)
            );
            """),
            Migration(version: 21, name: "late deliveries; bridge API sends claimed before sending", sql: """
            ALTER TABLE sealbridge_outbox ADD COLUMN late boolean NOT NULL DEFAULT false;
            ALTER TABLE sealbridge_outbox DROP CONSTRAINT sealbridge_outbox_event_id_key;
            ALTER TABLE sealbridge_outbox ADD CONSTRAINT sealbridge_outbox_event_late_key UNIQUE (event_id, late);
            ALTER TABLE sealbridge_bridge_sends ALTER COLUMN event_id DROP NOT NULL;
            ALTER TABLE sealbridge_bridge_sends ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
            """),
            Migration(version: 22, name: "outbox position handed out to the long-poll consumer", sql: """
            CREATE TABLE sealbridge_outbox_state (
                id integer PRIMARY KEY CHECK (id = 1),
                handed_out bigint NOT NULL
            );
            INSERT INTO sealbridge_outbox_state (id, handed_out) VALUES (1, 0);
            """),
    ]
}
