"""Encryption of Temporal payloads: AES-256-GCM with key ids, so keys can rotate.

Every payload a momoflow client or worker sends to Temporal (workflow and activity inputs
and results, signals, updates, queries, memo, summaries, failure messages) goes through
:class:`EncryptionCodec` first. Temporal's history then holds::

    metadata = {"encoding": "binary/encrypted", "encryption-key-id": "<key id>"}
    data     = nonce (12 random bytes) || AES-GCM(key, nonce, <the whole original Payload>)

The key id is authenticated too (it is the AES-GCM associated data), so a payload cannot be
relabelled with another key's id. Encoding always uses the active key; decoding uses the key
the payload names, so histories written before a rotation stay readable as long as the old
key stays configured. Payloads that are not ``binary/encrypted`` (recorded before encryption
was switched on, or written by another tool) pass through unchanged.

Codecs run outside the workflow sandbox, so ``os.urandom`` is safe here.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

#: The ``encoding`` metadata of an encrypted payload.
ENCODING = b"binary/encrypted"
#: The metadata key naming the key that encrypted the payload.
KEY_ID_METADATA = "encryption-key-id"
#: Key ids: short, printable, safe in metadata, logs and environment variable values.
KEY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID_RE = re.compile(KEY_ID_PATTERN)


class CodecError(Exception):
    """A payload cannot be decrypted. Messages name key ids, never keys."""


class UnknownKeyError(CodecError):
    """The payload was encrypted with a key id this process is not configured with."""

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"payload is encrypted with key id {key_id!r}, which is not configured here: "
            f"add that key to MOMOFLOW_CODEC__KEYS (keep retired keys as long as histories "
            f"written with them are kept)"
        )
        self.key_id = key_id


class DecryptionError(CodecError):
    """The payload names a known key, but does not decrypt (wrong key or altered bytes)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"payload encrypted with key id {key_id!r} failed authentication: the key "
            f"configured under that id is not the one that encrypted it, or the payload "
            f"was altered"
        )
        self.key_id = key_id


def decode_key(value: str) -> bytes:
    """The 32 bytes of a base64-encoded AES-256 key; ``ValueError`` otherwise (the message
    never repeats the value)."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError:
        raise ValueError("codec keys must be standard base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"codec keys must be {KEY_BYTES} bytes (AES-256), got {len(raw)}")
    return raw


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded (for ``MOMOFLOW_CODEC__KEYS``)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def is_valid_key_id(key_id: str) -> bool:
    """Whether ``key_id`` can name a codec key."""
    return bool(_KEY_ID_RE.match(key_id))


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM payload codec with key ids (see the module docstring).

    ``keys`` maps key ids to 32-byte keys; ``active_key_id`` names the key new payloads are
    encrypted with. Keys are held only in this object, and its ``repr`` shows ids only.
    """

    def __init__(self, keys: Mapping[str, bytes], *, active_key_id: str) -> None:
        for key_id, key in keys.items():
            if not is_valid_key_id(key_id):
                raise ValueError(f"invalid codec key id {key_id!r}: must match {KEY_ID_PATTERN}")
            if len(key) != KEY_BYTES:
                raise ValueError(f"codec key {key_id!r} must be {KEY_BYTES} bytes")
        if active_key_id not in keys:
            raise ValueError(f"the active codec key id {active_key_id!r} has no key")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active_key_id = active_key_id

    def __repr__(self) -> str:
        return (
            f"EncryptionCodec(active_key_id={self._active_key_id!r}, "
            f"key_ids={sorted(self._ciphers)!r})"
        )

    @property
    def active_key_id(self) -> str:
        """The id of the key new payloads are encrypted with."""
        return self._active_key_id

    @property
    def key_ids(self) -> frozenset[str]:
        """Every key id this codec can decrypt."""
        return frozenset(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the active key (already encrypted ones are kept)."""
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each encrypted payload with the key it names; others pass through."""
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted with the active key."""
        if is_encrypted(payload):
            # Encrypting twice would only make the UI show ciphertext after one decode.
            return payload
        key_id = self._active_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(), key_id.encode("utf-8")
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode("utf-8")},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted; raises :class:`CodecError` when that is impossible."""
        if not is_encrypted(payload):
            return payload
        key_id = payload_key_id(payload)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(key_id)
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode("utf-8"))
        except InvalidTag:
            raise DecryptionError(key_id) from None
        return Payload.FromString(plain)


def is_encrypted(payload: Payload) -> bool:
    """Whether ``payload`` was produced by :class:`EncryptionCodec`."""
    return payload.metadata.get("encoding") == ENCODING


def payload_key_id(payload: Payload) -> str:
    """The key id an encrypted payload names (``""`` when it names none)."""
    return payload.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", errors="replace")
