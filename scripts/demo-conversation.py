"""The scripted part of scripts/demo: a real Matrix client (matrix-nio, end-to-end encryption on) talks
to the Sealbridge bot in an encrypted direct chat, then to a puppet that the bridge logic drives
through the bridge API. Prints what each side sees."""
import argparse
import asyncio
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import logging

from nio import AsyncClient, AsyncClientConfig, LoginResponse, RoomMessageNotice, RoomMessageText

logging.getLogger("nio").setLevel(logging.ERROR)  # its warnings about sessions it is setting up
BOT = "@sealbridge:localhost"
PUPPET = "@sealbridge_alice:localhost"
ENCRYPTED = [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]


def http(method, url, token=None, body=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def show(who, text):
    lines = text.splitlines() or [""]
    print(f"  \033[1m{who}\033[0m {lines[0]}")
    for line in lines[1:]:
        print(f"  {' ' * len(who)} {line}")


def register(args, state: Path) -> str:
    password_file = state / "demo-password"
    if password_file.exists():
        return password_file.read_text().strip()
    password = secrets.token_urlsafe(12)
    _, nonce = http("GET", f"{args.homeserver}/_synapse/admin/v1/register")
    mac = hmac.new(args.shared_secret.encode(), b"\x00".join([nonce["nonce"].encode(), b"demo", password.encode(), b"notadmin"]),
                   hashlib.sha1).hexdigest()
    status, body = http("POST", f"{args.homeserver}/_synapse/admin/v1/register",
                        body={"nonce": nonce["nonce"], "username": "demo", "password": password, "mac": mac, "admin": False})
    if status != 200:
        raise SystemExit(f"could not register @demo:localhost: {body}")
    password_file.write_text(password)
    return password


async def sync_until(client, predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.sync(timeout=500)
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        found = predicate(response)
        if found:
            return found
    raise SystemExit(f"timed out waiting for {what}")


def joined(room):
    return set(room.users) - set(room.invited_users)


def new_events(response, room_id, kind, sender):
    room = response.rooms.join.get(room_id) if hasattr(response, "rooms") else None
    return next((e for e in (room.timeline.events if room else []) if isinstance(e, kind) and e.sender == sender), None)


async def main(args):
    state = Path(args.state)
    password = register(args, state)
    store = state / "nio-store"
    store.mkdir(exist_ok=True)
    client = AsyncClient(args.homeserver, "@demo:localhost", store_path=str(store),
                         config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True))
    login = await client.login(password, device_name="scripts/demo")
    if not isinstance(login, LoginResponse):
        raise SystemExit(f"login failed: {login}")
    try:
        await client.sync(timeout=0)
        if client.should_upload_keys:
            await client.keys_upload()

        print("\n1. @demo opens an encrypted direct chat with the bot and talks to it (the management room).")
        dm = (await client.room_create(invite=[BOT], is_direct=True, name="Sealbridge demo: the bot", initial_state=ENCRYPTED)).room_id
        await sync_until(client, lambda _: dm in client.rooms and BOT in joined(client.rooms[dm]), 60, "the bot to join")
        for command in ["help", "status"]:
            show("@demo →", f"{command}        (Megolm-encrypted by matrix-nio)")
            await client.room_send(dm, "m.room.message", {"msgtype": "m.text", "body": command}, ignore_unverified_devices=True)
            reply = await sync_until(client, lambda r: new_events(r, dm, RoomMessageNotice, BOT), 60, f"the reply to {command}")
            show(f"bot → {'(decrypted)' if reply.decrypted else '(NOT encrypted!)'}", reply.body)
            if not reply.decrypted:
                raise SystemExit("the bot answered in plaintext in an encrypted room")

        print("\n2. The bridge logic makes a puppet, @demo invites it to an encrypted room, and they talk.")
        token = args.bridge_token
        api = f"{args.sealbridge}/_sealbridge/v1"
        status, body = http("PUT", f"{api}/puppets/{urllib.parse.quote(PUPPET)}", token, {"displayname": "Alice (bridged)"})
        show("bridge API:", f"PUT /puppets/{PUPPET} → {status} {body}")
        room = (await client.room_create(invite=[PUPPET], name="Sealbridge demo: a bridged chat", initial_state=ENCRYPTED)).room_id
        await sync_until(client, lambda _: room in client.rooms and PUPPET in joined(client.rooms[room]), 60, "the puppet to join")
        status, body = http("PUT", f"{api}/rooms/{urllib.parse.quote(room)}/send/m.room.message/demo-{secrets.token_hex(4)}"
                                   f"?as={urllib.parse.quote(PUPPET)}", token,
                            {"msgtype": "m.text", "body": "Hi! I am a puppet. The bridge sent this in plaintext; Sealbridge encrypted it."})
        show("bridge API:", f"PUT /rooms/…/send/m.room.message/…?as={PUPPET} → {status} {body}")
        message = await sync_until(client, lambda r: new_events(r, room, RoomMessageText, PUPPET), 60, "the puppet's message")
        show(f"alice → {'(decrypted)' if message.decrypted else '(NOT encrypted!)'}", message.body)
        if not message.decrypted:
            raise SystemExit("the puppet's message arrived in plaintext in an encrypted room")
        show("@demo →", "Hello Alice, this is end-to-end encrypted.")
        await client.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "Hello Alice, this is end-to-end encrypted."},
                               ignore_unverified_devices=True)
        since, deadline = "0", time.monotonic() + 60
        while time.monotonic() < deadline:
            status, batch = http("GET", f"{api}/events?since={since}&timeout=2000", token)
            since = batch.get("next_batch", since)
            mine = [e for e in batch.get("events", []) if e["room_id"] == room and e["type"] == "m.room.message"]
            if mine:
                event = mine[-1]
                show("bridge API:", f"GET /events → {event['sender']}: {event['content']['body']!r}, "
                                    f"encryption {json.dumps(event['encryption'], sort_keys=True)[:160]}")
                http("GET", f"{api}/events?since={since}&timeout=0", token)  # acknowledge
                break
        else:
            raise SystemExit("the bridge API did not deliver @demo's message")
    finally:
        await client.close()


parser = argparse.ArgumentParser()
for name in ["--homeserver", "--sealbridge", "--bridge-token", "--shared-secret", "--state"]:
    parser.add_argument(name, required=True)
asyncio.run(main(parser.parse_args()))
