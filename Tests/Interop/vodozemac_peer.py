#!/usr/bin/env python3
"""A vodozemac peer for Sealbridge's libolm interoperability test (Tests/OlmTests/InteropTests.swift).

vodozemac is an independent Olm/Megolm implementation (Rust, used by Element and matrix-nio), so a
message that crosses between it and our libolm wrapper in both directions proves wire compatibility.
The Swift test drives two steps, passing JSON on stdin and reading JSON from stdout:

  start   {"swift_curve25519", "swift_one_time_key"}
          -> vodozemac opens an Olm session to Swift (pre-key message), starts a Megolm session,
             encrypts messages, signs a message, and offers a one-time key of its own.
  finish  {"state", "olm_reply", "swift_prekey", "swift_curve25519", "swift_ed25519",
           "swift_signed_message", "swift_signature", "megolm_session_key", "megolm_messages",
           "libolm_inbound_pickle", "libolm_pickle_key"}
          -> vodozemac decrypts what Swift sent and reports the plaintexts and indexes.

Binary fields are unpadded base64, as on the Matrix wire. Test-only: the pickle key is fixed.
"""
import base64
import json
import sys

import vodozemac as vz

PICKLE_KEY = b"sealbridge-interop-test-key-32b!"  # exactly 32 bytes; test state only


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def wire(message) -> dict:
    kind, body = message.to_parts()
    return {"type": kind, "body": b64(body)}


def start(request: dict) -> dict:
    account = vz.Account()
    account.generate_one_time_keys(1)
    (otk_id, otk), = account.one_time_keys.items()
    account.mark_keys_as_published()

    session = account.create_outbound_session(
        vz.Curve25519PublicKey.from_base64(request["swift_curve25519"]),
        vz.Curve25519PublicKey.from_base64(request["swift_one_time_key"]))
    olm_messages = [wire(session.encrypt(f"vodozemac olm {n}".encode())) for n in range(2)]

    group = vz.GroupSession()
    session_key = group.session_key.to_base64()
    megolm = [group.encrypt(f"vodozemac megolm {n}".encode()).to_base64() for n in range(3)]

    signed = b"signed by vodozemac"
    return {
        "vz_curve25519": account.curve25519_key.to_base64(),
        "vz_ed25519": account.ed25519_key.to_base64(),
        "vz_one_time_key": otk.to_base64(),
        "olm_messages": olm_messages,
        "megolm_session_id": group.session_id,
        "megolm_session_key": session_key,
        "megolm_messages": megolm,
        "signed_message": b64(signed),
        "signature": account.sign(signed).to_base64(),
        "state": {"account": account.pickle(PICKLE_KEY), "session": session.pickle(PICKLE_KEY)},
    }


def finish(request: dict) -> dict:
    account = vz.Account.from_pickle(request["state"]["account"], PICKLE_KEY)
    session = vz.Session.from_pickle(request["state"]["session"], PICKLE_KEY)

    reply = request["olm_reply"]
    olm_reply = session.decrypt(vz.AnyOlmMessage.from_parts(reply["type"], unb64(reply["body"]))).decode()

    prekey = request["swift_prekey"]
    _, swift_initiated = account.create_inbound_session(
        vz.Curve25519PublicKey.from_base64(request["swift_curve25519"]),
        vz.AnyOlmMessage.from_parts(prekey["type"], unb64(prekey["body"])).to_pre_key())

    vz.Ed25519PublicKey.from_base64(request["swift_ed25519"]).verify_signature(
        unb64(request["swift_signed_message"]), vz.Ed25519Signature.from_base64(request["swift_signature"]))
    try:
        vz.Ed25519PublicKey.from_base64(request["swift_ed25519"]).verify_signature(
            unb64(request["swift_signed_message"]) + b"!",
            vz.Ed25519Signature.from_base64(request["swift_signature"]))
        tampered_signature_rejected = False
    except vz.SignatureException:
        tampered_signature_rejected = True

    inbound = vz.InboundGroupSession(vz.SessionKey(request["megolm_session_key"]))
    megolm = []
    for text in request["megolm_messages"]:
        decrypted = inbound.decrypt(vz.MegolmMessage.from_base64(text))
        megolm.append({"plaintext": decrypted.plaintext.decode(), "index": decrypted.message_index})

    from_pickle = vz.InboundGroupSession.from_libolm_pickle(
        request["libolm_inbound_pickle"], unb64(request["libolm_pickle_key"]))
    pickled_decrypt = from_pickle.decrypt(vz.MegolmMessage.from_base64(request["megolm_messages"][-1]))

    return {
        "olm_reply": olm_reply,
        "swift_initiated": swift_initiated.decode(),
        "signature_verified": True,
        "tampered_signature_rejected": tampered_signature_rejected,
        "megolm_session_id": inbound.session_id,
        "megolm": megolm,
        "libolm_pickle_session_id": from_pickle.session_id,
        "libolm_pickle_decrypt": pickled_decrypt.plaintext.decode(),
    }


def main() -> None:
    request = json.load(sys.stdin)
    command = request.pop("command")
    result = {"start": start, "finish": finish}[command](request)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
