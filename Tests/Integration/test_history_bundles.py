"""History bundles (MSC4268) against a real Synapse: a sender implementing MSC4268 with vodozemac (as
matrix-rust-sdk does when it invites someone) uploads the encrypted bundle of a room's keys to
Synapse's media repository and sends the Olm-encrypted m.room_key_bundle pointer to the invited
puppet's device. The history from before the invite, which no local device had the keys for, is
delivered decrypted (late, marked from_bundle); a bundle from another member than the inviter is
refused and counted.

Sealbridge receives room events only while a local user is in the room, so a first puppet
("watcher") is in the room from the start: it sees the history events, undecryptable (Ivy never
shares their key with anyone); the bundle given to the second puppet ("newcomer") unlocks them."""
import urllib.parse
import urllib.request

import vodozemac as vz

from conftest import Stack, psql, request, wait_for
from test_hostile import Outbox
from vodozemac_client import MEGOLM, VodozemacClient

WATCHER = "@sealbridge_watcher:localhost"
NEWCOMER = "@sealbridge_newcomer:localhost"


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def api(stack, method: str, path: str, body: dict | None = None):
    return request(method, f"{stack.url}/_sealbridge/v1{path}", token=stack.bridge_token, body=body)


def metrics(stack) -> str:
    with urllib.request.urlopen(f"{stack.url}/metrics", timeout=10) as response:
        return response.read().decode()


def test_the_inviters_bundle_decrypts_the_history_and_anyone_elses_is_refused(tmp_path):
    stack = Stack(tmp_path, encryption_extra="  undecryptable:\n    surface_after_seconds: 1\n  key_requests:\n    enabled: false\n")
    try:
        for puppet in (WATCHER, NEWCOMER):
            status, body = api(stack, "PUT", f"/puppets/{quote(puppet)}", body={})
            assert status == 200, body
        newcomer_device = api(stack, "PUT", f"/puppets/{quote(NEWCOMER)}", body={})[1]["device_id"]
        ivy = VodozemacClient(stack, stack.register_full("ivy"))
        jack = VodozemacClient(stack, stack.register_full("jack"))
        ivy.upload_keys(10)
        jack.upload_keys(10)
        outbox = Outbox(stack)
        room_id = ivy.api("POST", "/createRoom", {
            "invite": [WATCHER, jack.user_id], "preset": "private_chat",
            "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}},
                              {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "shared"}}]})["room_id"]
        jack.join(room_id)
        wait_for(lambda: WATCHER in ivy.api("GET", f"/rooms/{quote(room_id)}/joined_members")["joined"], 30, "the watcher to join")

        # The history: two messages whose key Ivy shares with nobody (the newcomer is not invited yet).
        group = vz.GroupSession()
        initial_key = group.session_key
        history = [ivy.send_megolm(room_id, group, "m.room.message", {"msgtype": "m.text", "body": body})
                   for body in ("said before the invite", "also before")]
        for event_id in history:
            first = outbox.wait(lambda seen: next((e for e in seen if e["event_id"] == event_id), None), 30, "the history, undecryptable")
            assert first["encryption"]["decrypted"] is False and first["encryption"]["error"]["reason"] == "unknown_session", first

        # Ivy invites the newcomer (it joins on its own).
        ivy.api("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": NEWCOMER})
        wait_for(lambda: NEWCOMER in ivy.api("GET", f"/rooms/{quote(room_id)}/joined_members")["joined"], 30, "the newcomer to join")
        assert psql(stack.database_url,
                    f"SELECT inviter FROM sealbridge_room_invites WHERE room_id = '{room_id}' AND user_id = '{NEWCOMER}'") == ivy.user_id
        bundle = {"room_keys": [ivy.bundle_entry(room_id, group.session_id, initial_key)], "withheld": []}

        # Jack (a member, not the inviter) sends the newcomer a perfectly good bundle first: refused.
        jack.share_history(jack.open_olm(NEWCOMER, newcomer_device), room_id,
                                       {"room_keys": [ivy.bundle_entry(room_id, group.session_id, initial_key)]})
        wait_for(lambda: 'sealbridge_history_bundles_total{outcome="not_inviter"} 1' in metrics(stack), 30, "Jack's bundle to be refused")
        refused = [line for line in stack.log_lines() if line.get("msg") == "history bundle refused"]
        assert refused and refused[0]["sender"] == jack.user_id and refused[0]["outcome"] == "not_inviter", refused
        assert psql(stack.database_url, f"SELECT count(*) FROM sealbridge_inbound_group_sessions WHERE session_id = '{group.session_id}'") == "0"
        assert psql(stack.database_url, "SELECT count(*) FROM sealbridge_history_bundles") == "0"
        assert not [e for e in outbox.poll(500) if e["event_id"] in history and e["encryption"].get("decrypted")]

        # Ivy's bundle: the history decrypts, late, marked as coming from her bundle.
        ivy.share_history(ivy.open_olm(NEWCOMER, newcomer_device), room_id, bundle)
        late = {}
        for event_id in history:
            late[event_id] = outbox.wait(
                lambda seen: next((e for e in seen if e["event_id"] == event_id and e["encryption"].get("decrypted")), None),
                30, "the history, decrypted")
        assert [late[e]["content"]["body"] for e in history] == ["said before the invite", "also before"]
        for delivery in late.values():
            assert delivery["late"] is True, delivery
            assert delivery["encryption"]["from_bundle"] is True and delivery["encryption"]["bundle_sender"] == ivy.user_id, delivery
            assert delivery["encryption"]["sender_key"] == ivy.curve25519 and delivery["encryption"]["trust"] == "device_only", delivery
        row = psql(stack.database_url, f"SELECT sender_user_id, bundle_sender_user_id, first_known_index FROM sealbridge_inbound_group_sessions "
                                       f"WHERE session_id = '{group.session_id}'")
        assert row == f"{ivy.user_id}|{ivy.user_id}|0", row
        assert psql(stack.database_url, "SELECT count(*) FROM sealbridge_history_bundles") == "0"

        text = metrics(stack)
        for line in ['sealbridge_crypto_recovered_events_total{path="bundle"} 2', 'sealbridge_history_bundles_total{outcome="imported"} 1',
                     'sealbridge_history_bundles_total{outcome="received"} 2', 'sealbridge_history_bundle_sessions_total{outcome="imported"} 1']:
            assert line in text, [m for m in text.splitlines() if "bundle" in m or "recovered" in m]

        # Media that does not exist (unstable type), and a file over the 16 MiB cap: each refused, counted.
        channel = ivy.open_olm(NEWCOMER, newcomer_device)
        ciphertext, file = ivy.encrypt_attachment(b"{}")
        file["url"] = f"mxc://localhost/{'x' * 24}"
        ivy.send_olm(channel, "io.element.msc4268.room_key_bundle", {"room_id": room_id, "file": file})
        wait_for(lambda: 'sealbridge_history_bundles_total{outcome="download_failed"} 1' in metrics(stack), 30, "the missing media to be refused")
        big, file = ivy.encrypt_attachment(b" " * (16 * 1024 * 1024 + 1))
        file["url"] = ivy.upload_media(big)
        ivy.send_olm(channel, "m.room_key_bundle", {"room_id": room_id, "file": file})
        wait_for(lambda: 'sealbridge_history_bundles_total{outcome="too_large"} 1' in metrics(stack), 60, "the oversized bundle to be refused")
        assert psql(stack.database_url, "SELECT count(*) FROM sealbridge_history_bundles") == "0"
        assert stack.process.poll() is None
    finally:
        stack.close()
