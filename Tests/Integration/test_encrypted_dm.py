"""An admin talks to the bot in an encrypted direct chat from a real E2EE client (matrix-nio):
the bot joins, learns the room from the homeserver, decrypts the command and answers encrypted."""
import asyncio
import time
import urllib.parse

from conftest import request
from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessageNotice

BOT = "@sealbridge:localhost"
PUPPET = "@sealbridge_dm:localhost"


async def sync_until(client: AsyncClient, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.sync(timeout=500, full_state=False)
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            if client.should_query_keys:
                await client.keys_query()
        value = predicate(response)
        if value:
            return value
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_admin_status_in_an_encrypted_dm(stack, tmp_path):
    admin = stack.register_full("admin")

    async def conversation():
        client = AsyncClient(stack.homeserver, admin["user_id"], device_id=admin["device_id"], store_path=str(tmp_path),
                             config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
        client.restore_login(admin["user_id"], admin["device_id"], admin["access_token"])
        try:
            await client.sync(timeout=0)
            if client.should_upload_keys:
                await client.keys_upload()
            created = await client.room_create(
                invite=[BOT], is_direct=True,
                initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
            room_id = created.room_id
            await sync_until(client, lambda _: room_id in client.rooms and BOT in set(client.rooms[room_id].users) - set(client.rooms[room_id].invited_users),
                             30, "the bot to join the encrypted DM")
            if client.should_query_keys:
                await client.keys_query()
            await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "status"},
                                   ignore_unverified_devices=True)

            undecrypted = []

            def reply(response):
                room = response.rooms.join.get(room_id) if hasattr(response, "rooms") else None
                for event in (room.timeline.events if room else []):
                    if isinstance(event, MegolmEvent) and event.sender == BOT:
                        undecrypted.append(event)
                    if isinstance(event, RoomMessageNotice) and event.sender == BOT:
                        return event
                return None

            event = await sync_until(client, reply, 45, "the bot's encrypted reply")

            # puppets: the list and one puppet in detail, with its one-time keys as the homeserver counts them.
            status, body = request("PUT", f"{stack.url}/_sealbridge/v1/puppets/{urllib.parse.quote(PUPPET)}",
                                   token=stack.bridge_token, body={"displayname": "DM puppet"})
            assert status == 200, body
            replies = {}
            for command in ["puppets", f"puppets {PUPPET}"]:
                await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": command},
                                       ignore_unverified_devices=True)
                # Each sync returns only what is new, so the next notice is this command's reply.
                replies[command] = await sync_until(client, reply, 45, f"the reply to {command}")
            return event, undecrypted, replies
        finally:
            await client.close()

    event, undecrypted, replies = asyncio.run(conversation())
    assert not undecrypted, "the bot's reply arrived undecryptable"
    assert event.decrypted, "the reply was not end-to-end encrypted"
    assert "Sealbridge status" in event.body
    assert "homeserver: reachable" in event.body and "database: reachable" in event.body
    assert "<table>" in event.formatted_body
    assert "devices low on one-time keys (< 13, last reported): 0" in event.body
    listing, detail = replies["puppets"], replies[f"puppets {PUPPET}"]
    assert "Puppets with a device: 1 (page 1 of 1)" in listing.body and PUPPET in listing.body
    assert f"Puppet {PUPPET}" in detail.body and "device: SEALBRIDGE" in detail.body
    assert "one-time keys on the homeserver: 50" in detail.body, detail.body
