"""A strict MSC4153 client for integration tests: mautrix-python's client crypto (PyPI `mautrix`), an
implementation independent of Sealbridge and of matrix-nio that verifies cross-signing.

`StrictClient` logs in a user made with `Stack.register_full`, cross-signs its own device (master,
self-signing and user-signing keys uploaded, the device signed by the self-signing key) and shares room
keys only with devices their owner cross-signed: `OlmMachine.send_keys_min_trust =
TrustState.CROSS_SIGNED_TOFU`, which is MSC4153's "exclude insecure devices". Every other device gets
`m.room_key.withheld` with code `m.unverified` instead of the key.

The client is driven by hand, one `/sync` at a time, so a test decides when things happen: the crypto
machine's handlers run to completion inside `sync()`, and encrypted room events are decrypted after
the to-device messages of the same sync were handled, retrying those whose key has not come yet after
every later sync.

mautrix 0.21.1 needs a few repairs to be driven this way (the small subclasses below):
- `MemoryCryptoStore.put_cross_signing_key` assigns to a field of a NamedTuple when it sees a key it
  already has (`AttributeError: can't set attribute`), which fails every second `/keys/query` of a
  cross-signed user; `drop_signatures_by_key` fails on `len(None)` when the replaced key had signed
  nothing.
- The client's `MemoryStateStore` lacks `find_shared_rooms`, which the crypto machine calls when a
  user's devices change.
- The client's `DecryptionDispatcher` decrypts a room event once, concurrently with the to-device
  events of the same sync, and drops it for good when its key comes later: it is removed here.
- Handlers the crypto machine registers run as background tasks unless marked `wait_sync`: here
  every handler is awaited before `sync()` returns.
- The public cross-signing setup (`generate_recovery_key`) also creates secret storage (SSSS) on the
  account; `cross_sign_own_device` publishes the keys and signs the device without it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from mautrix.client import Client, DecryptionDispatcher, MemoryStateStore
from mautrix.crypto import MemoryCryptoStore, OlmMachine
from mautrix.crypto.cross_signing_key import CrossSigningSeeds
from mautrix.crypto.store import StateStore as CryptoStateStore
from mautrix.errors import DecryptionError, SessionNotFound
from mautrix.types import (
    CrossSigner,
    CrossSigningUsage,
    EncryptedEvent,
    EventType,
    Membership,
    MessageType,
    RoomID,
    TextMessageEventContent,
    TOFUSigningKey,
    TrustState,
    UserID,
)

ENCRYPTION_STATE = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


class _CryptoStore(MemoryCryptoStore):
    """mautrix's in-memory crypto store with its two cross-signing bugs repaired."""

    async def put_cross_signing_key(self, user_id: UserID, usage: CrossSigningUsage, key) -> None:
        # Keeps the first key seen (TOFU), replaces the current one: the upstream version assigns to a
        # NamedTuple field and raises when the key is already stored.
        current = self._cross_signing_keys.get(user_id, {}).get(usage)
        first = current.first if current else key
        self._cross_signing_keys.setdefault(user_id, {})[usage] = TOFUSigningKey(key=key, first=first)

    async def drop_signatures_by_key(self, signer: CrossSigner) -> int:
        return len(self._signatures.pop(signer, None) or {})


class _StateStore(MemoryStateStore, CryptoStateStore):
    """The client's in-memory room state, plus the one query the crypto machine needs from it."""

    async def find_shared_rooms(self, user_id: UserID) -> list[RoomID]:
        return [room_id for room_id, members in self.members.items()
                if room_id in self.encryption and user_id in members
                and members[user_id].membership in (Membership.JOIN, Membership.INVITE)]


class _Client(Client):
    """A client whose every event handler has finished when `handle_sync`'s tasks are awaited."""

    def _dispatch_manual_event(self, event_type, data, include_global_handlers, force_synchronous, source):
        return super()._dispatch_manual_event(event_type, data, include_global_handlers, True, source)


@dataclass
class Received:
    """A room event this client saw, decrypted when `decrypted` is set (with mautrix's trust verdict)."""
    event_id: str
    room_id: str
    sender: str
    type: str
    content: dict
    decrypted: bool = False
    trust: TrustState | None = None
    error: str | None = None


@dataclass
class SharedKey:
    """Who the client's current outbound Megolm session of a room went to, as mautrix decided."""
    session_id: str
    shared_with: set[tuple[str, str]] = field(default_factory=set)
    withheld_from: set[tuple[str, str]] = field(default_factory=set)


class StrictClient:
    """A logged-in mautrix-python E2EE client that shares room keys only with cross-signed devices.

    Make one with `await StrictClient.open(...)`: its HTTP session belongs to the running event loop."""

    @classmethod
    async def open(cls, homeserver: str, login: dict, cross_sign: bool = True,
                   min_trust: TrustState = TrustState.CROSS_SIGNED_TOFU) -> "StrictClient":
        client = cls(homeserver, login, min_trust)
        try:
            await client.start(cross_sign)
        except BaseException:
            await client.close()
            raise
        return client

    def __init__(self, homeserver: str, login: dict, min_trust: TrustState = TrustState.CROSS_SIGNED_TOFU):
        self.user_id = login["user_id"]
        self.device_id = login["device_id"]
        self.state_store = _StateStore()
        self.crypto_store = _CryptoStore(account_id=self.user_id, pickle_key="strict-client-test")
        self.client = _Client(mxid=self.user_id, device_id=self.device_id, base_url=homeserver,
                              token=login["access_token"], state_store=self.state_store)
        self.machine = OlmMachine(self.client, self.crypto_store, self.state_store,
                                  log=logging.getLogger("strict.crypto"))
        # MSC4153: room keys only for devices their owner cross-signed (a pinned identity, TOFU, or
        # better); key requests answered under the same rule.
        self.machine.send_keys_min_trust = min_trust
        self.machine.share_keys_min_trust = min_trust
        self.client.crypto = self.machine
        self.client.remove_dispatcher(DecryptionDispatcher)  # decrypted in `sync`, retried until the key comes
        self.next_batch: str | None = None
        self.events: list[Received] = []
        self._pending: list[EncryptedEvent] = []

    async def start(self, cross_sign: bool = True) -> None:
        """Creates the Olm account, uploads device and one-time keys, cross-signs the device, syncs once."""
        await self.crypto_store.put_device_id(self.device_id)
        await self.machine.load()
        await self.machine.share_keys()
        if cross_sign:
            await self.cross_sign_own_device()
        await self.sync(timeout_ms=0)

    async def cross_sign_own_device(self) -> None:
        """Publishes fresh master/self-signing/user-signing keys and signs this device with the
        self-signing key (the homeserver takes a user's first upload without interactive auth)."""
        await self.machine._publish_cross_signing_keys(CrossSigningSeeds.generate().to_keys())
        await self.machine.sign_own_device(self.machine.own_identity)

    async def close(self) -> None:
        await self.client.api.session.close()

    # Syncing and decrypting.

    async def sync(self, timeout_ms: int = 500) -> dict:
        """One `/sync`: keys and device lists handled, state stored, encrypted events decrypted (those
        still lacking their key are retried after the next sync)."""
        data = await self.client.sync(since=self.next_batch, timeout=timeout_ms)
        self.next_batch = data["next_batch"]
        timeline = [(room_id, event) for room_id, room in data.get("rooms", {}).get("join", {}).items()
                    for event in room.get("timeline", {}).get("events", [])]
        await asyncio.gather(*self.client.handle_sync(data))
        for room_id, raw in timeline:
            raw["room_id"] = room_id
            if raw.get("type") == "m.room.encrypted" and "state_key" not in raw:
                self._pending.append(EncryptedEvent.deserialize(raw))
            elif "state_key" not in raw:
                self.events.append(Received(raw["event_id"], room_id, raw["sender"], raw["type"], raw.get("content", {})))
        await self._decrypt_pending()
        return data

    async def _decrypt_pending(self) -> None:
        waiting = []
        for event in self._pending:
            try:
                decrypted = await self.machine.decrypt_megolm_event(event)
            except SessionNotFound:
                waiting.append(event)  # its key may come with a later sync
                continue
            except DecryptionError as error:
                self.events.append(Received(event.event_id, event.room_id, event.sender, "m.room.encrypted", {},
                                            error=f"{type(error).__name__}: {error}"))
                continue
            self.events.append(Received(event.event_id, event.room_id, event.sender, str(decrypted.type),
                                        decrypted.content.serialize(), decrypted=True,
                                        trust=decrypted["mautrix"]["trust_state"]))
        self._pending = waiting

    def undecrypted(self, room_id: str | None = None) -> list[str]:
        """Event ids still waiting for their key."""
        return [e.event_id for e in self._pending if room_id is None or e.room_id == room_id]

    async def sync_until(self, predicate, timeout: float, what: str):
        """Syncs until `predicate(self)` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            await self.sync()
        value = predicate(self)
        if value:
            return value
        raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                             f"(still undecryptable: {self.undecrypted()})")

    def message(self, room_id: str, sender: str, body: str) -> Received | None:
        """The first event from `sender` in the room with this body, decrypted or not."""
        for event in self.events:
            if event.room_id == room_id and event.sender == sender and event.content.get("body") == body:
                return event
        return None

    # Rooms and messages.

    async def create_encrypted_room(self, invite: list[str], name: str = "strict") -> str:
        room_id = await self.client.create_room(name=name, invitees=invite, initial_state=[ENCRYPTION_STATE])
        return str(room_id)

    async def joined_members(self, room_id: str) -> set[str]:
        return set(await self.state_store.get_members(RoomID(room_id), memberships=(Membership.JOIN,)))

    async def wait_joined(self, room_id: str, users: list[str], timeout: float) -> None:
        async def check():
            return set(users) <= await self.joined_members(room_id)
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {users} to join {room_id}; "
                                     f"joined: {await self.joined_members(room_id)}")
            await self.sync()

    async def send_text(self, room_id: str, body: str) -> str:
        """Sends an encrypted m.text; mautrix creates and shares the room key first when needed, with
        each joined member's devices that pass `send_keys_min_trust` (the others get a withheld notice)."""
        content = TextMessageEventContent(msgtype=MessageType.TEXT, body=body)
        return str(await self.client.send_message_event(RoomID(room_id), EventType.ROOM_MESSAGE, content))

    async def shared_key(self, room_id: str) -> SharedKey | None:
        session = await self.crypto_store.get_outbound_group_session(RoomID(room_id))
        if session is None:
            return None
        return SharedKey(session.id, {(str(u), str(d)) for u, d in session.users_shared_with},
                         {(str(u), str(d)) for u, d in session.users_ignored
                          if (str(u), str(d)) != (self.user_id, self.device_id)})

    # Judging other devices.

    async def trust_of(self, user_id: str, device_id: str, refresh: bool = True) -> TrustState | None:
        """The trust mautrix resolves for a device (None: the homeserver lists no such device).
        `refresh` queries the user's keys first, so cross-signing uploaded since the last query counts."""
        if refresh:
            async with self.machine._fetch_keys_lock:
                await self.machine._fetch_keys([UserID(user_id)], include_untracked=True)
        device = await self.machine.get_or_fetch_device(UserID(user_id), device_id)
        if device is None:
            return None
        return await self.machine.resolve_trust(device)

    async def master_key(self, user_id: str) -> str | None:
        keys = await self.crypto_store.get_cross_signing_keys(UserID(user_id))
        master = keys.get(CrossSigningUsage.MASTER)
        return str(master.key) if master else None
