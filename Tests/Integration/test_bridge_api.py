"""The bridge API against a real Synapse and a real E2EE client (matrix-nio): puppets in an encrypted
room receive a user's messages, the bridge logic reads them decrypted from the durable outbox and
answers as a puppet; a restart loses nothing and delivers nothing twice; an event that arrives before its
room key is delivered once the key comes."""
import asyncio
import json
import time
import urllib.parse

from nio import MegolmEvent, RoomMessageText
from nio.crypto.sessions import OutboundGroupSession

from conftest import e2ee_client, joined, psql, request, sync_until, timeline

PUPPETS = [f"@sealbridge_p{n}:localhost" for n in range(3)]


def api(stack, method: str, path: str, body: dict | None = None, token: str | None = None):
    return request(method, f"{stack.url}/_sealbridge/v1{path}", token=token or stack.bridge_token, body=body)


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


class Consumer:
    """The bridge logic's side of the outbox: long-polls, remembers its cursor, acknowledges by passing it."""

    def __init__(self, stack):
        self.stack = stack
        self.cursor = "0"

    def poll(self, timeout_ms: int = 1000) -> list[dict]:
        status, body = api(self.stack, "GET", f"/events?since={self.cursor}&timeout={timeout_ms}")
        assert status == 200, body
        self.cursor = body["next_batch"]
        return body["events"]

    def messages_until(self, bodies: set[str], timeout: float) -> list[dict]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen += [e for e in self.poll() if e["type"] == "m.room.message"]
            if bodies <= {e["content"].get("body") for e in seen}:
                return seen
        raise AssertionError(f"timed out waiting for {bodies - {e['content'].get('body') for e in seen}}; saw {seen}")


def test_bridge_api_refuses_wrong_tokens_and_foreign_users(stack):
    status, body = api(stack, "GET", "/events", token="not-the-token-" + "x" * 30)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = request("GET", f"{stack.url}/_sealbridge/v1/events")
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
    # The token goes in the header only: never in a URL (access logs, proxies), even the right one.
    status, body = request("GET", f"{stack.url}/_sealbridge/v1/events?access_token={stack.bridge_token}")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), body
    # The appservice's hs_token is not the bridge API's token.
    status, _ = api(stack, "GET", "/events", token=stack.tokens["hs_token"])
    assert status == 403
    status, body = api(stack, "PUT", f"/puppets/{quote('@someone:localhost')}", body={"displayname": "x"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
    status, body = api(stack, "PUT", f"/rooms/{quote('!nowhere:localhost')}/send/m.room.message/t1?as={quote('@someone:localhost')}",
                       body={"msgtype": "m.text", "body": "x"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body


def test_puppets_receive_decrypted_messages_and_answer_encrypted_across_a_restart(stack, tmp_path):
    for n, puppet in enumerate(PUPPETS):
        status, body = api(stack, "PUT", f"/puppets/{quote(puppet)}", body={"displayname": f"Puppet {n}"})
        assert status == 200, body
        assert body == {"user_id": puppet, "device_id": "SEALBRIDGE"}
    user = stack.register_full("carol")
    consumer = Consumer(stack)

    async def conversation():
        client = await e2ee_client(stack, user, str(tmp_path))
        try:
            created = await client.room_create(
                invite=PUPPETS, name="bridged",
                initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
            room_id = created.room_id
            await sync_until(client, lambda _: room_id in client.rooms and set(PUPPETS) <= joined(client.rooms[room_id]),
                             45, "the puppets to accept the invite")
            if client.should_query_keys:
                await client.keys_query()

            # (b) the user writes; the bridge logic reads plaintext with the decryption facts.
            for n in range(2):
                await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"hello puppets {n}"},
                                       ignore_unverified_devices=True)
            got = await asyncio.to_thread(consumer.messages_until, {"hello puppets 0", "hello puppets 1"}, 45)
            mine = [e for e in got if e["sender"] == user["user_id"]]
            assert [e["content"]["body"] for e in mine] == ["hello puppets 0", "hello puppets 1"], "out of order or repeated"
            for event in mine:
                assert event["room_id"] == room_id
                assert event["encryption"]["encrypted"] is True and event["encryption"]["decrypted"] is True
                assert event["encryption"]["sender_device"] == user["device_id"]
                assert event["encryption"]["sender_key"] == client.olm.account.identity_keys["curve25519"]
                assert event["delivery_id"]
            # The last batch is not acknowledged yet, so its rows (with the last message) are still in
            # the table; sealed, so no plaintext in it.
            last = mine[-1]["delivery_id"]
            assert psql(stack.database_url, f"SELECT count(*) FROM sealbridge_outbox WHERE id = {int(last)}") == "1"
            assert psql(stack.database_url,
                        "SELECT count(*) FROM sealbridge_outbox WHERE position('hello puppets' in encode(sealed, 'escape')) > 0") == "0"

            # A puppet answers through the API; the user's client decrypts it. A retry is a no-op.
            path = f"/rooms/{quote(room_id)}/send/m.room.message/reply-1?as={quote(PUPPETS[1])}"
            status, sent = api(stack, "PUT", path, body={"msgtype": "m.text", "body": "hi carol"})
            assert status == 200, sent
            status, again = api(stack, "PUT", path, body={"msgtype": "m.text", "body": "hi carol"})
            assert (status, again) == (200, sent)

            undecrypted = []

            def reply_from(puppet, body):
                def find(response):
                    for event in timeline(response, room_id):
                        if isinstance(event, MegolmEvent) and event.sender == puppet:
                            undecrypted.append(event)
                        if isinstance(event, RoomMessageText) and event.sender == puppet and event.body == body:
                            return event
                    return None
                return find

            event = await sync_until(client, reply_from(PUPPETS[1], "hi carol"), 45, "the puppet's encrypted reply")
            assert event.decrypted and event.event_id == sent["event_id"]
            assert not undecrypted, "the puppet's reply arrived undecryptable"

            # (e) a message committed but not yet consumed survives a restart; nothing comes twice.
            consumer.poll(timeout_ms=0)  # acknowledges everything so far
            await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "before restart"},
                                   ignore_unverified_devices=True)
            deadline = time.monotonic() + 30
            while int(psql(stack.database_url, "SELECT count(*) FROM sealbridge_outbox")) == 0:
                assert time.monotonic() < deadline, "the message before the restart was not queued"
                await asyncio.sleep(0.2)
            assert stack.stop() == 0
            stack.start()
            await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "after restart"},
                                   ignore_unverified_devices=True)
            got = await asyncio.to_thread(consumer.messages_until, {"before restart", "after restart"}, 45)
            got += await asyncio.to_thread(consumer.poll, 1500)
            bodies = [e["content"]["body"] for e in got if e["type"] == "m.room.message" and e["sender"] == user["user_id"]]
            assert bodies == ["before restart", "after restart"], bodies

            # The puppet's outbound session survived the restart too: its next message still decrypts.
            status, sent = api(stack, "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/reply-2?as={quote(PUPPETS[2])}",
                               body={"msgtype": "m.text", "body": "still here"})
            assert status == 200, sent
            event = await sync_until(client, reply_from(PUPPETS[2], "still here"), 45, "a puppet's reply after the restart")
            assert event.decrypted
            assert not undecrypted

            # (f) the Megolm event reaches Sealbridge before its room key: parked, then delivered once
            # the key arrives. A fresh session is encrypted from a copy, so the original still exports
            # the key from index 0, and only then shared.
            client.olm.create_outbound_group_session(room_id)
            session = client.olm.outbound_group_sessions[room_id]
            ahead = OutboundGroupSession.from_pickle(session.pickle(), "")
            ahead.shared = True  # the copy only encrypts; the original is shared below
            payload = {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "key comes later"}, "room_id": room_id}
            content = {"algorithm": "m.megolm.v1.aes-sha2", "sender_key": client.olm.account.identity_keys["curve25519"],
                       "ciphertext": ahead.encrypt(json.dumps(payload)), "session_id": session.id, "device_id": client.device_id}
            status, body = request("PUT", f"{stack.homeserver}/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.encrypted/early-1",
                                   token=user["access_token"], body=content)
            assert status == 200, body
            deadline = time.monotonic() + 30
            while psql(stack.database_url, f"SELECT count(*) FROM sealbridge_parked_events WHERE event_id = '{body['event_id']}'") != "1":
                assert time.monotonic() < deadline, "the early event was not parked"
                await asyncio.sleep(0.2)
            early = [e for e in await asyncio.to_thread(consumer.poll, 500) if e["event_id"] == body["event_id"]]
            assert early == [], "delivered before its key arrived"
            await client.share_group_session(room_id, ignore_unverified_devices=True)
            got = await asyncio.to_thread(consumer.messages_until, {"key comes later"}, 45)
            late = [e for e in got if e["event_id"] == body["event_id"]]
            assert len(late) == 1 and late[0]["encryption"]["decrypted"] is True
            assert psql(stack.database_url, f"SELECT count(*) FROM sealbridge_parked_events WHERE event_id = '{body['event_id']}'") == "0"
        finally:
            await client.close()

    asyncio.run(conversation())


def second_login(stack, user: dict) -> dict:
    status, body = request("POST", f"{stack.homeserver}/_matrix/client/v3/login", body={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user["user_id"]}, "password": user["password"]})
    assert status == 200, body
    return body


def test_new_devices_get_the_key_and_leavers_do_not(stack, tmp_path):
    puppet = PUPPETS[0]
    assert api(stack, "PUT", f"/puppets/{quote(puppet)}", body={})[0] == 200
    erin, frank = stack.register_full("erin"), stack.register_full("frank")

    def send(room_id, txn, body):
        status, sent = api(stack, "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/{txn}?as={quote(puppet)}",
                           body={"msgtype": "m.text", "body": body})
        assert status == 200, sent
        return sent["event_id"]

    def session_of(room_id, event_id):
        status, event = request("GET", f"{stack.homeserver}/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(event_id)}",
                                token=erin["access_token"])
        assert status == 200 and event["type"] == "m.room.encrypted", event
        return event["content"]["session_id"]

    def text_from(room_id, body):
        def find(response):
            for event in timeline(response, room_id):
                if isinstance(event, RoomMessageText) and event.sender == puppet and event.body == body:
                    return event
            return None
        return find

    async def conversation():
        (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "f").mkdir()
        phone = await e2ee_client(stack, erin, str(tmp_path / "a"))
        other = await e2ee_client(stack, frank, str(tmp_path / "f"))
        laptop = None
        try:
            created = await phone.room_create(
                invite=[puppet, frank["user_id"]],
                initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
            room_id = created.room_id
            await other.join(room_id)
            await sync_until(phone, lambda _: room_id in phone.rooms and {puppet, frank["user_id"]} <= joined(phone.rooms[room_id]),
                             45, "the puppet and frank to join")
            first = send(room_id, "c-1", "first")
            await sync_until(phone, text_from(room_id, "first"), 45, "erin's phone to decrypt the first message")
            await sync_until(other, text_from(room_id, "first"), 45, "frank to decrypt the first message")

            # (c) erin logs in on a second device; the next message reaches it (device list change → re-share).
            laptop = await e2ee_client(stack, second_login(stack, erin), str(tmp_path / "b"))
            await asyncio.sleep(2)  # the device-list change travels to Sealbridge in a transaction
            second = send(room_id, "c-2", "second")
            event = await sync_until(laptop, text_from(room_id, "second"), 45, "erin's new device to decrypt the next message")
            assert event.decrypted
            assert session_of(room_id, second) == session_of(room_id, first), "no member left: the session is kept"

            # (d) frank leaves; the next message uses a new session whose key frank never receives.
            await other.room_leave(room_id)
            await sync_until(phone, lambda _: frank["user_id"] not in phone.rooms[room_id].users, 45, "frank to leave")
            await asyncio.sleep(1)
            third = send(room_id, "d-1", "third")
            await sync_until(phone, text_from(room_id, "third"), 45, "erin to decrypt the message after frank left")
            new_session = session_of(room_id, third)
            assert new_session != session_of(room_id, second), "a member left but the session was not rotated"
            await other.sync(timeout=1000)
            frank_sessions = {session.id for session in other.olm.inbound_group_store}
            assert session_of(room_id, first) in frank_sessions
            assert new_session not in frank_sessions, "the leaver received the new room key"
        finally:
            for client in (phone, other, laptop):
                if client:
                    await client.close()

    asyncio.run(conversation())
