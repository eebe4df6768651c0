"""A minimal Matrix E2EE client on vodozemac, for tests that need a sender who does what no polite
client does: re-share another user's room key as its own, send a refused Olm payload first, encrypt
Megolm room events by hand. It talks to the homeserver with the raw client API (urllib).

Only what the tests need: signed device keys (and one-time keys) uploaded, a puppet's one-time key
claimed and its device keys queried, Olm sessions opened to it, Olm-encrypted to-device payloads with
MSC4147 `sender_device_keys`, and Megolm room events from a vodozemac `GroupSession`.
"""
import base64
import copy
import json
import secrets
import urllib.parse

import canonicaljson
import vodozemac as vz

from conftest import request

OLM = "m.olm.v1.curve25519-aes-sha2"
MEGOLM = "m.megolm.v1.aes-sha2"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


class OlmChannel:
    """An outbound Olm session to one device, with the keys the payload must name."""

    def __init__(self, user_id: str, device_id: str, curve25519: str, ed25519: str, session):
        self.user_id = user_id
        self.device_id = device_id
        self.curve25519 = curve25519
        self.ed25519 = ed25519
        self.session = session


class VodozemacClient:
    """One device of a registered user (`login` from `Stack.register_full`), keys held by vodozemac."""

    def __init__(self, stack, login: dict):
        self.stack = stack
        self.user_id = login["user_id"]
        self.device_id = login["device_id"]
        self.token = login["access_token"]
        self.account = vz.Account()

    @property
    def curve25519(self) -> str:
        return self.account.curve25519_key.to_base64()

    @property
    def ed25519(self) -> str:
        return self.account.ed25519_key.to_base64()

    # The homeserver's client API.

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        status, answer = request(method, f"{self.stack.homeserver}/_matrix/client/v3{path}", token=self.token, body=body)
        assert status == 200, (method, path, status, answer)
        return answer

    def sign(self, obj: dict) -> dict:
        """`obj` with this device's signature added (canonical JSON without signatures/unsigned)."""
        unsigned = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
        signature = self.account.sign(canonicaljson.encode_canonical_json(unsigned)).to_base64()
        signed = copy.deepcopy(obj)
        signed.setdefault("signatures", {}).setdefault(self.user_id, {})[f"ed25519:{self.device_id}"] = signature
        return signed

    def device_keys(self) -> dict:
        """This device's self-signed `device_keys` object (also what MSC4147 `sender_device_keys` carries)."""
        return self.sign({
            "user_id": self.user_id, "device_id": self.device_id, "algorithms": [OLM, MEGOLM],
            "keys": {f"curve25519:{self.device_id}": self.curve25519, f"ed25519:{self.device_id}": self.ed25519},
        })

    def upload_keys(self, one_time_keys: int = 5):
        """Publishes the signed device keys and some signed one-time keys (so E2EE clients can reach us)."""
        self.account.generate_one_time_keys(one_time_keys)
        otks = {f"signed_curve25519:{key_id}": self.sign({"key": key.to_base64()})
                for key_id, key in self.account.one_time_keys.items()}
        self.account.mark_keys_as_published()
        answer = self.api("POST", "/keys/upload", {"device_keys": self.device_keys(), "one_time_keys": otks})
        assert answer["one_time_key_counts"].get("signed_curve25519", 0) >= one_time_keys, answer

    def join(self, room_id: str):
        self.api("POST", f"/join/{quote(room_id)}", {})

    def open_olm(self, user_id: str, device_id: str) -> OlmChannel:
        """Claims a one-time key of `user_id`'s `device_id`, reads its device keys, opens an Olm session."""
        keys = self.api("POST", "/keys/query", {"device_keys": {user_id: [device_id]}})
        device = keys["device_keys"][user_id][device_id]
        curve = device["keys"][f"curve25519:{device_id}"]
        ed = device["keys"][f"ed25519:{device_id}"]
        claimed = self.api("POST", "/keys/claim", {"one_time_keys": {user_id: {device_id: "signed_curve25519"}}})
        (key_id, otk), = claimed["one_time_keys"][user_id][device_id].items()
        assert key_id.startswith("signed_curve25519:"), key_id
        session = self.account.create_outbound_session(
            vz.Curve25519PublicKey.from_base64(curve), vz.Curve25519PublicKey.from_base64(otk["key"]))
        return OlmChannel(user_id, device_id, curve, ed, session)

    def olm_payload(self, channel: OlmChannel, event_type: str, content: dict) -> dict:
        """The plaintext an honest client encrypts: addressing, keys and MSC4147 `sender_device_keys`."""
        return {
            "type": event_type, "content": content, "sender": self.user_id, "sender_device": self.device_id,
            "recipient": channel.user_id, "recipient_keys": {"ed25519": channel.ed25519},
            "keys": {"ed25519": self.ed25519}, "sender_device_keys": self.device_keys(),
        }

    def olm_envelope(self, channel: OlmChannel, payload: dict) -> dict:
        message_type, body = channel.session.encrypt(json.dumps(payload).encode()).to_parts()
        return {"algorithm": OLM, "sender_key": self.curve25519,
                "ciphertext": {channel.curve25519: {"type": message_type, "body": b64(body)}}}

    def send_to_device(self, event_type: str, user_id: str, device_id: str, content: dict):
        self.api("PUT", f"/sendToDevice/{quote(event_type)}/{secrets.token_hex(8)}",
                 {"messages": {user_id: {device_id: content}}})

    def send_olm(self, channel: OlmChannel, event_type: str, content: dict, payload: dict | None = None) -> int:
        """Sends `event_type`/`content` over `channel` (or the given raw `payload`); returns the Olm message type."""
        envelope = self.olm_envelope(channel, payload if payload is not None else self.olm_payload(channel, event_type, content))
        self.send_to_device("m.room.encrypted", channel.user_id, channel.device_id, envelope)
        return envelope["ciphertext"][channel.curve25519]["type"]

    @staticmethod
    def room_key(room_id: str, session_id: str, session_key: str) -> dict:
        return {"algorithm": MEGOLM, "room_id": room_id, "session_id": session_id, "session_key": session_key}

    def send_megolm(self, room_id: str, group, event_type: str, content: dict) -> str:
        """Encrypts an event with the vodozemac `GroupSession` and sends it as `m.room.encrypted`; returns its event id."""
        plaintext = json.dumps({"type": event_type, "content": content, "room_id": room_id}).encode()
        envelope = {"algorithm": MEGOLM, "sender_key": self.curve25519, "ciphertext": group.encrypt(plaintext).to_base64(),
                    "session_id": group.session_id, "device_id": self.device_id}
        answer = self.api("PUT", f"/rooms/{quote(room_id)}/send/m.room.encrypted/{secrets.token_hex(8)}", envelope)
        return answer["event_id"]

    # MSC4268 history bundles: what an inviting client does (matrix-rust-sdk's sending side).

    def upload_media(self, data: bytes) -> str:
        """Uploads raw bytes to the media repository (`POST /_matrix/media/v3/upload`); returns the mxc URI."""
        import urllib.request
        req = urllib.request.Request(f"{self.stack.homeserver}/_matrix/media/v3/upload", data=data, method="POST")
        req.add_header("Content-Type", "application/octet-stream")
        req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read())["content_uri"]

    @staticmethod
    def encrypt_attachment(plaintext: bytes) -> tuple[bytes, dict]:
        """AES-256-CTR as encrypted attachments (v2) do: a fresh key, an IV of 8 random bytes and a zero
        counter, the SHA-256 of the ciphertext. Returns the ciphertext and the `file` object without `url`."""
        import hashlib
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        key, iv = secrets.token_bytes(32), secrets.token_bytes(8) + bytes(8)
        encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
        ciphertext = encryptor.update(plaintext) + encryptor.finalize()
        return ciphertext, {
            "v": "v2",
            "key": {"kty": "oct", "alg": "A256CTR", "ext": True, "key_ops": ["encrypt", "decrypt"],
                    "k": base64.urlsafe_b64encode(key).decode().rstrip("=")},
            "iv": b64(iv), "hashes": {"sha256": b64(hashlib.sha256(ciphertext).digest())},
        }

    def bundle_entry(self, room_id: str, session_id: str, initial_key) -> dict:
        """The `room_keys` entry of one of our Megolm sessions (`initial_key`: its `session_key` taken
        before the first message), exported at index 0 (ExportedSessionData)."""
        return {"algorithm": MEGOLM, "room_id": room_id, "sender_key": self.curve25519,
                "sender_claimed_keys": {"ed25519": self.ed25519}, "session_id": session_id,
                "session_key": vz.InboundGroupSession(initial_key).export_at(0).to_base64()}

    def share_history(self, channel: OlmChannel, room_id: str, bundle: dict, event_type: str = "m.room_key_bundle") -> dict:
        """Encrypts `bundle`, uploads it, and sends the Olm-encrypted pointer over `channel`; returns the `file`."""
        ciphertext, file = self.encrypt_attachment(json.dumps(bundle).encode())
        file["url"] = self.upload_media(ciphertext)
        self.send_olm(channel, event_type, {"room_id": room_id, "file": file})
        return file
