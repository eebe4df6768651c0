"""Hostile and unlucky input against a real Synapse, a real PostgreSQL and the real `sealbridge run`:
nothing a room member sends, and no database outage, may stop the transaction stream or cost room keys.

(a) NUL in `m.room.encrypted` content; (b) a member re-sharing another sender's room key as his own;
(c) a refused first Olm message; (d) to-device content nested deeper than the decoder's limit in the
same transaction as a room key; (e) PostgreSQL stopped for 10 s while keys and messages flow.
(a)–(d) share one stack whose registration points at a recording proxy; (e) has its own stack and
PostgreSQL cluster.
"""
import asyncio
import base64
import json
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest
import vodozemac as vz

from conftest import ROOT, Stack, e2ee_client, joined, psql, request, sync_until, wait_for
from vodozemac_client import MEGOLM, VodozemacClient

ENCRYPTION = [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}]
SURFACE_AFTER = 2
CONFLICT = "a room key claims a session another sender already shared; the stored claim is kept"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("hostile"), proxy=True,
                    encryption_extra=f"  undecryptable:\n    surface_after_seconds: {SURFACE_AFTER}\n")
    yield running
    running.close()


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def ensure_puppets(stack, puppets):
    for puppet in puppets:
        status, body = request("PUT", f"{stack.url}/_sealbridge/v1/puppets/{quote(puppet)}", token=stack.bridge_token, body={})
        assert status == 200, body


def raw_send(stack, token: str, room_id: str, event_type: str, content: dict) -> str:
    """Sends an event through the client API as is (nio would encrypt it)."""
    status, body = request("PUT", f"{stack.homeserver}/_matrix/client/v3/rooms/{quote(room_id)}/send/{quote(event_type)}/"
                                  f"{secrets.token_hex(8)}", token=token, body=content)
    assert status == 200, body
    return body["event_id"]


def committed(stack) -> int:
    return int(psql(stack.database_url, "SELECT count(*) FROM sealbridge_appservice_transactions"))


def log_messages(stack, message: str) -> list[dict]:
    return [line for line in stack.log_lines() if line.get("msg", "").startswith(message)]


def assert_stream_never_stopped(stack, since: float):
    """No transaction refused or failed, and every transaction since `since` (proxy time) answered 200."""
    bad = [line for line in stack.log_lines()
           if line.get("msg", "").startswith(("transaction failed", "refused transaction body", "transaction quarantined"))]
    assert not bad, bad
    answers = [(r["txn_id"], r["status"], r["answer"]) for r in stack.proxy.transactions() if r["at"] >= since]
    assert answers and all(status == 200 for _, status, _ in answers), answers


def session_id_like() -> str:
    """43 characters of unpadded base64: the shape of a Megolm session id no one shared."""
    return base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")


async def encrypted_room(client, invite: list[str]) -> str:
    created = await client.room_create(invite=invite, initial_state=ENCRYPTION)
    room_id = created.room_id
    await sync_until(client, lambda _: room_id in client.rooms and set(invite) <= joined(client.rooms[room_id]),
                     45, f"{invite} to join")
    if client.should_query_keys:
        await client.keys_query()
    return room_id


async def send_text(client, room_id: str, body: str):
    response = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                                      ignore_unverified_devices=True)
    assert getattr(response, "event_id", None), response
    return response.event_id


class Outbox:
    """The bridge logic's side of the outbox. Tolerates errors (the database may be away: 5xx, refused
    connections) by retrying, and keeps every delivery it saw, in order."""

    def __init__(self, stack):
        self.stack = stack
        self.cursor = "0"
        self.seen: list[dict] = []
        self.errors = 0
        self.lock = threading.Lock()

    def poll(self, timeout_ms: int = 1000) -> list[dict]:
        try:
            status, body = request("GET", f"{self.stack.url}/_sealbridge/v1/events?since={self.cursor}&timeout={timeout_ms}",
                                   token=self.stack.bridge_token)
        except (OSError, ValueError):
            status, body = None, {}
        if status != 200:
            self.errors += 1
            time.sleep(0.3)
            return []
        self.cursor = body["next_batch"]
        now = time.monotonic()
        with self.lock:
            for event in body["events"]:
                event["_received"] = now
            self.seen += body["events"]
        return body["events"]

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            value = predicate(self.seen)
            if value:
                return value
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; saw {summary(self.seen)}")

    def decrypted(self, event_id: str) -> dict | None:
        return next((e for e in self.seen if e["event_id"] == event_id and e["encryption"].get("decrypted")), None)


def summary(events: list[dict]) -> list:
    return [(e.get("room_id"), e.get("sender"), e.get("type"), e["encryption"].get("decrypted"),
             e.get("content", {}).get("body") or e["encryption"].get("error"), e.get("late", False)) for e in events]


# (a)

def test_nul_does_not_stop_the_stream(hostile, tmp_path):
    stack = hostile
    puppets = ["@sealbridge_nul0:localhost", "@sealbridge_nul1:localhost"]
    ensure_puppets(stack, puppets)
    user = stack.register_full("nadia")
    outbox = Outbox(stack)

    async def conversation():
        client = await e2ee_client(stack, user, str(tmp_path))
        try:
            room_id = await encrypted_room(client, puppets)
            started, before = time.monotonic(), committed(stack)
            envelope = {"algorithm": MEGOLM, "sender_key": client.olm.account.identity_keys["curve25519"],
                        "ciphertext": "AwgAEhAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "device_id": client.device_id}
            hostile_events = {
                "NUL in a content value": ({**envelope, "session_id": session_id_like(), "ciphertext": "Awg\u0000AAAA"}, "unknown_session"),
                "NUL in a content key name": ({**envelope, "session_id": session_id_like(), "x\u0000y": "z"}, "unknown_session"),
                "NUL in the session id": ({**envelope, "session_id": "abc\u0000def"}, "malformed"),
                "a 43-character session id with a NUL": ({**envelope, "session_id": session_id_like()[:20] + "\u0000" + session_id_like()[:22]},
                                                         "malformed"),
                "a well-formed unknown session id, NUL elsewhere": (
                    {**envelope, "session_id": session_id_like(), "device_id": "DEV\u0000ICE", "m.relates_to": {"\u0000": ["\u0000"]}},
                    "unknown_session"),
            }
            assert len(hostile_events["a 43-character session id with a NUL"][0]["session_id"]) == 43
            sent = {raw_send(stack, user["access_token"], room_id, "m.room.encrypted", content): (name, expected)
                    for name, (content, expected) in hostile_events.items()}
            normal = await send_text(client, room_id, "after the NULs")

            # The normal message is delivered decrypted: nothing the hostile events did stopped the stream.
            event = await asyncio.to_thread(outbox.wait, lambda _: outbox.decrypted(normal), 45, "the normal message")
            assert event["content"]["body"] == "after the NULs" and event["sender"] == user["user_id"]

            # Each hostile event reaches the bridge logic as undecryptable: malformed at once, the parked
            # ones after surface_after_seconds.
            def all_hostile(seen):
                found = {e["event_id"]: e for e in seen if e["event_id"] in sent}
                return found if len(found) == len(sent) else None
            found = await asyncio.to_thread(outbox.wait, all_hostile, SURFACE_AFTER + 20, "the hostile events as undecryptable")
            for event_id, (name, expected) in sent.items():
                event = found[event_id]
                assert event["room_id"] == room_id and event["type"] == "m.room.encrypted", (name, event)
                encryption = event["encryption"]
                assert encryption["encrypted"] is True and encryption["decrypted"] is False, (name, event)
                if expected == "malformed":
                    assert encryption["error"]["code"] == "malformed", (name, event)
                else:
                    assert (encryption["error"]["code"], encryption["error"]["reason"]) == ("unknown_session", "unknown_session"), (name, event)

            assert stack.process.poll() is None and stack.healthy()
            after = committed(stack)
            assert after > before
            assert_stream_never_stopped(stack, started)

            # And the stream keeps going.
            last = await send_text(client, room_id, "still flowing")
            await asyncio.to_thread(outbox.wait, lambda _: outbox.decrypted(last), 45, "a message after the hostile ones")
            assert committed(stack) > after
            assert_stream_never_stopped(stack, started)
        finally:
            await client.close()

    asyncio.run(conversation())


# (b)

async def room_with_history(client, mallory: VodozemacClient, puppet: str):
    """A room of Alice and Mallory where Alice's Megolm session already encrypted 3 messages when
    `puppet` joins. Returns the room, Alice's outbound session, and its key at index 0 — what Mallory,
    a member when the session started, received."""
    created = await client.room_create(invite=[mallory.user_id], initial_state=ENCRYPTION)
    room_id = created.room_id
    mallory.join(room_id)
    await sync_until(client, lambda _: room_id in client.rooms and mallory.user_id in joined(client.rooms[room_id]),
                     45, "mallory to join")
    if client.should_query_keys:
        await client.keys_query()
    client.olm.create_outbound_group_session(room_id)
    session = client.olm.outbound_group_sessions[room_id]
    key_at_0 = session.session_key
    for n in range(3):
        await send_text(client, room_id, f"before the puppet {n}")
    assert client.olm.outbound_group_sessions[room_id] is session and session.message_index == 3
    await client.room_invite(room_id, puppet)
    await sync_until(client, lambda _: puppet in joined(client.rooms[room_id]), 45, f"{puppet} to join")
    if client.should_query_keys:
        await client.keys_query()
    return room_id, session, key_at_0


def keep_session(client, room_id: str, session):
    """nio starts a new session when a member joins; keep the old one instead, unshared, so that nio's
    own sharing sends it to the new member from its current index (3)."""
    session.shared = False
    client.olm.outbound_group_sessions[room_id] = session


def test_a_reshared_room_key_does_not_take_over_the_session(hostile, tmp_path):
    stack = hostile
    first, after = "@sealbridge_take1:localhost", "@sealbridge_take2:localhost"
    ensure_puppets(stack, [first, after])
    alice = stack.register_full("alice_t")
    mallory = VodozemacClient(stack, stack.register_full("mallory"))
    mallory.upload_keys(10)
    outbox = Outbox(stack)

    def claims(room_id, session_id) -> set[str]:
        rows = psql(stack.database_url, f"SELECT sender_user_id FROM sealbridge_inbound_group_sessions "
                                        f"WHERE room_id = '{room_id}' AND session_id = '{session_id}'")
        return set(rows.split()) if rows else set()

    def mallory_reshares(room_id, session, key_at_0, puppet):
        channel = mallory.open_olm(puppet, "SEALBRIDGE")
        mallory.send_olm(channel, "m.room_key", VodozemacClient.room_key(room_id, session.id, key_at_0))
        wait_for(lambda: mallory.user_id in claims(room_id, session.id), 30, "Mallory's re-shared key to be stored")

    async def conversation():
        client = await e2ee_client(stack, alice, str(tmp_path))
        alice_key = client.olm.account.identity_keys["curve25519"]
        try:
            expected = {}
            # Mallory's copy (from index 0) comes before Alice's own key (from index 3).
            room1, session1, key1 = await room_with_history(client, mallory, first)
            await asyncio.to_thread(mallory_reshares, room1, session1, key1, first)
            keep_session(client, room1, session1)
            for body in ["r1: after mallory 0", "r1: after mallory 1"]:
                expected[await send_text(client, room1, body)] = (room1, session1.id, body)

            # Alice's key (from index 3) comes first, then Mallory's copy (from index 0).
            room2, session2, key2 = await room_with_history(client, mallory, after)
            keep_session(client, room2, session2)
            event_id = await send_text(client, room2, "r2: before mallory")
            expected[event_id] = (room2, session2.id, "r2: before mallory")
            await asyncio.to_thread(outbox.wait, lambda _: outbox.decrypted(event_id), 45, "Alice's first message in room 2")
            await asyncio.to_thread(mallory_reshares, room2, session2, key2, after)
            for body in ["r2: after mallory 0", "r2: after mallory 1"]:
                expected[await send_text(client, room2, body)] = (room2, session2.id, body)
            assert session1.message_index == 5 and session2.message_index == 6, "nio started another session"

            await asyncio.to_thread(outbox.wait, lambda _: all(outbox.decrypted(e) for e in expected), 45, "Alice's messages")
            return alice_key, expected, (room1, session1.id), (room2, session2.id)
        finally:
            await client.close()

    alice_key, expected, (room1, sid1), (room2, sid2) = asyncio.run(conversation())
    outbox.poll(timeout_ms=500)
    for event_id, (room_id, session_id, body) in expected.items():
        event = outbox.decrypted(event_id)
        assert (event["room_id"], event["sender"], event["content"]["body"]) == (room_id, alice["user_id"], body), event
        assert event["encryption"]["sender_key"] == alice_key, event
        assert event["encryption"]["session_id"] == session_id, event
    in_rooms = [e for e in outbox.seen if e["room_id"] in (room1, room2)]
    assert not [e for e in in_rooms if e["sender"] == mallory.user_id or e["encryption"].get("sender_key") == mallory.curve25519], \
        summary(in_rooms)
    assert not [e for e in in_rooms if not e["encryption"].get("decrypted", True)], summary(in_rooms)
    # Both claims are kept, each with its owner; the conflict was logged for both orders.
    assert claims(room1, sid1) == claims(room2, sid2) == {alice["user_id"], mallory.user_id}
    conflicts = {line.get("session_id") for line in log_messages(stack, CONFLICT)}
    assert {sid1, sid2} <= conflicts, log_messages(stack, CONFLICT)
    assert stack.process.poll() is None


# (c)

def test_a_refused_first_olm_message_does_not_wedge_its_sender(hostile):
    stack = hostile
    puppet = "@sealbridge_olm:localhost"
    ensure_puppets(stack, [puppet])
    bob = VodozemacClient(stack, stack.register_full("bob"))
    bob.upload_keys()
    outbox = Outbox(stack)
    room_id = bob.api("POST", "/createRoom", {"invite": [puppet], "initial_state": ENCRYPTION})["room_id"]
    wait_for(lambda: puppet in bob.api("GET", f"/rooms/{quote(room_id)}/joined_members")["joined"], 30, "the puppet to join")

    group = vz.GroupSession()
    key = VodozemacClient.room_key(room_id, group.session_id, group.session_key.to_base64())
    channel = bob.open_olm(puppet, "SEALBRIDGE")
    refused = bob.olm_payload(channel, "m.room_key", key)
    refused["recipient_keys"] = {"ed25519": bob.ed25519}  # not the puppet device's key: the daemon must refuse it
    assert bob.send_olm(channel, "m.room_key", key, payload=refused) == 0  # pre-key message

    def refusals():
        return [line for line in log_messages(stack, "to-device message not decrypted")
                if line.get("sender") == bob.user_id and line.get("recipient") == puppet]
    wait_for(refusals, 30, "the daemon to refuse Bob's first payload")
    assert psql(stack.database_url, f"SELECT count(*) FROM sealbridge_inbound_group_sessions WHERE session_id = '{group.session_id}'") == "0"

    # Still a pre-key message (the daemon never answered), on the same Olm session: it must decrypt.
    assert bob.send_olm(channel, "m.room_key", key) == 0
    event_id = bob.send_megolm(room_id, group, "m.room.message", {"msgtype": "m.text", "body": "after a refused first message"})
    event = outbox.wait(lambda _: outbox.decrypted(event_id), 30, "Bob's Megolm event, decrypted")
    assert (event["sender"], event["content"]["body"]) == (bob.user_id, "after a refused first message"), event
    assert event["encryption"]["sender_key"] == bob.curve25519
    assert len(refusals()) == 1, refusals()
    assert stack.process.poll() is None


# (d)

DEEP = "org.sealbridge.test.deep"


def test_deep_to_device_does_not_cost_the_room_key_in_the_same_transaction(hostile, tmp_path):
    stack = hostile
    puppet = "@sealbridge_deep:localhost"
    ensure_puppets(stack, [puppet])
    user = stack.register_full("dora")
    outbox = Outbox(stack)
    deep: dict = {"n": 0}
    for _ in range(599):
        deep = {"d": deep}  # 600 levels of objects

    def carries_both(record) -> bool:
        body = json.loads(record["body"])
        to_device = body.get("to_device") or body.get("de.sorunome.msc2409.to_device") or []
        return (any(e.get("type") == DEEP and e.get("to_user_id") == puppet for e in to_device)
                and any(e.get("type") == "m.room.encrypted" and e.get("sender") == user["user_id"] and e.get("to_user_id") == puppet
                        for e in to_device))

    async def conversation():
        client = await e2ee_client(stack, user, str(tmp_path))
        try:
            room_id = await encrypted_room(client, [puppet])
            stack.proxy.hold()
            try:
                status, body = request("PUT", f"{stack.homeserver}/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.topic/",
                                       token=user["access_token"], body={"topic": "a transaction to hold"})
                assert status == 200, body
                await asyncio.to_thread(wait_for, stack.proxy.holding.is_set, 30, "a transaction held at the proxy")
                status, body = request("PUT", f"{stack.homeserver}/_matrix/client/v3/sendToDevice/{DEEP}/{secrets.token_hex(8)}",
                                       token=user["access_token"], body={"messages": {puppet: {"SEALBRIDGE": deep}}})
                assert status == 200, body
                event_id = await send_text(client, room_id, "behind the deep one")  # the room key goes by to-device first
                # Synapse hands new to-device messages to the appservice queue in the background; nothing
                # observable tells when they are queued.
                await asyncio.sleep(1)
            finally:
                stack.proxy.release()
            record = await asyncio.to_thread(
                wait_for, lambda: next((r for r in stack.proxy.transactions() if r["status"] is not None and carries_both(r)), None),
                30, "a transaction carrying the deep to-device message and the room key")
            assert record["status"] == 200, (record["txn_id"], record["status"], record["answer"])
            event = await asyncio.to_thread(outbox.wait, lambda _: outbox.decrypted(event_id), 30, "the message, decrypted")
            assert event["content"]["body"] == "behind the deep one"
        finally:
            await client.close()

    asyncio.run(conversation())


# (e)

def pg_cluster(command: str, directory: str) -> str:
    return subprocess.run([ROOT / "scripts" / "pg-test-cluster", command, directory], check=True, capture_output=True,
                          text=True).stdout.strip()


HOLD = 3


def test_postgres_stopped_for_ten_seconds_while_keys_and_messages_flow(tmp_path_factory, tmp_path, record_property):
    # Not under pytest's tmp (mode 700, root's): as root the cluster runs as the postgres user.
    cluster = tempfile.mkdtemp(prefix="sbit-pg-")
    stack = outage_thread = None
    try:
        url = pg_cluster("start", cluster)
        stack = Stack(tmp_path_factory.mktemp("outage"), database_base_url=url, proxy=True,
                      appservice_extra=f"  journal:\n    hold_seconds: {HOLD}\n")
        puppet = "@sealbridge_outage:localhost"
        ensure_puppets(stack, [puppet])
        user = stack.register_full("olga")
        outbox = Outbox(stack)
        times: dict[str, float] = {}
        exits: list[int] = []
        stop_consuming = threading.Event()

        def consume():
            while not stop_consuming.is_set():
                if stack.process.poll() is not None:
                    exits.append(stack.process.returncode)
                    return
                outbox.poll(timeout_ms=500)

        def outage():
            pg_cluster("stop", cluster)
            times["down"] = time.monotonic()
            time.sleep(10)  # the outage itself
            pg_cluster("start", cluster)
            times["up"] = time.monotonic()

        consumer = threading.Thread(target=consume, daemon=True)
        outage_thread = threading.Thread(target=outage, daemon=True)

        async def conversation():
            client = await e2ee_client(stack, user, str(tmp_path))
            try:
                room_id = await encrypted_room(client, [puppet])
                consumer.start()
                sent, sent_at, sessions = {}, {}, set()
                for n in range(40):
                    if n and n % 4 == 0:
                        client.invalidate_outbound_session(room_id)  # the next message shares a new room key
                    if n == 6:
                        outage_thread.start()
                    event_id = await send_text(client, room_id, f"message {n}")
                    sent[event_id], sent_at[event_id] = f"message {n}", time.monotonic()
                    sessions.add(client.olm.outbound_group_sessions[room_id].id)
                    await asyncio.sleep(0.5)
                return room_id, sent, sent_at, sessions
            finally:
                await client.close()

        room_id, sent, sent_at, sessions = asyncio.run(conversation())
        outage_thread.join(60)
        assert "up" in times, "PostgreSQL did not come back"
        assert len(sessions) == 10
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(outbox.decrypted(e) for e in sent) and not exits:
            time.sleep(0.2)
        stop_consuming.set()
        consumer.join(10)
        assert not exits, f"sealbridge exited with {exits}"
        assert stack.process.poll() is None
        missing = sorted(body for event_id, body in sent.items() if not outbox.decrypted(event_id))
        assert not missing, (missing, summary(outbox.seen))
        for event_id, body in sent.items():
            event = outbox.decrypted(event_id)
            assert (event["room_id"], event["sender"], event["content"]["body"]) == (room_id, user["user_id"], body)

        # How long delivery took to resume: the first delivery after PostgreSQL was back, and the last
        # of the messages sent while it was away (or before).
        outage_sent = [e for e in sent if times["down"] <= sent_at[e] < times["up"]]
        assert len(outage_sent) >= 10, "too few messages were sent during the outage"
        resumed = min(e["_received"] for e in outbox.seen if e["_received"] >= times["up"]) - times["up"]
        backlog = max(outbox.decrypted(e)["_received"] for e in sent if sent_at[e] < times["up"]) - times["up"]
        latest = max((outbox.decrypted(e)["_received"] - sent_at[e] for e in sent if sent_at[e] >= times["up"] + backlog), default=0.0)
        record_property("delivery_resumed_after_s", round(resumed, 2))
        record_property("backlog_delivered_after_s", round(backlog, 2))
        print(f"\n{len(outage_sent)} messages sent during the outage; delivery resumed {resumed:.1f} s after PostgreSQL was back, "
              f"all of them delivered after {backlog:.1f} s; afterwards at most {latest:.2f} s from send to delivery; "
              f"{outbox.errors} bridge API errors while it was away")

        # Every transaction is answered within hold_seconds (then journaled), plus a little for the last
        # attempt and the journal write: the homeserver must never wait on the database's outage.
        held = [(r["txn_id"], round((r["answered"] or time.monotonic()) - r["at"], 1)) for r in stack.proxy.transactions()
                if (r["answered"] or time.monotonic()) - r["at"] > HOLD + 2]
        assert not held, f"transactions held longer than hold_seconds ({HOLD} s): {held}; " + \
            json.dumps([line for line in stack.log_lines() if "hold" in line.get("msg", "") or "journal" in line.get("msg", "")
                        or "lock" in line.get("msg", "")])[:3000]
        assert log_messages(stack, "transaction journaled"), "the journal was not used"
        assert log_messages(stack, "transaction journal applied"), "the journal was not applied"
        assert log_messages(stack, "took the instance lock again"), "the instance lock was not taken again"
        assert not log_messages(stack, "transaction failed"), log_messages(stack, "transaction failed")
    finally:
        if outage_thread and outage_thread.is_alive():
            outage_thread.join(60)  # it starts the cluster again, which closing the stack needs
        if stack:
            stack.close()
        subprocess.run([ROOT / "scripts" / "pg-test-cluster", "stop", cluster], check=False, capture_output=True)
        shutil.rmtree(cluster, ignore_errors=True)
