"""Puppets against a strict MSC4153 client (issue 11, "Proof"): mautrix-python's client crypto shares room
keys only with devices their owner cross-signed (`send_keys_min_trust = CROSS_SIGNED_TOFU`).

- Cross-signed puppets (the default): both puppets receive the user's room key, the bridge logic gets
  the message decrypted with trust `cross_signed`, the puppets' replies decrypt on the strict client,
  which resolves their devices as cross-signed.
- Puppets without an identity (`encryption.cross_signing.enabled: false`): the strict client withholds
  the key with `m.unverified`, and the bridge logic receives the message as undecryptable with reason
  `withheld:m.unverified` — so the first scenario can fail.

Each scenario runs on its own stack (class-scoped), its steps as separate tests so a report names which
of them hold.
"""
import asyncio
import time
import urllib.parse

import pytest
from mautrix.types import TrustState

from conftest import Stack, psql, request
from mautrix_client import StrictClient

DEVICE = "SEALBRIDGE"  # the puppets' device id (docs/bridge-api.md)
# Undecryptable events are surfaced after this many seconds (docs/bridge-api.md, default 60), so that a
# withheld key shows as a delivery within the test rather than as a timeout.
SURFACE_AFTER = "  undecryptable:\n    surface_after_seconds: 3\n"


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


class Deliveries:
    """The bridge logic's side of the bridge API: long-polls `GET /events`, keeps every delivery."""

    def __init__(self, stack):
        self.stack = stack
        self.cursor = "0"
        self.seen: list[dict] = []

    def poll(self, timeout_ms: int = 1000):
        status, body = request("GET", f"{self.stack.url}/_sealbridge/v1/events?since={self.cursor}&timeout={timeout_ms}",
                               token=self.stack.bridge_token)
        assert status == 200, body
        self.cursor = body["next_batch"]
        self.seen += body["events"]

    def of(self, event_id: str) -> list[dict]:
        return [d for d in self.seen if d["event_id"] == event_id]

    def wait(self, event_id: str, predicate, timeout: float, what: str, give_up=lambda delivery: False) -> dict:
        """The first delivery of `event_id` satisfying `predicate`; fails showing what did arrive, at once
        when a delivery satisfies `give_up`."""
        deadline = time.monotonic() + timeout
        while True:
            match = next((d for d in self.of(event_id) if predicate(d)), None)
            if match:
                return match
            if time.monotonic() > deadline or any(give_up(d) for d in self.of(event_id)):
                raise AssertionError(f"no {what} (waited up to {timeout}s); deliveries of {event_id}: "
                                     f"{[d.get('encryption') for d in self.of(event_id)]}")
            self.poll()


class Scenario:
    """A stack, puppets in the puppet namespace, and a strict client's user in an encrypted room with them."""

    def __init__(self, tmp, encryption_extra: str, puppets: list[str], name: str):
        self.stack = Stack(tmp, encryption_extra=encryption_extra, sharing_policy=None)
        self.loop = asyncio.new_event_loop()
        self.puppets = puppets
        self.client = None
        try:
            for puppet in puppets:
                status, body = request("PUT", f"{self.stack.url}/_sealbridge/v1/puppets/{quote(puppet)}",
                                       token=self.stack.bridge_token, body={"displayname": puppet})
                assert status == 200 and body["device_id"] == DEVICE, body
            self.login = self.stack.register_full(name)
            self.client = self.run(StrictClient.open(self.stack.homeserver, self.login))
            self.room_id = self.run(self.client.create_encrypted_room(puppets))
            self.run(self.client.wait_joined(self.room_id, puppets, 45))
            self.deliveries = Deliveries(self.stack)
        except BaseException:
            self.close()
            raise

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def close(self):
        try:
            if self.client:
                self.run(self.client.close())
            self.loop.close()
        finally:
            self.stack.close()


@pytest.fixture(scope="class")
def cross_signed(tmp_path_factory):
    scenario = Scenario(tmp_path_factory.mktemp("strict"), SURFACE_AFTER,
                        [f"@sealbridge_strict{n}:localhost" for n in range(2)], "dora")
    try:
        scenario.sent = scenario.run(scenario.client.send_text(scenario.room_id, "hello strict world"))
        yield scenario
    finally:
        scenario.close()


@pytest.fixture(scope="class")
def without_identity(tmp_path_factory):
    scenario = Scenario(tmp_path_factory.mktemp("unsigned"), SURFACE_AFTER + "  cross_signing:\n    enabled: false\n",
                        ["@sealbridge_unsigned0:localhost"], "ezra")
    try:
        scenario.sent = scenario.run(scenario.client.send_text(scenario.room_id, "hello unsigned world"))
        yield scenario
    finally:
        scenario.close()


class TestCrossSignedPuppets:
    def test_both_puppets_receive_the_room_key(self, cross_signed):
        s = cross_signed
        shared = s.run(s.client.shared_key(s.room_id))
        devices = {(p, DEVICE) for p in s.puppets}
        withheld = {p: s.run(s.client.trust_of(p, DEVICE)) for p, _ in shared.withheld_from & devices}
        assert not withheld, f"the strict client withheld the key (m.unverified) from {withheld} (mautrix's trust)"
        assert devices <= shared.shared_with, shared
        # Sealbridge holds the key: decryption below is the proof that each puppet's copy opened; here
        # the inbound session exists at all.
        count = psql(s.stack.database_url,
                     f"SELECT count(*) FROM sealbridge_inbound_group_sessions WHERE session_id = '{shared.session_id}'")
        assert int(count) >= 1, f"Sealbridge stored no copy of the strict client's session {shared.session_id}"

    def decrypted(self, s) -> dict:
        # A withheld key is the sender's final word (no late key follows), so no point waiting on.
        return s.deliveries.wait(s.sent, lambda d: d["encryption"].get("decrypted"), 20,
                                 "the strict client's message, decrypted",
                                 give_up=lambda d: d["encryption"].get("error", {}).get("code") == "withheld")

    def test_bridge_logic_gets_the_message_decrypted(self, cross_signed):
        s = cross_signed
        delivery = self.decrypted(s)
        assert delivery["sender"] == s.client.user_id and delivery["room_id"] == s.room_id
        assert delivery["type"] == "m.room.message" and delivery["content"]["body"] == "hello strict world"
        assert delivery["encryption"]["sender_device"] == s.client.device_id
        assert delivery["encryption"]["sender_key"] == s.client.machine.account.identity_key

    def test_delivery_says_cross_signed(self, cross_signed):
        delivery = self.decrypted(cross_signed)
        trust = delivery["encryption"].get("trust")
        assert trust == "cross_signed", f"trust {trust!r} for a message from a cross-signed device"

    def test_puppet_replies_decrypt_on_the_strict_client(self, cross_signed):
        s = cross_signed
        sent = {}
        for n, puppet in enumerate(s.puppets):
            status, body = request(
                "PUT", f"{s.stack.url}/_sealbridge/v1/rooms/{quote(s.room_id)}/send/m.room.message/strict-{n}?as={quote(puppet)}",
                token=s.stack.bridge_token, body={"msgtype": "m.text", "body": f"reply from {n}"})
            assert status == 200, body
            sent[puppet] = body["event_id"]
        for n, puppet in enumerate(s.puppets):
            event = s.run(s.client.sync_until(lambda c: c.message(s.room_id, puppet, f"reply from {n}"), 30,
                                              f"{puppet}'s reply to decrypt"))
            assert event.decrypted and event.error is None and event.event_id == sent[puppet], event
        assert not s.client.undecrypted(s.room_id)
        s.replies = sent

    def test_strict_client_resolves_the_puppets_as_cross_signed(self, cross_signed):
        s = cross_signed
        for puppet in s.puppets:
            trust = s.run(s.client.trust_of(puppet, DEVICE))  # queries the puppet's keys afresh
            assert s.run(s.client.master_key(puppet)), f"{puppet} has no master key on the homeserver"
            assert trust is not None and trust >= TrustState.CROSS_SIGNED_TOFU, f"{puppet}/{DEVICE}: {trust}"
        # The replies themselves carry the same verdict (decided from the session's sender device).
        replies = [e for e in s.client.events if e.sender in s.puppets and e.decrypted]
        assert replies, "run after test_puppet_replies_decrypt_on_the_strict_client"
        for event in replies:
            assert event.trust >= TrustState.CROSS_SIGNED_TOFU, f"{event.sender}'s reply: {event.trust}"


class TestPuppetsWithoutIdentity:
    def test_strict_client_withholds_the_key(self, without_identity):
        s = without_identity
        puppet = s.puppets[0]
        assert s.run(s.client.trust_of(puppet, DEVICE)) == TrustState.UNVERIFIED
        assert s.run(s.client.master_key(puppet)) is None, "cross-signing is off, yet the puppet has a master key"
        shared = s.run(s.client.shared_key(s.room_id))
        assert (puppet, DEVICE) in shared.withheld_from and (puppet, DEVICE) not in shared.shared_with, shared

    def test_bridge_logic_gets_it_undecryptable_withheld_unverified(self, without_identity):
        s = without_identity
        delivery = s.deliveries.wait(s.sent, lambda d: "error" in d["encryption"], 20,
                                     "the strict client's message, surfaced as undecryptable")
        encryption = delivery["encryption"]
        assert encryption["encrypted"] is True and encryption["decrypted"] is False, encryption
        assert encryption["error"]["code"] == "withheld", encryption
        assert encryption["error"]["reason"] == "withheld:m.unverified", encryption
        assert delivery["content"] == {} and delivery["sender"] == s.client.user_id
        assert not [d for d in s.deliveries.of(s.sent) if d["encryption"].get("decrypted")], "decrypted a withheld key"
