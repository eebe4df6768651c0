"""Deliveries pushed to a webhook: signed with HMAC-SHA256 over the body, retried while the consumer
fails, acknowledged only on 2xx, in order; the long-poll endpoint steps aside."""
import hashlib
import hmac
import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import Stack, free_port, psql, request, wait_for

BOT = "@sealbridge:localhost"


class Receiver:
    """A webhook consumer on 127.0.0.1 that fails its first `failures` requests with 503."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls = []  # (status answered, signature header, body bytes)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if len(outer.calls) < outer.failures else 200
                outer.calls.append((status, self.headers.get("X-Sealbridge-Signature"), body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self):
        return [json.loads(body) for status, _, body in self.calls if status == 200]


@pytest.fixture(scope="module")
def webhook(tmp_path_factory):
    receiver = Receiver(failures=2)
    secret = secrets.token_urlsafe(32)
    stack = Stack(tmp_path_factory.mktemp("webhook"), bridge_api_extra=(
        f"  webhook:\n    url: http://127.0.0.1:{receiver.port}/hook\n    secret: \"{secret}\""))
    yield stack, receiver, secret
    stack.close()
    receiver.server.shutdown()


def test_deliveries_are_signed_retried_and_acknowledged(webhook):
    stack, receiver, secret = webhook
    alice = stack.register("walice")
    status, room = request("POST", f"{stack.homeserver}/_matrix/client/v3/createRoom", token=alice,
                           body={"invite": [BOT], "preset": "private_chat"})
    assert status == 200, room
    room_id = urllib.parse.quote(room["room_id"])
    wait_for(lambda: BOT in [e["state_key"] for e in request(
        "GET", f"{stack.homeserver}/_matrix/client/v3/rooms/{room_id}/members", token=alice)[1].get("chunk", [])
        if e["content"]["membership"] == "join"], 30, "the bot to join")
    for n in range(3):
        status, _ = request("PUT", f"{stack.homeserver}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/wh{n}",
                            token=alice, body={"msgtype": "m.text", "body": f"hook {n}"})
        assert status == 200

    def all_messages():
        bodies = [e["content"].get("body") for batch in receiver.delivered() for e in batch["events"]
                  if e["type"] == "m.room.message"]
        return bodies if {"hook 0", "hook 1", "hook 2"} <= set(bodies) else None

    bodies = wait_for(all_messages, 60, "the messages at the webhook")
    assert [b for b in bodies if b.startswith("hook")] == ["hook 0", "hook 1", "hook 2"], "out of order or repeated"
    # The first two POSTs were refused; what they carried came again.
    assert [status for status, _, _ in receiver.calls[:2]] == [503, 503]
    first_refused = {e["event_id"] for e in json.loads(receiver.calls[0][2])["events"]}
    redelivered = {e["event_id"] for batch in receiver.delivered() for e in batch["events"]}
    assert first_refused <= redelivered
    for status, signature, body in receiver.calls:
        assert signature == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Acknowledged on 200: the outbox empties.
    wait_for(lambda: psql(stack.database_url, "SELECT count(*) FROM sealbridge_outbox") == "0", 20, "the outbox to empty")
    # With a webhook, the long-poll endpoint refuses (two consumers would steal each other's deliveries).
    status, body = request("GET", f"{stack.url}/_sealbridge/v1/events", token=stack.bridge_token)
    assert status == 409, body
