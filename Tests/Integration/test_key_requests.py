"""Key requests against a real Synapse and a real E2EE client (matrix-nio): a device that lost a puppet's
room key asks the puppet for it and gets it back (Olm-encrypted m.forwarded_room_key, from the index it
was given); a device the session was never shared with asks and gets no key, only an
`m.room_key.withheld` (`m.unauthorised`) telling it so.

matrix-nio itself only asks, and only accepts forwarded keys from, its own user's devices (its
`request_room_key` addresses the user's own devices, `_should_accept_forward` wants an own verified
device). The test therefore sends nio's own request message (`MegolmEvent.as_key_request`) to the
puppet's device and lets nio accept a forward from the puppet's device for the session it asked for;
everything else (the Olm decryption of the answer, the import of the exported session, the Megolm
decryption) is nio's unchanged code."""
import asyncio
import time
import urllib.parse

from nio import Event, ForwardedRoomKeyEvent, MegolmEvent, RoomMessageText
from nio.crypto.key_request import OutgoingKeyRequest

from conftest import e2ee_client, joined, request, sync_until, timeline

PUPPET = "@sealbridge_keys:localhost"


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def api(stack, method: str, path: str, body: dict | None = None):
    return request(method, f"{stack.url}/_sealbridge/v1{path}", token=stack.bridge_token, body=body)


def test_a_device_that_lost_a_puppets_key_gets_it_back_and_a_stranger_is_told_no(stack, tmp_path):
    status, body = api(stack, "PUT", f"/puppets/{quote(PUPPET)}", body={"displayname": "Keys"})
    assert status == 200, body
    puppet_device = body["device_id"]
    gina, hank = stack.register_full("gina"), stack.register_full("hank")

    async def conversation():
        (tmp_path / "g").mkdir(), (tmp_path / "h").mkdir()
        client = await e2ee_client(stack, gina, str(tmp_path / "g"))
        stranger = await e2ee_client(stack, hank, str(tmp_path / "h"))
        try:
            created = await client.room_create(
                invite=[PUPPET],
                initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
            room_id = created.room_id
            await sync_until(client, lambda _: room_id in client.rooms and PUPPET in joined(client.rooms[room_id]),
                             45, "the puppet to join")
            status, sent = api(stack, "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/k-1?as={quote(PUPPET)}",
                               body={"msgtype": "m.text", "body": "remember me"})
            assert status == 200, sent

            def text(response):
                for event in timeline(response, room_id):
                    if isinstance(event, RoomMessageText) and event.sender == PUPPET and event.body == "remember me":
                        return event
                return None

            await sync_until(client, text, 45, "gina to decrypt the puppet's message")

            # Gina's device loses the puppet's session.
            status, raw = request("GET", f"{stack.homeserver}/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(sent['event_id'])}",
                                  token=gina["access_token"])
            assert status == 200, raw
            raw.setdefault("room_id", room_id)
            encrypted = Event.parse_encrypted_event(raw)
            assert isinstance(encrypted, MegolmEvent)
            session_id, sender_key = encrypted.session_id, encrypted.sender_key
            dropped = client.olm.inbound_group_store._entries[room_id][sender_key].pop(session_id)
            assert dropped is not None
            assert client.olm.inbound_group_store.get(room_id, sender_key, session_id) is None

            # Hank (never in the room) asks first: no key comes back, only one notice that he may not have it.
            stranger_request = encrypted.as_key_request(PUPPET, stranger.device_id, request_id="hank-1", device_id=puppet_device)
            response = await stranger.to_device(stranger_request)
            assert response.__class__.__name__ == "ToDeviceResponse", response
            deadline = time.monotonic() + 8
            stranger_got = []
            while time.monotonic() < deadline:
                sync = await stranger.sync(timeout=500)
                stranger_got += [e for e in getattr(sync, "to_device_events", []) if getattr(e, "sender", None) == PUPPET]
            keys = [e for e in stranger_got if e.source.get("type") != "m.room_key.withheld"]
            assert keys == [], f"a device never given the key got an answer: {keys}"
            notices = [e.source.get("content", {}) for e in stranger_got if e.source.get("type") == "m.room_key.withheld"]
            assert [(n.get("code"), n.get("room_id"), n.get("session_id"), n.get("sender_key"), n.get("from_device")) for n in notices] == [
                ("m.unauthorised", room_id, session_id, sender_key, puppet_device)], notices
            refusals = [line for line in stack.log_lines()
                        if line.get("msg") in ("key request not answered", "key request refused; the requester was told (m.room_key.withheld)")]
            assert [(line.get("msg"), line.get("reason")) for line in refusals] == [
                ("key request refused; the requester was told (m.room_key.withheld)", "not_shared")], refusals

            # Gina asks the puppet's device with nio's own request message; nio takes the answer for
            # the session it asked for from the puppet's device (see the module docstring).
            puppet_keys = client.device_store[PUPPET][puppet_device]
            original_accept = client.olm._should_accept_forward

            def accept(sender, forwarder_key, event):
                return (event.session_id == session_id and sender == PUPPET and forwarder_key == puppet_keys.curve25519
                        and event.session_id in client.olm.outgoing_key_requests)

            client.olm._should_accept_forward = accept
            client.olm.outgoing_key_requests[session_id] = OutgoingKeyRequest(session_id, session_id, room_id, encrypted.algorithm)
            ask = encrypted.as_key_request(PUPPET, client.device_id, request_id=session_id, device_id=puppet_device)
            response = await client.to_device(ask)
            assert response.__class__.__name__ == "ToDeviceResponse", response

            def forwarded(response):
                for event in getattr(response, "to_device_events", []):
                    if isinstance(event, ForwardedRoomKeyEvent) and event.session_id == session_id:
                        return event
                return None

            event = await sync_until(client, forwarded, 45, "the puppet's forwarded room key")
            assert event.sender == PUPPET and event.room_id == room_id
            client.olm._should_accept_forward = original_accept
            session = client.olm.inbound_group_store.get(room_id, sender_key, session_id)
            assert session is not None, "the forwarded key was not imported"
            assert session.first_known_index == 0  # gina was given the key at index 0
            decrypted = client.decrypt_event(encrypted)
            assert isinstance(decrypted, RoomMessageText) and decrypted.body == "remember me", decrypted

            # Asking again at once is rate-limited: no second answer.
            client.olm.outgoing_key_requests[session_id] = OutgoingKeyRequest(session_id, session_id, room_id, encrypted.algorithm)
            await client.to_device(encrypted.as_key_request(PUPPET, client.device_id, request_id=session_id + "x", device_id=puppet_device))
            deadline = time.monotonic() + 5
            again = []
            while time.monotonic() < deadline:
                sync = await client.sync(timeout=500)
                again += [e for e in getattr(sync, "to_device_events", []) if getattr(e, "sender", None) == PUPPET]
            assert again == [], again

            # Never earlier than given: Kim joins after the first message, is given the key from the
            # next index, loses it, asks, and gets it back from that index only.
            kim_login = stack.register_full("kim")
            (tmp_path / "k").mkdir()
            kim = await e2ee_client(stack, kim_login, str(tmp_path / "k"))
            try:
                await client.room_invite(room_id, kim_login["user_id"])
                await kim.join(room_id)
                await sync_until(client, lambda _: kim_login["user_id"] in joined(client.rooms[room_id]), 30, "kim to join")
                await asyncio.sleep(2)  # the membership travels to Sealbridge in a transaction
                status, later = api(stack, "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/k-2?as={quote(PUPPET)}",
                                    body={"msgtype": "m.text", "body": "after kim joined"})
                assert status == 200, later

                def later_text(response):
                    for event in timeline(response, room_id):
                        if isinstance(event, RoomMessageText) and event.sender == PUPPET and event.body == "after kim joined":
                            return event
                    return None

                await sync_until(kim, later_text, 45, "kim to decrypt the puppet's next message")
                status, raw_later = request(
                    "GET", f"{stack.homeserver}/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(later['event_id'])}",
                    token=kim_login["access_token"])
                assert status == 200, raw_later
                raw_later.setdefault("room_id", room_id)
                second = Event.parse_encrypted_event(raw_later)
                assert second.session_id == session_id, "no member left: the session is the same"
                assert kim.olm.inbound_group_store.get(room_id, sender_key, session_id).first_known_index == 1
                kim.olm.inbound_group_store._entries[room_id][sender_key].pop(session_id)
                kim.olm._should_accept_forward = lambda sender, key, event: (
                    event.session_id == session_id and sender == PUPPET and key == puppet_keys.curve25519)
                kim.olm.outgoing_key_requests[session_id] = OutgoingKeyRequest(session_id, session_id, room_id, second.algorithm)
                await kim.to_device(second.as_key_request(PUPPET, kim.device_id, request_id=session_id, device_id=puppet_device))
                await sync_until(kim, forwarded, 45, "the puppet's forwarded key for kim")
                restored = kim.olm.inbound_group_store.get(room_id, sender_key, session_id)
                assert restored is not None and restored.first_known_index == 1, "forwarded from another index than kim was given"
                assert kim.decrypt_event(second).body == "after kim joined"
                try:
                    earlier = kim.decrypt_event(encrypted)
                except Exception as error:  # nio raises for an index before the session's first known one
                    earlier = error
                assert not isinstance(earlier, RoomMessageText), "kim read a message from before it was given the key"
            finally:
                await kim.close()
        finally:
            await client.close()
            await stranger.close()

    asyncio.run(conversation())


# Asking: a sender (vodozemac, answering as matrix-rust-sdk does: only to a device it would have shared
# with) whose first room key to a puppet never arrived. matrix-nio answers key requests only from its own
# user's devices (`_handle_key_requests` → `share_with_ourselves`), so it cannot be that sender.

def sync_to_device(client, since: str | None, timeout_ms: int = 1000):
    path = f"/sync?timeout={timeout_ms}" + (f"&since={since}" if since else "")
    answer = client.api("GET", path)
    return answer["next_batch"], answer.get("to_device", {}).get("events", [])


def test_a_puppet_asks_the_sender_for_a_lost_key_and_takes_only_its_answer(tmp_path):
    import vodozemac as vz
    from conftest import Stack, psql, wait_for
    from test_hostile import Outbox
    from vodozemac_client import MEGOLM, VodozemacClient

    stack = Stack(tmp_path, encryption_extra="  undecryptable:\n    surface_after_seconds: 1\n  key_requests:\n    request_after_seconds: 3\n")
    try:
        puppet = "@sealbridge_asker:localhost"
        status, body = api(stack, "PUT", f"/puppets/{quote(puppet)}", body={})
        assert status == 200, body
        puppet_device = body["device_id"]
        ivy = VodozemacClient(stack, stack.register_full("ivy"))
        ivy.upload_keys(10)
        since, _ = sync_to_device(ivy, None, 0)
        outbox = Outbox(stack)
        room_id = ivy.api("POST", "/createRoom", {
            "invite": [puppet], "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}]})["room_id"]
        wait_for(lambda: puppet in ivy.api("GET", f"/rooms/{quote(room_id)}/joined_members")["joined"], 30, "the puppet to join")

        # The Megolm event goes out, its room key to the puppet does not (it is "lost").
        group = vz.GroupSession()
        initial_key = group.session_key  # index 0, before the ratchet advances
        event_id = ivy.send_megolm(room_id, group, "m.room.message", {"msgtype": "m.text", "body": "key held back"})
        first = outbox.wait(lambda seen: next((e for e in seen if e["event_id"] == event_id), None), 30, "the event, undecryptable")
        assert first["encryption"]["decrypted"] is False and first["encryption"]["error"]["reason"] == "unknown_session", first

        # After the wait the puppet asks Ivy's device — only Ivy's device — for that session.
        asked = []

        def request_arrived():
            nonlocal since
            since, events = sync_to_device(ivy, since)
            asked.extend(e for e in events if e["type"] == "m.room_key_request" and e["sender"] == puppet)
            return asked

        wait_for(request_arrived, 45, "the puppet's m.room_key_request")
        request_content = asked[0]["content"]
        assert request_content["action"] == "request" and request_content["requesting_device_id"] == puppet_device, request_content
        assert request_content["body"] == {"algorithm": MEGOLM, "room_id": room_id, "session_id": group.session_id,
                                           "sender_key": ivy.curve25519}, request_content
        row = psql(stack.database_url, f"SELECT requester_user_id, recipients::text FROM sealbridge_key_requests WHERE session_id = '{group.session_id}'")
        assert row == f'{puppet}|[["{ivy.user_id}", "{ivy.device_id}"]]', row

        exported = vz.InboundGroupSession(initial_key).export_at(0).to_base64()

        def forwarded(sender: VodozemacClient) -> dict:
            return {"algorithm": MEGOLM, "room_id": room_id, "sender_key": sender.curve25519, "session_id": group.session_id,
                    "session_key": exported, "sender_claimed_ed25519_key": sender.ed25519, "forwarding_curve25519_key_chain": []}

        # Jack (not the sender) forwards the same key, unasked by anyone: refused, nothing imported.
        jack = VodozemacClient(stack, stack.register_full("jack"))
        jack.upload_keys()
        jack.send_olm(jack.open_olm(puppet, puppet_device), "m.forwarded_room_key", forwarded(jack))
        refused = wait_for(lambda: [line for line in stack.log_lines() if line.get("msg") == "to-device message not decrypted"
                                    and line.get("sender") == jack.user_id], 30, "the puppet to refuse Jack's forward")
        assert "not the session's sender" in refused[0]["reason"], refused
        assert psql(stack.database_url,
                    f"SELECT count(*) FROM sealbridge_inbound_group_sessions WHERE session_id = '{group.session_id}'") == "0"

        # Ivy answers as matrix-rust-sdk does: m.forwarded_room_key over Olm, exported from index 0.
        ivy.send_olm(ivy.open_olm(puppet, puppet_device), "m.forwarded_room_key", forwarded(ivy))
        late = outbox.wait(lambda seen: next((e for e in seen if e["event_id"] == event_id and e["encryption"].get("decrypted")), None),
                           30, "the event again, decrypted")
        assert late["late"] is True and late["content"]["body"] == "key held back", late
        assert late["encryption"]["forwarded"] is True and late["encryption"]["sender_key"] == ivy.curve25519, late
        assert psql(stack.database_url,
                    f"SELECT forwarded FROM sealbridge_inbound_group_sessions WHERE session_id = '{group.session_id}'") == "t"

        # The request is withdrawn: its row goes, and Ivy's device gets the cancellation.
        cancelled = []

        def cancellation_arrived():
            nonlocal since
            since, events = sync_to_device(ivy, since)
            cancelled.extend(e for e in events if e["type"] == "m.room_key_request" and e["content"].get("action") == "request_cancellation")
            return cancelled

        wait_for(cancellation_arrived, 30, "the request's cancellation")
        assert cancelled[0]["content"]["request_id"] == request_content["request_id"]
        assert psql(stack.database_url, "SELECT count(*) FROM sealbridge_key_requests") == "0"

        # Metrics: the undecryptable delivery by reason, the recovery by path, its time, the request sent.
        import urllib.request
        with urllib.request.urlopen(f"{stack.url}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        for line in ['sealbridge_crypto_undecryptable_events_total{reason="unknown_session"} 1',
                     'sealbridge_crypto_recovered_events_total{path="key_request"} 1',
                     'sealbridge_crypto_recovery_seconds_count 1', "sealbridge_key_requests_sent_total 1"]:
            assert line in metrics, [m for m in metrics.splitlines() if "key_request" in m or "recover" in m or "undecryptable" in m]
        assert stack.process.poll() is None
    finally:
        stack.close()
