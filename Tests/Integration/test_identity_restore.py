"""The bot's cross-signing identity survives a lost database (issue 11, point 2).

Against a real Synapse and PostgreSQL, driving the real binary:
- an identity published for the bot, with its seeds in secret storage written by mautrix-python (an
  independent implementation), is restored into an empty database with the recovery key: the same
  master key, and the homeserver records no new upload;
- without a key, or with the wrong one, `sealbridge run` on an empty database stops with a message
  naming `encryption.recovery_key_file` and `--reset-identity`;
- `sealbridge recovery-key` refuses to replace existing storage, `--rotate` replaces it and prints a new
  key that restores the identity while the old one no longer does; `--key-file` stores under a key the
  operator holds and prints nothing.
"""
import base64
import signal
import sqlite3
import subprocess
import time

import canonicaljson
import olm
import pytest
from mautrix.crypto.ssss.key import Key

from conftest import SEALBRIDGE, Stack, psql, request, wait_for

BOT = "@sealbridge:localhost"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def cross_signing_upload(seeds: dict) -> dict:
    """The `/keys/device_signing/upload` body for the bot's identity, signed with python-olm."""
    signers = {name: olm.PkSigning(seed) for name, seed in seeds.items()}
    master = signers["master"]

    def key(usage: str, signer) -> dict:
        return {"user_id": BOT, "usage": [usage], "keys": {f"ed25519:{signer.public_key}": signer.public_key}}

    def signed(obj: dict) -> dict:
        signature = master.sign(canonicaljson.encode_canonical_json(obj).decode())
        return {**obj, "signatures": {BOT: {f"ed25519:{master.public_key}": signature}}}

    return {"master_key": key("master", master), "self_signing_key": signed(key("self_signing", signers["self_signing"])),
            "user_signing_key": signed(key("user_signing", signers["user_signing"]))}


class Restore:
    """The module's stack plus the identity made for its bot."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.as_token = stack.tokens["as_token"]

    def hs(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        separator = "&" if "?" in path else "?"
        return request(method, f"{self.stack.homeserver}{path}{separator}user_id={BOT.replace('@', '%40').replace(':', '%3A')}",
                       self.as_token, body)

    def published_master(self) -> str | None:
        status, body = self.hs("POST", "/_matrix/client/v3/keys/query", {"device_keys": {BOT: []}})
        assert status == 200, body
        keys = body.get("master_keys", {}).get(BOT, {}).get("keys", {})
        return next(iter(keys.values()), None)

    def master_uploads(self) -> int:
        """How many master keys Synapse has recorded for the bot (each accepted change adds a row)."""
        with sqlite3.connect(self.stack.synapse_dir / "homeserver.db") as db:
            return db.execute("SELECT count(*) FROM e2e_cross_signing_keys WHERE user_id = ? AND keytype = 'master'", (BOT,)).fetchone()[0]

    def stored_master(self) -> str:
        try:
            return psql(self.stack.database_url, f"SELECT master_key FROM sealbridge_cross_signing_identities WHERE user_id = '{BOT}'")
        except subprocess.CalledProcessError:  # not migrated yet
            return ""

    def empty_database(self):
        psql(self.stack.admin_url, f"DROP DATABASE IF EXISTS {self.stack.database} WITH (FORCE)")
        psql(self.stack.admin_url, f"CREATE DATABASE {self.stack.database}")

    def configure_key(self, path: str | None):
        lines = [line for line in self.stack.config.read_text().splitlines() if "recovery_key_file" not in line]
        text = "\n".join(lines) + "\n"
        if path:
            text = text.replace("\nencryption:\n", f"\nencryption:\n  recovery_key_file: \"{path}\"\n", 1)
        self.stack.config.write_text(text)

    def run_expecting_failure(self, *arguments: str) -> subprocess.CompletedProcess:
        result = subprocess.run([SEALBRIDGE, "run", "--config", self.stack.config, *arguments], capture_output=True, text=True, timeout=90)
        assert result.returncode != 0, result.stderr[-2000:]
        return result

    def logged_since(self, mark: int, message: str) -> bool:
        return any(line.get("msg") == message for line in self.stack.log_lines()[mark:])

    def stop(self) -> int:
        """Stops the daemon, allowing for a slow shutdown: after a lost database the bot's old device
        still holds one-time keys on the homeserver, the new account's uploads collide with them,
        and the follow-up retries (five, with sleeps) finish before the daemon exits."""
        self.stack.process.send_signal(signal.SIGTERM)
        try:
            return self.stack.process.wait(timeout=90)
        finally:
            self.stack.log.close()

    def recovery_key(self, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([SEALBRIDGE, "recovery-key", "--config", self.stack.config, *arguments],
                              capture_output=True, text=True, timeout=90)


def test_daemon_made_identity_comes_back_with_the_printed_key(stack):
    """The operator's path: the daemon publishes the bot's identity, `sealbridge recovery-key` prints a
    key, the database is lost, and the key brings back the same identity without a new upload."""
    r = Restore(stack)
    wait_for(lambda: any(line.get("msg") == "bot device ready" for line in stack.log_lines()), 60, "the bot's device")
    master = wait_for(lambda: r.published_master(), 60, "the bot's published identity")
    assert r.stored_master() == master
    uploads = r.master_uploads()

    printed = r.recovery_key()
    assert printed.returncode == 0, printed.stderr
    key = printed.stdout.strip()
    assert key.startswith("Es") and len(key.split(" ")) == 12, printed.stdout
    assert master in printed.stderr and key not in printed.stderr
    assert r.stop() == 0

    r.empty_database()
    r.key_file = stack.tmp / "printed.key"
    r.key_file.write_text(key + "\n")
    r.configure_key(str(r.key_file))
    mark = len(stack.log_lines())
    stack.start()
    wait_for(lambda: r.logged_since(mark, "bot device ready"), 60, "the bot's device")
    assert r.logged_since(mark, "restored the cross-signing identity from secret storage")
    assert r.stored_master() == master
    assert r.published_master() == master
    assert r.master_uploads() == uploads
    r.configure_key(None)


@pytest.fixture(scope="module")
def restore(stack):
    """Stops the daemon, publishes an identity for the bot and keeps its seeds in secret storage made
    by mautrix; yields the helper with the recovery key and master key."""
    r = Restore(stack)
    wait_for(lambda: any(line.get("msg") == "bot device ready" for line in stack.log_lines()), 60, "the bot's device")
    assert r.stop() == 0
    seeds = {name: olm.PkSigning.generate_seed() for name in ("master", "self_signing", "user_signing")}
    status, body = r.hs("POST", "/_matrix/client/v3/keys/device_signing/upload", cross_signing_upload(seeds))
    assert status == 200, body
    r.master = olm.PkSigning(seeds["master"]).public_key
    assert r.published_master() == r.master
    key = Key.generate()
    description = key.metadata.serialize()
    assert r.hs("PUT", f"/_matrix/client/v3/user/{BOT}/account_data/m.secret_storage.key.{key.id.replace('/', '%2F').replace('+', '%2B')}",
                description)[0] == 200
    for name, seed in seeds.items():
        secret = key.encrypt(f"m.cross_signing.{name}", seed)
        assert r.hs("PUT", f"/_matrix/client/v3/user/{BOT}/account_data/m.cross_signing.{name}",
                    {"encrypted": {key.id: secret.serialize()}})[0] == 200
    assert r.hs("PUT", f"/_matrix/client/v3/user/{BOT}/account_data/m.secret_storage.default_key", {"key": key.id})[0] == 200
    r.key_file = stack.tmp / "recovery.key"
    r.key_file.write_text(key.recovery_key + "\n")
    r.uploads = r.master_uploads()
    assert r.uploads >= 1
    yield r
    r.configure_key(None)


def test_empty_database_without_key_refuses_with_both_ways_out(restore):
    restore.empty_database()
    restore.configure_key(None)
    result = restore.run_expecting_failure()
    assert result.returncode == 78, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]
    assert "encryption.recovery_key_file" in message and "--reset-identity" in message, message
    assert restore.master in message, message
    assert restore.published_master() == restore.master
    assert restore.master_uploads() == restore.uploads


def test_wrong_or_mistyped_key_refuses(restore):
    restore.empty_database()
    wrong = restore.stack.tmp / "wrong.key"
    wrong.write_text(Key.generate().recovery_key)
    restore.configure_key(str(wrong))
    message = restore.run_expecting_failure().stderr
    assert "another secret storage" in message and "--reset-identity" in message, message[-2000:]
    typo = restore.stack.tmp / "typo.key"
    text = restore.key_file.read_text().strip()
    typo.write_text(text[:-1] + ("2" if text[-1] != "2" else "3"))
    restore.configure_key(str(typo))
    result = restore.run_expecting_failure()
    assert result.returncode == 78 and "recovery_key" in result.stderr and "typo" in result.stderr, result.stderr[-2000:]
    assert text not in result.stderr
    # check-config (systemd's ExecStartPre) finds the typo too.
    checked = subprocess.run([SEALBRIDGE, "check-config", "--config", restore.stack.config], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 78 and "typo" in checked.stderr, checked.stderr
    assert restore.master_uploads() == restore.uploads


def test_recovery_key_restores_the_same_identity(restore):
    restore.empty_database()
    restore.configure_key(str(restore.key_file))
    mark = len(restore.stack.log_lines())
    restore.stack.start()
    wait_for(lambda: restore.logged_since(mark, "bot device ready"), 60, "the bot's device")
    assert restore.stored_master() == restore.master
    assert restore.logged_since(mark, "restored the cross-signing identity from secret storage")
    time.sleep(2)  # anything the daemon would upload after startup has had its chance
    assert restore.published_master() == restore.master
    assert restore.master_uploads() == restore.uploads
    # The recovery key never reaches the log.
    key = restore.key_file.read_text().strip()
    assert key not in (restore.stack.tmp / "sealbridge.log").read_text()
    assert key.replace(" ", "") not in (restore.stack.tmp / "sealbridge.log").read_text()


def test_recovery_key_command_rotates_and_the_new_key_restores(restore):
    # The daemon runs (previous test); the command only reads the database and writes account data.
    assert restore.stack.healthy()
    refused = restore.recovery_key()
    assert refused.returncode == 78 and "--rotate" in refused.stderr, refused.stderr
    assert refused.stdout == ""

    # Re-storing under the key the operator already holds is allowed and prints nothing.
    again = restore.recovery_key("--key-file", str(restore.key_file))
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""

    rotated = restore.recovery_key("--rotate")
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert len(new_key.split(" ")) == 12 and new_key.startswith("Es"), rotated.stdout
    assert "store it" in rotated.stderr.lower() or "store" in rotated.stderr, rotated.stderr
    assert new_key not in rotated.stderr
    # mautrix reads the storage Sealbridge wrote: the default key opens with the printed key.
    status, default = restore.hs("GET", f"/_matrix/client/v3/user/{BOT}/account_data/m.secret_storage.default_key")
    assert status == 200
    from mautrix.crypto.ssss.key import KeyMetadata
    from mautrix.crypto.ssss.types import EncryptedAccountDataEventContent
    _, description = restore.hs("GET", f"/_matrix/client/v3/user/{BOT}/account_data/m.secret_storage.key.{default['key']}")
    key = KeyMetadata.deserialize(description).verify_recovery_key(default["key"], new_key)
    _, master_secret = restore.hs("GET", f"/_matrix/client/v3/user/{BOT}/account_data/m.cross_signing.master")
    seed = EncryptedAccountDataEventContent.deserialize(master_secret).decrypt("m.cross_signing.master", key)
    assert olm.PkSigning(seed).public_key == restore.master
    assert restore.stop() == 0

    # The old key no longer restores; the new one does, to the same identity.
    restore.empty_database()
    restore.configure_key(str(restore.key_file))
    assert "--reset-identity" in restore.run_expecting_failure().stderr
    new_file = restore.stack.tmp / "rotated.key"
    new_file.write_text(new_key)
    restore.empty_database()
    restore.configure_key(str(new_file))
    restore.stack.start()
    wait_for(lambda: restore.stored_master() == restore.master, 60, "the restored identity")
    assert restore.published_master() == restore.master
    assert restore.master_uploads() == restore.uploads
    assert restore.stop() == 0


def test_reset_identity_lets_the_daemon_start(restore):
    restore.empty_database()
    restore.configure_key(None)
    mark = len(restore.stack.log_lines())
    restore.stack.log = open(restore.stack.tmp / "sealbridge.log", "ab")
    restore.stack.process = subprocess.Popen(
        [SEALBRIDGE, "run", "--config", restore.stack.config, "--reset-identity"], stdout=restore.stack.log, stderr=restore.stack.log)
    wait_for(lambda: restore.logged_since(mark, "bot device ready"), 60, "the bot's device")
    assert any("--reset-identity" in line.get("msg", "") for line in restore.stack.log_lines()[mark:])
    # Asked for, the reset happens: a new master key, in the database and on the homeserver.
    wait_for(lambda: restore.stored_master() not in ("", restore.master), 60, "a new identity")
    wait_for(lambda: restore.published_master() == restore.stored_master(), 60, "the new identity published")
    assert restore.stop() == 0
