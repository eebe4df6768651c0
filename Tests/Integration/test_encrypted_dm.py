"""An admin talks to the bot in an encrypted direct chat from a real E2EE client (matrix-nio):
the bot joins, learns the room from the homeserver, decrypts the command and answers encrypted."""
import asyncio
import urllib.parse

from conftest import e2ee_client, joined, request, sync_until
from nio import MegolmEvent, RoomMessageNotice

BOT = "@sealbridge:localhost"
PUPPET = "@sealbridge_dm:localhost"


def test_admin_status_in_an_encrypted_dm(stack, tmp_path):
    admin = stack.register_full("admin")

    async def conversation():
        client = await e2ee_client(stack, admin, str(tmp_path))
        try:
            created = await client.room_create(
                invite=[BOT], is_direct=True,
                initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
            room_id = created.room_id
            await sync_until(client, lambda _: room_id in client.rooms and BOT in joined(client.rooms[room_id]),
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
