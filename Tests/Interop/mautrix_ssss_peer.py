#!/usr/bin/env python3
"""A mautrix-python peer for Sealbridge's secret storage interoperability test
(Tests/MatrixCryptoTests/SecretStorageInteropTests.swift).

mautrix-python (`mautrix.crypto.ssss`) is an independent implementation of Matrix secret storage
(`m.secret_storage.v1.aes-hmac-sha2`, recovery keys). The Swift test passes one JSON request on
stdin and reads one JSON answer from stdout:

  open    {"recovery_key", "key_id", "key_description", "secrets": {name: account data content}}
          -> mautrix checks the Swift-made recovery key against the Swift-made key description,
             decrypts each Swift-made secret and re-encodes the recovery key:
             {"secrets": {name: unpadded base64 of the plaintext}, "recovery_key"}
  make    {"secrets": {name: unpadded base64 of the plaintext}}
          -> mautrix makes a key and encrypts each secret:
             {"recovery_key", "key_id", "key_description", "secrets": {name: account data content}}

Test-only: keys are throwaway.
"""
import base64
import json
import sys

from mautrix.crypto.ssss.key import Key, KeyMetadata
from mautrix.crypto.ssss.types import EncryptedAccountDataEventContent


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def open_secrets(request: dict) -> dict:
    metadata = KeyMetadata.deserialize(request["key_description"])
    key = metadata.verify_recovery_key(request["key_id"], request["recovery_key"])
    opened = {}
    for name, content in request["secrets"].items():
        # mautrix's decrypt returns the base64-decoded plaintext: the secret's raw bytes.
        opened[name] = b64(EncryptedAccountDataEventContent.deserialize(content).decrypt(name, key))
    return {"secrets": opened, "recovery_key": key.recovery_key}


def make_secrets(request: dict) -> dict:
    key = Key.generate()
    secrets = {}
    for name, value in request["secrets"].items():
        encrypted = key.encrypt(name, unb64(value))
        secrets[name] = {"encrypted": {key.id: encrypted.serialize()}}
    return {
        "recovery_key": key.recovery_key,
        "key_id": key.id,
        "key_description": key.metadata.serialize(),
        "secrets": secrets,
    }


def main() -> None:
    request = json.load(sys.stdin)
    command = request.pop("command")
    answer = {"open": open_secrets, "make": make_secrets}[command](request)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
