"""Starts the real parts for integration tests: a fresh PostgreSQL database on the test cluster, a real
Synapse from PyPI with the registration `sealbridge generate-registration` wrote, and `sealbridge run`.

Needs SEALBRIDGE_TEST_DATABASE_URL (scripts/test sets it). Every port is on 127.0.0.1 and chosen free at
run time; every process is stopped by PID at the end.
"""
import http.server
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEALBRIDGE = Path(os.environ.get("SEALBRIDGE_BIN", ROOT / ".build" / "debug" / "sealbridge"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-tAc", sql], check=True, capture_output=True, text=True).stdout.strip()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class TransactionProxy:
    """An HTTP proxy between the homeserver and Sealbridge (the registration's `url` points at it).

    Forwards every request unchanged and records each transaction: its txn id, exact body, and
    Sealbridge's answer. `hold()` makes it keep the next transactions (the homeserver sends one at a
    time, so it queues everything newer behind the held one) until `release()`.
    """

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.holding = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                import http.client
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                record = None
                match = re.search(r"/transactions/([^/?]+)", self.path)
                if match and self.command == "PUT":
                    record = {"txn_id": match.group(1), "body": body, "status": None, "answer": None, "at": time.monotonic(), "answered": None}
                    with proxy.lock:
                        proxy.records.append(record)
                    if not proxy.gate.is_set():
                        proxy.holding.set()
                        proxy.gate.wait(120)
                connection = http.client.HTTPConnection(*proxy.target, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                    connection.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None,
                                       headers=headers)
                    response = connection.getresponse()
                    status, answer, content_type = response.status, response.read(), response.getheader("Content-Type")
                except OSError as error:
                    status, answer, content_type = 502, json.dumps({"errcode": "M_UNKNOWN", "error": str(error)}).encode(), "application/json"
                finally:
                    connection.close()
                if record is not None:
                    record["status"], record["answer"], record["answered"] = status, answer, time.monotonic()
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_PUT = do_POST = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self):
        """Keeps transactions that arrive from now on until `release()`; `holding` is set when one waits."""
        self.holding.clear()
        self.gate.clear()

    def release(self):
        self.gate.set()

    def transactions(self) -> list[dict]:
        with self.lock:
            return list(self.records)

    def close(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()


class Stack:
    """Handles on the running parts."""

    def __init__(self, tmp: Path, bridge_api_extra: str = "", appservice_extra: str = "", encryption_extra: str = "", sharing_policy: str | None = "all",
                 database_base_url: str | None = None, proxy: bool = False, extra: str = "", synapse_features_off: tuple[str, ...] = ()):
        """`bridge_api_extra`, `appservice_extra`, `encryption_extra`: YAML lines added under those sections
        (indented two spaces). `sharing_policy`: `encryption.sharing_policy`; "all" by default because
        matrix-nio, the tests' main client, does not cross-sign (under the daemon's default,
        cross_signed, its devices would get m.unverified instead of the bridge's keys); None leaves the
        daemon's default. `database_base_url`: a PostgreSQL URL to create the database on instead of
        $SEALBRIDGE_TEST_DATABASE_URL (a test's own cluster). `proxy`: register a `TransactionProxy` in
        front of Sealbridge as the appservice's URL (`self.proxy`). `extra`: top-level YAML sections added to
        the config. `synapse_features_off`: Synapse `experimental_features` to turn off (on by default:
        msc2409_to_device_messages_enabled, msc3202_transaction_extensions)."""
        self.tmp = tmp
        base = database_base_url or os.environ.get("SEALBRIDGE_TEST_DATABASE_URL")
        if not base:
            raise RuntimeError("SEALBRIDGE_TEST_DATABASE_URL is not set: run the tests with scripts/test")
        self.database = f"sbit_{secrets.token_hex(4)}"
        self.admin_url = base
        psql(base, f"CREATE DATABASE {self.database}")
        self.database_url = base.rsplit("/", 1)[0] + "/" + self.database
        self.port = free_port()
        self.bridge_token = secrets.token_urlsafe(32)
        sharing = f"  sharing_policy: {sharing_policy}\n" if sharing_policy else ""
        self.config = tmp / "config.yaml"
        self.config.write_text(f"""
homeserver:
  url: http://127.0.0.1:1
  server_name: localhost
appservice:
  id: sealbridge-it
  port: {self.port}
  as_token: CHANGE_ME
  hs_token: CHANGE_ME
{appservice_extra}
database:
  uri: "{self.database_url}"
encryption:
  pickle_key: "{secrets.token_urlsafe(48)}"
{sharing}{encryption_extra}
management:
  admins: ["@admin:localhost"]
bridge_api:
  token: "{self.bridge_token}"
{bridge_api_extra}
logging:
  format: json
{extra}
""")
        self.registration = tmp / "registration.yaml"
        generated = subprocess.run([SEALBRIDGE, "generate-registration", "--config", self.config, "--write-tokens",
                                    "--output", self.registration], capture_output=True, text=True)
        if generated.returncode != 0:
            # A refused config: say why, and leave no database behind.
            psql(base, f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
            raise AssertionError(f"sealbridge generate-registration exited with {generated.returncode}: "
                                 f"{(generated.stdout + generated.stderr)[-2000:]}")
        self.proxy = None
        if proxy:
            self.proxy = TransactionProxy(self.port)
            text, count = re.subn(r"(?m)^url: .*$", f'url: "{self.proxy.url}"', self.registration.read_text())
            assert count == 1, text
            self.registration.write_text(text)
        self.synapse_dir = tmp / "synapse"
        self.homeserver = subprocess.run(
            [ROOT / "scripts" / "synapse-test-server", "start", self.synapse_dir, self.registration],
            check=True, capture_output=True, text=True,
            env={**os.environ, "SYNAPSE_FEATURES_OFF": ",".join(synapse_features_off)}).stdout.strip()
        # Point Sealbridge at the homeserver now that its port is known.
        self.config.write_text(self.config.read_text().replace("http://127.0.0.1:1", self.homeserver))
        self.tokens = {line.split(":", 1)[0].strip(): line.split('"')[1] for line in self.config.read_text().splitlines()
                       if line.strip().startswith(("as_token:", "hs_token:"))}
        self.secret = (self.synapse_dir / "registration_shared_secret").read_text().strip()
        self.process = None
        try:
            self.start()
        except BaseException:
            self.close()  # no Synapse or database left behind when the daemon does not come up
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict | None = None):
        self.log = open(self.tmp / "sealbridge.log", "ab")
        self.process = subprocess.Popen([SEALBRIDGE, "run", "--config", self.config], stdout=self.log, stderr=self.log,
                                        env={**os.environ, **(env or {})})
        wait_for(lambda: self.healthy(), 30, "sealbridge /health")

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"sealbridge exited with {self.process.returncode}: {(self.tmp / 'sealbridge.log').read_text()[-2000:]}")
        try:
            return request("GET", self.url + "/health")[0] == 200
        except OSError:
            return False

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        finally:
            self.log.close()

    def register(self, localpart: str) -> str:
        """Creates a user with the shared registration secret; returns an access token."""
        return self.register_full(localpart)["access_token"]

    def register_full(self, localpart: str) -> dict:
        """Creates a user with the shared registration secret; returns user_id, device_id, access_token, password."""
        import hashlib
        import hmac
        _, nonce = request("GET", self.homeserver + "/_synapse/admin/v1/register")
        password = secrets.token_urlsafe(12)
        mac = hmac.new(self.secret.encode(), b"\x00".join([nonce["nonce"].encode(), localpart.encode(), password.encode(), b"notadmin"]),
                       hashlib.sha1).hexdigest()
        status, body = request("POST", self.homeserver + "/_synapse/admin/v1/register",
                               body={"nonce": nonce["nonce"], "username": localpart, "password": password, "mac": mac, "admin": False})
        assert status == 200, body
        return {**body, "password": password}

    def log_lines(self) -> list[dict]:
        """Sealbridge's log so far (`logging.format: json`), one object per line; other lines are skipped."""
        lines = []
        for line in (self.tmp / "sealbridge.log").read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        return lines

    def close(self):
        try:
            if self.process and self.process.poll() is None:
                try:
                    self.stop()
                except subprocess.TimeoutExpired:
                    # SIGTERM not honoured in time: kill it rather than leak it (tests of a clean stop
                    # assert on stop() themselves).
                    self.process.kill()
                    self.process.wait(10)
        finally:
            subprocess.run([ROOT / "scripts" / "synapse-test-server", "stop", self.synapse_dir], check=False)
            if self.proxy:
                self.proxy.close()
            psql(self.admin_url, f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.close()


# Helpers for the tests that drive a real end-to-end encrypted client (matrix-nio).

async def e2ee_client(stack, login: dict, store: str):
    """A logged-in matrix-nio client with encryption on and its keys uploaded."""
    from nio import AsyncClient, AsyncClientConfig
    client = AsyncClient(stack.homeserver, login["user_id"], device_id=login["device_id"], store_path=store,
                         config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
    client.restore_login(login["user_id"], login["device_id"], login["access_token"])
    await client.sync(timeout=0)
    if client.should_upload_keys:
        await client.keys_upload()
    return client


async def sync_until(client, predicate, timeout: float, what: str):
    """Syncs (keeping keys uploaded and device lists queried) until `predicate(response)` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.sync(timeout=500, full_state=False)
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        value = predicate(response)
        if value:
            return value
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def joined(room) -> set[str]:
    """Members who joined (nio's `users` also lists the invited)."""
    return set(room.users) - set(room.invited_users)


def timeline(response, room_id):
    room = response.rooms.join.get(room_id) if hasattr(response, "rooms") else None
    return room.timeline.events if room else []
