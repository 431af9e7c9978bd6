"""A log of the API requests a simulator received, with credentials redacted."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import Clock, iso_timestamp

__all__ = ["RequestLog", "RequestLogMiddleware", "RequestRecord", "redact_secret"]

#: Key under ``request.state`` where a route stores its operation name for the log.
OPERATION_STATE_KEY = "sandbox_operation"


@dataclass(frozen=True)
class RequestRecord:
    """One received request. Never holds a credential in clear."""

    at: str
    method: str
    path: str
    operation: str | None
    idempotency_key: str | None
    credential: str | None
    status_code: int
    duration_ms: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form (camelCase keys) for the control API."""
        raw = asdict(self)
        return {
            "at": raw["at"],
            "method": raw["method"],
            "path": raw["path"],
            "operation": raw["operation"],
            "idempotencyKey": raw["idempotency_key"],
            "credential": raw["credential"],
            "statusCode": raw["status_code"],
            "durationMs": raw["duration_ms"],
        }


class RequestLog:
    """The last ``maxlen`` requests, oldest first."""

    def __init__(self, *, maxlen: int = 10_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)

    def append(self, record: RequestRecord) -> None:
        """Add one record (the oldest is dropped when full)."""
        self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """All kept records, oldest first."""
        return list(self._records)

    def clear(self) -> None:
        """Forget everything."""
        self._records.clear()


def redact_secret(value: str, *, keep: int = 0) -> str:
    """``value`` reduced to its first ``keep`` characters followed by ``***``."""
    return value[:keep] + "***"


CredentialDescriber = Callable[[Mapping[str, str]], str | None]


class RequestLogMiddleware:
    """Pure ASGI middleware recording every HTTP request whose path starts with a prefix.

    ``describe_credential`` receives the lower-cased request headers and must return a
    redacted description of the credential (or None); the raw header is never stored.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        log: RequestLog,
        clock: Clock,
        prefixes: Sequence[str],
        describe_credential: CredentialDescriber,
        idempotency_header: str = "x-idempotency-key",
    ) -> None:
        self.app = app
        self.log = log
        self.clock = clock
        self.prefixes = tuple(prefixes)
        self.describe_credential = describe_credential
        self.idempotency_header = idempotency_header.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        started_at = self.clock.now()
        started = time.perf_counter()
        status_code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            self.log.append(
                RequestRecord(
                    at=iso_timestamp(started_at),
                    method=str(scope["method"]),
                    path=str(scope["path"]),
                    operation=state.get(OPERATION_STATE_KEY),
                    idempotency_key=headers.get(self.idempotency_header),
                    credential=self.describe_credential(headers),
                    status_code=status_code,
                    duration_ms=int((time.perf_counter() - started) * 1000),
                )
            )
