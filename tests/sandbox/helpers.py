"""Helpers for the sandbox tests: deadline waits, a webhook receiver, signature checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from momoflow.sandbox.shared import ThreadedServer

T = TypeVar("T")

CF_KEY = "pk_test_momoflow:sk_test_momoflow"
CF_WEBHOOK_SECRET = "whsec_test_receiver"


def wait_until(
    probe: Callable[[], T],
    predicate: Callable[[T], object] = bool,
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
) -> T:
    """Poll ``probe`` until ``predicate(value)`` holds and return that value; fail after
    ``timeout`` seconds (a readiness wait with a deadline, never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if predicate(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


@dataclass(frozen=True)
class ReceivedWebhook:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A tiny real HTTP server that records webhooks and answers scripted status codes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[ReceivedWebhook] = []
        self._script: deque[int] = deque()
        self.default_status = 200
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        self.server = ThreadedServer(app)

    @property
    def url(self) -> str:
        return self.server.url

    async def _handle(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        with self._lock:
            self._received.append(
                ReceivedWebhook(
                    path=request.url.path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    received_at=time.monotonic(),
                )
            )
            status = self._script.popleft() if self._script else self.default_status
        return PlainTextResponse("ok", status_code=status)

    def respond(self, *statuses: int, default: int = 200) -> None:
        """Answer the next POSTs with ``statuses``, then ``default``."""
        with self._lock:
            self._script = deque(statuses)
            self.default_status = default

    def received(self, path: str | None = None) -> list[ReceivedWebhook]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._script.clear()
            self.default_status = 200


def verify_caurisflux_signature(hook: ReceivedWebhook, secret: str = CF_WEBHOOK_SECRET) -> None:
    """Check a webhook the way providers.md 1.8 describes it (independent of the sandbox)."""
    timestamp = hook.headers["x-webhook-timestamp"]
    signature = hook.headers["x-webhook-signature"]
    assert signature.startswith("sha256="), signature
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + hook.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(signature.removeprefix("sha256="), expected)
    assert abs(int(timestamp) - time.time()) <= 300
