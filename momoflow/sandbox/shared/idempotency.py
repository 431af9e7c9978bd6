"""Idempotency-key store: replay stored responses, refuse a key reused for another body."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .core import Clock, canonical_json

__all__ = ["IdempotencyKeyReuse", "IdempotencyStore", "StoredResponse"]


@dataclass(frozen=True)
class StoredResponse:
    """A response kept byte for byte so that it can be replayed."""

    status_code: int
    body: bytes
    media_type: str


class IdempotencyKeyReuse(Exception):
    """The key was already used with a different request body (or endpoint)."""


@dataclass
class _Record:
    fingerprint: str
    response: StoredResponse
    expires_at: float


class IdempotencyStore:
    """Responses by (scope, key) for ``ttl`` seconds of real time.

    ``scope`` separates merchants (the public API key). Only what the simulator chooses to
    :meth:`store` is kept: the CaurisFlux simulator stores 2xx results only. Use
    :meth:`guard` around lookup + execution + store so that two concurrent requests with the
    same key cannot both execute.
    """

    def __init__(self, clock: Clock, *, ttl: float = 86_400.0) -> None:
        self._clock = clock
        self.ttl = ttl
        self._records: dict[tuple[str, str], _Record] = {}
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        """Hash of the method, path and canonical JSON body (raw bytes when not JSON)."""
        try:
            canonical = canonical_json(json.loads(body)) if body.strip() else b""
        except ValueError:
            canonical = body
        digest = hashlib.sha256()
        digest.update(f"{method.upper()} {path}\n".encode())
        digest.update(canonical)
        return digest.hexdigest()

    def lookup(self, scope: str, key: str, fingerprint: str) -> StoredResponse | None:
        """The stored response for a replay, None when the key is free.

        Raises :class:`IdempotencyKeyReuse` when the key is taken by a different request.
        """
        record = self._records.get((scope, key))
        if record is None:
            return None
        if record.expires_at <= self._clock.now():
            del self._records[(scope, key)]
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReuse(key)
        return record.response

    def store(self, scope: str, key: str, fingerprint: str, response: StoredResponse) -> None:
        """Keep ``response`` for ``ttl`` seconds."""
        self._purge()
        self._records.pop((scope, key), None)
        self._records[(scope, key)] = _Record(
            fingerprint=fingerprint, response=response, expires_at=self._clock.now() + self.ttl
        )

    @contextlib.asynccontextmanager
    async def guard(self, scope: str, key: str) -> AsyncIterator[None]:
        """Serialize requests that carry the same key."""
        slot = (scope, key)
        lock, users = self._locks.get(slot, (asyncio.Lock(), 0))
        self._locks[slot] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[slot]
            if users <= 1:
                del self._locks[slot]
            else:
                self._locks[slot] = (lock, users - 1)

    def _purge(self) -> None:
        # Records are kept in insertion order with one TTL, so expired ones are at the front;
        # stopping at the first live record keeps a store O(1) amortized under load.
        now = self._clock.now()
        while self._records:
            slot, record = next(iter(self._records.items()))
            if record.expires_at > now:
                break
            del self._records[slot]

    def __len__(self) -> int:
        return len(self._records)

    def clear(self) -> None:
        """Forget every key."""
        self._records.clear()
