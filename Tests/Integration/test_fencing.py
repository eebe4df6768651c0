"""Two `sealbridge run` on one database: when the active instance's lock session is killed, the standby
takes over with a newer fencing epoch, and the old instance cannot write a single piece of crypto state
any more (it says standby and holds/journals what reaches it), while a real client keeps decrypting
what the new one sends (no forked ratchet)."""
import asyncio
import re
import signal
import subprocess
import time
import urllib.parse
from types import SimpleNamespace

from conftest import SEALBRIDGE, Stack, e2ee_client, psql, request, wait_for
from test_hostile import Outbox, encrypted_room, ensure_puppets, send_text
from nio import RoomMessageText

HOLD = 1


def health(url: str) -> tuple[int, dict]:
    try:
        return request("GET", url + "/health")
    except OSError:
        return 0, {}


def lock_holders(stack) -> list[str]:
    rows = psql(stack.database_url, f"""
        SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '{stack.database}'""")
    return [row for row in rows.splitlines() if row]


def test_a_killed_lock_session_hands_over_and_the_old_instance_cannot_write(tmp_path_factory, tmp_path):
    stack = Stack(tmp_path_factory.mktemp("fencing"), proxy=True, appservice_extra=f"  journal:\n    hold_seconds: {HOLD}\n")
    second = None
    try:
        # The standby: the same configuration on another port, its own journal next to its own copy.
        b_dir = tmp_path_factory.mktemp("standby")
        b_port = __import__("conftest").free_port()
        config = re.sub(r"(?m)^  port: \d+$", f"  port: {b_port}", stack.config.read_text())
        (b_dir / "config.yaml").write_text(config)
        b_log = open(b_dir / "sealbridge.log", "ab")
        second = subprocess.Popen([SEALBRIDGE, "run", "--config", b_dir / "config.yaml"], stdout=b_log, stderr=b_log)
        b_url = f"http://127.0.0.1:{b_port}"
        wait_for(lambda: "waiting as standby" in (b_dir / "sealbridge.log").read_text(), 30, "the second instance to wait as standby")
        assert psql(stack.database_url, "SELECT epoch FROM sealbridge_instance") == "1"

        puppet = "@sealbridge_fenced:localhost"
        ensure_puppets(stack, [puppet])
        user = stack.register_full("fay")
        outbox_a = Outbox(stack)
        outbox_b = Outbox(SimpleNamespace(url=b_url, bridge_token=stack.bridge_token))

        async def conversation():
            client = await e2ee_client(stack, user, str(tmp_path))
            try:
                room_id = await encrypted_room(client, [puppet])
                before = await send_text(client, room_id, "before the takeover")
                outbox_a.wait(lambda seen: outbox_a.decrypted(before), 30, "the first message through the first instance")

                # Kill the active instance's lock session: the standby takes over with a newer epoch.
                holders = lock_holders(stack)
                assert len(holders) == 1, holders
                psql(stack.database_url, f"SELECT pg_terminate_backend({holders[0]})")
                wait_for(lambda: health(b_url)[0] == 200, 30, "the second instance to serve")
                wait_for(lambda: health(stack.url) == (503, {"status": "standby"}), 10, "the first instance to say standby")
                assert psql(stack.database_url, "SELECT epoch FROM sealbridge_instance") == "2"
                assert f"pid {second.pid}" in psql(stack.database_url, "SELECT holder FROM sealbridge_instance")

                # The old instance writes nothing: a transaction sent straight to it is held, journaled
                # and answered 200, but not committed; a send through its bridge API is refused.
                log_rows = psql(stack.database_url, "SELECT count(*) FROM sealbridge_transaction_log")
                status, _ = request("PUT", f"{stack.url}/_matrix/app/v1/transactions/straight-to-the-old-one",
                                    token=stack.tokens["hs_token"],
                                    body={"events": [], "org.matrix.msc3202.device_one_time_keys_count": {puppet: {"SEALBRIDGE": {}}}})
                assert status == 200
                assert psql(stack.database_url, "SELECT count(*) FROM sealbridge_transaction_log") == log_rows
                assert psql(stack.database_url,
                            "SELECT count(*) FROM sealbridge_appservice_transactions WHERE txn_id = 'straight-to-the-old-one'") == "0"
                path = f"/_sealbridge/v1/rooms/{urllib.parse.quote(room_id, safe='')}/send/m.room.message/old-1?as={urllib.parse.quote(puppet, safe='')}"
                status, body = request("PUT", stack.url + path, token=stack.bridge_token, body={"msgtype": "m.text", "body": "from the old instance"})
                assert (status, body.get("errcode")) == (503, "M_UNKNOWN") and "standby" in body.get("error", ""), body

                # The homeserver now reaches the new instance (a load balancer following /health).
                stack.proxy.target = ("127.0.0.1", b_port)
                after = await send_text(client, room_id, "after the takeover")
                outbox_b.wait(lambda seen: outbox_b.decrypted(after), 45, "the message through the new instance")

                # The puppet answers through the new instance; the user's client decrypts it.
                path = f"/_sealbridge/v1/rooms/{urllib.parse.quote(room_id, safe='')}/send/m.room.message/new-1?as={urllib.parse.quote(puppet, safe='')}"
                status, body = request("PUT", b_url + path, token=stack.bridge_token, body={"msgtype": "m.text", "body": "from the new instance"})
                assert status == 200, body
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    response = await client.sync(timeout=500)
                    room = response.rooms.join.get(room_id) if hasattr(response, "rooms") else None
                    if room and any(isinstance(e, RoomMessageText) and e.body == "from the new instance" for e in room.timeline.events):
                        return
                raise AssertionError("the user's client did not decrypt the new instance's message")
            finally:
                await client.close()

        asyncio.run(conversation())
        log = (stack.tmp / "sealbridge.log").read_text()
        assert "lost the PostgreSQL instance lock" in log
        assert stack.process.poll() is None, "the old instance must stay up (standby), not exit"
    finally:
        if second is not None and second.poll() is None:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(20)
            except subprocess.TimeoutExpired:
                second.kill()
        stack.close()
