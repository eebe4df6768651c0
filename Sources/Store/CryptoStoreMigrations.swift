import Postgres

/// The crypto engine's tables (versions 10–19, then 30–39). Pickles are libolm pickles encrypted with the
/// HKDF-derived pickle key, raw events and decrypted payloads are sealed (AES-256-GCM); nothing here
/// is a plaintext secret. Text columns hold only what was checked first (ids, base64 keys, our own
/// codes): any string a user controls may contain NUL, which PostgreSQL refuses in `text` and `jsonb`.
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
        Migration(version: 12, name: "device tracking, rooms, outbound sessions and shares", sql: """
            CREATE TABLE sealbridge_tracked_users (
                user_id text PRIMARY KEY,
                outdated boolean NOT NULL
            );
            CREATE TABLE sealbridge_devices (
                user_id text NOT NULL REFERENCES sealbridge_tracked_users (user_id) ON DELETE CASCADE,
                device_id text NOT NULL,
                curve25519 text NOT NULL,
                ed25519 text NOT NULL,
                dehydrated boolean NOT NULL DEFAULT false,
                PRIMARY KEY (user_id, device_id)
            );
            CREATE TABLE sealbridge_rooms (
                room_id text PRIMARY KEY,
                algorithm text NOT NULL,
                rotation_period_ms bigint,
                rotation_period_msgs bigint,
                history_visibility text NOT NULL
            );
            CREATE TABLE sealbridge_room_members (
                room_id text NOT NULL,
                user_id text NOT NULL,
                membership text NOT NULL,
                PRIMARY KEY (room_id, user_id)
            );
            CREATE INDEX ON sealbridge_room_members (user_id);
            CREATE TABLE sealbridge_outbound_group_sessions (
                room_id text NOT NULL,
                sender_user_id text NOT NULL,
                sender_device_id text NOT NULL,
                session_id text NOT NULL UNIQUE,
                pickle text NOT NULL,
                created_at timestamptz NOT NULL,
                PRIMARY KEY (room_id, sender_user_id)
            );
            CREATE TABLE sealbridge_outbound_shares (
                session_id text NOT NULL REFERENCES sealbridge_outbound_group_sessions (session_id) ON DELETE CASCADE,
                user_id text NOT NULL,
                device_id text NOT NULL,
                curve25519 text NOT NULL,
                message_index bigint,
                withheld_code text,
                PRIMARY KEY (session_id, user_id, device_id)
            );
            CREATE TABLE sealbridge_withheld_sessions (
                room_id text NOT NULL,
                session_id text NOT NULL,
                code text NOT NULL,
                reason text,
                sender_key text NOT NULL,
                PRIMARY KEY (room_id, session_id)
            );
            CREATE TABLE sealbridge_olm_recoveries (
                local_user_id text NOT NULL,
                remote_key text NOT NULL,
                recovered_at timestamptz NOT NULL,
                PRIMARY KEY (local_user_id, remote_key)
            );
            """),
        Migration(version: 13, name: "fallback key rotation time", sql: """
            ALTER TABLE sealbridge_crypto_accounts ADD COLUMN fallback_rotated_at timestamptz
            """),
            Migration(version: 14, name: "inbound sessions per owner, sealed parked events, pending to-device, withheld per sender", sql: """
            ALTER TABLE sealbridge_inbound_group_sessions ADD COLUMN sender_ed25519 text NOT NULL DEFAULT '';
            ALTER TABLE sealbridge_inbound_group_sessions DROP CONSTRAINT sealbridge_inbound_group_sessions_pkey;
            ALTER TABLE sealbridge_inbound_group_sessions ADD PRIMARY KEY (room_id, session_id, sender_key);

            ALTER TABLE sealbridge_parked_events ALTER COLUMN event DROP NOT NULL;
            ALTER TABLE sealbridge_parked_events ADD COLUMN sealed bytea;
            ALTER TABLE sealbridge_parked_events ADD COLUMN sender text;
            ALTER TABLE sealbridge_parked_events ADD COLUMN sender_key text;
            ALTER TABLE sealbridge_parked_events ADD COLUMN surfaced_at timestamptz;
            CREATE INDEX ON sealbridge_parked_events (parked_at) WHERE surfaced_at IS NULL;

            ALTER TABLE sealbridge_withheld_sessions ADD COLUMN sender_user_id text NOT NULL DEFAULT '';
            ALTER TABLE sealbridge_withheld_sessions ADD COLUMN received_at timestamptz NOT NULL DEFAULT now();
            ALTER TABLE sealbridge_withheld_sessions DROP CONSTRAINT sealbridge_withheld_sessions_pkey;
            ALTER TABLE sealbridge_withheld_sessions ADD PRIMARY KEY (room_id, session_id, sender_user_id, sender_key);

            CREATE TABLE sealbridge_pending_to_device (
                id text PRIMARY KEY,
                recipient_user_id text NOT NULL,
                recipient_device_id text NOT NULL,
                sender text NOT NULL,
                sender_key text NOT NULL,
                sealed bytea NOT NULL,
                received_at timestamptz NOT NULL
            );
            CREATE INDEX ON sealbridge_pending_to_device (sender);

            CREATE TABLE sealbridge_crypto_state (
                id integer PRIMARY KEY CHECK (id = 1),
                recipients_version bigint NOT NULL
            );
            INSERT INTO sealbridge_crypto_state (id, recipients_version) VALUES (1, 0);
            """),
            Migration(version: 15, name: "fencing epoch", sql: """
            CREATE TABLE sealbridge_instance (
                id integer PRIMARY KEY CHECK (id = 1),
                epoch bigint NOT NULL,
                holder text NOT NULL DEFAULT '',
                taken_at timestamptz
            );
            INSERT INTO sealbridge_instance (id, epoch) VALUES (1, 0);
            -- Run first in every write of crypto state: refuses (before COMMIT) a write from an instance
            -- whose epoch is not the current one. FOR SHARE makes a takeover wait for writes in flight.
            CREATE FUNCTION sealbridge_check_epoch(expected bigint) RETURNS void LANGUAGE plpgsql AS $$
            BEGIN
                IF (SELECT epoch FROM sealbridge_instance WHERE id = 1 FOR SHARE) IS DISTINCT FROM expected THEN
                    RAISE EXCEPTION 'fenced out: another Sealbridge instance took over the crypto state (epoch %)', expected
                        USING ERRCODE = 'SBFEN';
                END IF;
            END $$;
            """),
            Migration(version: 16, name: "local cross-signing identities", sql: """
            -- A local user's own cross-signing identity: public keys, the three seeds sealed with the
            -- store cipher, and how far its publication got (see StoredCrossSigningIdentity).
            CREATE TABLE sealbridge_cross_signing_identities (
                user_id text PRIMARY KEY,
                master_key text NOT NULL,
                self_signing_key text NOT NULL,
                user_signing_key text NOT NULL,
                sealed_seeds bytea NOT NULL,
                published boolean NOT NULL,
                signed_device_id text,
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            """),
        Migration(version: 17, name: "remote users' cross-signing identities", sql: """
            -- One row per remote user ever seen cross-signed; kept when they are untracked, so the
            -- pinned master key (trust on first use) outlives leaving every shared room.
            CREATE TABLE sealbridge_user_identities (
                user_id text PRIMARY KEY,
                pinned_master_key text NOT NULL,
                master_key text,
                self_signing_key text,
                user_signing_key text,
                -- {device id: Ed25519 key} of the devices the self-signing key signed.
                cross_signed_devices jsonb NOT NULL DEFAULT '{}',
                vouched_master_key text,
                -- The bot's user-signing key, when it was seen validly signing the current master key.
                signed_by_user_signing_key text,
                identity_changed boolean GENERATED ALWAYS AS (master_key IS NOT NULL AND master_key <> pinned_master_key) STORED,
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            """),
            Migration(version: 18, name: "a failed claim is not a share", sql: """
            -- m.no_olm shares (no one-time key could be claimed) are retried with a doubling backoff.
            ALTER TABLE sealbridge_outbound_shares ADD COLUMN retry_after timestamptz;
            ALTER TABLE sealbridge_outbound_shares ADD COLUMN failed_claims integer NOT NULL DEFAULT 0;
            """),
        Migration(version: 19, name: "answering key requests for our own sessions", sql: """
            -- The outbound session as first stored (its earliest index): a device that asks again for a
            -- key it was given gets it from the index it was given, which the advanced ratchet no longer
            -- has. NULL for sessions stored before this version (their requests go unanswered).
            ALTER TABLE sealbridge_outbound_group_sessions ADD COLUMN initial_pickle text;
            -- A replaced (rotated or discarded) outbound session and whom it was given, kept
            -- (retention.retired_sessions_days) so that its recipients can still ask for it.
            CREATE TABLE sealbridge_retired_outbound_sessions (
                session_id text PRIMARY KEY,
                room_id text NOT NULL,
                sender_user_id text NOT NULL,
                sender_device_id text NOT NULL,
                initial_pickle text NOT NULL,
                retired_at timestamptz NOT NULL
            );
            CREATE INDEX ON sealbridge_retired_outbound_sessions (retired_at);
            CREATE TABLE sealbridge_retired_outbound_shares (
                session_id text NOT NULL REFERENCES sealbridge_retired_outbound_sessions (session_id) ON DELETE CASCADE,
                user_id text NOT NULL,
                device_id text NOT NULL,
                curve25519 text NOT NULL,
                message_index bigint NOT NULL,
                PRIMARY KEY (session_id, user_id, device_id)
            );
            """),
        // 30–39: the crypto store, continued (10–19 is full).
        Migration(version: 30, name: "bounded replay ledger: entries carry when they were seen; pruned sessions keep a floor", sql: """
            -- Existing entries count as seen now (a constant default: no table rewrite).
            ALTER TABLE sealbridge_megolm_replay ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();
            -- Entries are appended in time order: a BRIN index finds the old ones for almost no write cost.
            CREATE INDEX sealbridge_megolm_replay_seen_at ON sealbridge_megolm_replay USING brin (seen_at);
            -- Every index below `below` was seen and pruned: refused as a replay (docs/retention.md).
            CREATE TABLE sealbridge_megolm_replay_floors (
                session_id text PRIMARY KEY,
                below bigint NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            """),
        Migration(version: 31, name: "asking for missing room keys", sql: """
            -- One outstanding m.room_key_request per (room, session) a parked event waits for: which
            -- local device asked whom, so a forwarded key is accepted only in answer to it, and
            -- cancelled once the key arrives from anywhere.
            CREATE TABLE sealbridge_key_requests (
                room_id text NOT NULL,
                session_id text NOT NULL,
                request_id text NOT NULL,
                sender_user_id text NOT NULL,
                sender_key text,
                requester_user_id text NOT NULL,
                requester_device_id text NOT NULL,
                -- [[user id, device id], …] of the devices asked (checked ids: no NUL).
                recipients jsonb NOT NULL,
                requested_at timestamptz NOT NULL,
                PRIMARY KEY (room_id, session_id)
            );
            CREATE INDEX ON sealbridge_key_requests (requested_at);
            -- A session imported from an m.forwarded_room_key (delivered with encryption.forwarded).
            ALTER TABLE sealbridge_inbound_group_sessions ADD COLUMN forwarded boolean NOT NULL DEFAULT false;
            """),
        Migration(version: 32, name: "history bundles (MSC4268): pointers waiting for their invite, inviters, bundled sessions", sql: """
            -- An m.room_key_bundle a local device received over Olm, kept until its recipient's invite
            -- from the same sender is seen (docs/history-bundles.md); one per (recipient, room, sender).
            -- The file pointer (url, AES key, IV, SHA-256) is sealed with the store key.
            CREATE TABLE sealbridge_history_bundles (
                id text PRIMARY KEY,
                recipient_user_id text NOT NULL,
                recipient_device_id text NOT NULL,
                room_id text NOT NULL,
                sender_user_id text NOT NULL,
                sender_device_id text NOT NULL,
                sender_key text NOT NULL,
                sender_ed25519 text NOT NULL,
                sealed bytea NOT NULL,
                received_at timestamptz NOT NULL,
                UNIQUE (recipient_user_id, room_id, sender_user_id)
            );
            CREATE INDEX ON sealbridge_history_bundles (received_at);
            -- Who invited a local user into a room: the only sender whose bundle for it is taken.
            CREATE TABLE sealbridge_room_invites (
                room_id text NOT NULL,
                user_id text NOT NULL,
                inviter text NOT NULL,
                invited_at timestamptz NOT NULL,
                PRIMARY KEY (room_id, user_id)
            );
            CREATE INDEX ON sealbridge_room_invites (invited_at);
            -- A session imported from a history bundle: the inviter's device it came from (its events
            -- are delivered with encryption.from_bundle, trusted no more than that device).
            ALTER TABLE sealbridge_inbound_group_sessions ADD COLUMN bundle_sender_user_id text, ADD COLUMN bundle_sender_key text;
            """),
        Migration(version: 33, name: "store keys that may still have rows (pickle key rotation)", sql: """
            -- Key ids (a one-way fingerprint of a pickle key, never the key) that wrote version-2 rows.
            -- The daemon refuses to start without every key listed here; rotate-pickle-key removes a key
            -- once no row is under it (docs/rotation.md).
            CREATE TABLE sealbridge_store_keys (
                key_id text PRIMARY KEY,
                first_used_at timestamptz NOT NULL DEFAULT now(),
                -- When a daemon last started writing under it; NULL: only a rotation wrote under it.
                writer_since timestamptz
            );
            """),
    ]
}
