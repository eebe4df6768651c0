import Postgres

/// The crypto engine's tables (versions 10–19). Pickles are libolm pickles encrypted with the
/// HKDF-derived pickle key; nothing here is a plaintext secret.
public enum CryptoStoreMigrations {
    public static let all: [Migration] = [
        Migration(version: 10, name: "crypto accounts, sessions, replay ledger", sql: """
            CREATE TABLE sealbridge_crypto_accounts (
                user_id text PRIMARY KEY,
                device_id text NOT NULL,
                pickle text NOT NULL,
                device_keys_uploaded boolean NOT NULL DEFAULT false
            );
            CREATE TABLE sealbridge_olm_sessions (
                local_user_id text NOT NULL,
                local_device_id text NOT NULL,
                sender_key text NOT NULL,
                session_id text NOT NULL,
                pickle text NOT NULL,
                last_used timestamptz NOT NULL,
                PRIMARY KEY (local_user_id, local_device_id, sender_key, session_id)
            );
            CREATE TABLE sealbridge_inbound_group_sessions (
                room_id text NOT NULL,
                session_id text NOT NULL,
                sender_key text NOT NULL,
                sender_user_id text NOT NULL,
                first_known_index bigint NOT NULL,
                pickle text NOT NULL,
                PRIMARY KEY (room_id, session_id)
            );
            CREATE TABLE sealbridge_megolm_replay (
                session_id text NOT NULL,
                message_index bigint NOT NULL,
                event_id text NOT NULL,
                PRIMARY KEY (session_id, message_index)
            );
            """),
        Migration(version: 11, name: "parked encrypted events", sql: """
            CREATE TABLE sealbridge_parked_events (
                event_id text PRIMARY KEY,
                room_id text NOT NULL,
                session_id text NOT NULL,
                event jsonb NOT NULL,
                parked_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX ON sealbridge_parked_events (session_id);
            """),
    ]
}
