"""Fault injection: a registry of scripted misbehaviours consumed by matching calls.

Request faults apply to API operations (named by the simulator, e.g. ``payouts.initiate``;
``*`` matches every operation):

- ``error``: answer ``status`` with an error body, **without executing** the request;
- ``delay``: wait ``seconds`` (real time), then execute and answer normally;
- ``timeout_after_execute``: execute fully, then hang ``seconds`` (default 60) before
  answering, so that the client times out on a request that did move money;
- ``error_after_execute``: execute fully, then answer ``status`` with an error body (what
  a provider whose own back end timed out, or a proxy in front of it, may answer after the
  money moved: CaurisFlux's ``provider_error``, a 502);
- ``garbage_body``: execute, then answer 200 with a body that is not JSON.

Webhook faults apply to the next deliveries, whatever the operation:

- ``drop_webhooks``: the delivery is lost (never sent, never retried);
- ``duplicate_webhooks``: the delivery is sent twice (same id and body);
- ``reorder_webhooks``: a transaction's intermediate and final events are sent final-first.

Each fault is consumed by ``count`` matching calls (``None``: until removed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

__all__ = [
    "REQUEST_FAULT_KINDS",
    "WEBHOOK_FAULT_KINDS",
    "Fault",
    "FaultKind",
    "FaultRegistry",
    "FaultSpec",
    "hang",
]

FaultKind = Literal[
    "error",
    "delay",
    "timeout_after_execute",
    "error_after_execute",
    "garbage_body",
    "drop_webhooks",
    "duplicate_webhooks",
    "reorder_webhooks",
]

REQUEST_FAULT_KINDS: frozenset[str] = frozenset(
    {"error", "delay", "timeout_after_execute", "error_after_execute", "garbage_body"}
)
WEBHOOK_FAULT_KINDS: frozenset[str] = frozenset(
    {"drop_webhooks", "duplicate_webhooks", "reorder_webhooks"}
)

_DEFAULT_SECONDS: dict[str, float] = {"delay": 1.0, "timeout_after_execute": 60.0}


class FaultSpec(BaseModel):
    """Body of ``POST /_sandbox/faults``."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    operation: str = "*"
    status: int = Field(default=503, ge=400, le=599)
    count: int | None = Field(default=1, ge=1)
    seconds: float | None = Field(default=None, ge=0)
    message: str | None = None
    code: str | None = None


@dataclass
class Fault:
    """A registered fault and how many more calls it will affect."""

    id: str
    kind: str
    operation: str
    status: int
    seconds: float
    remaining: int | None
    message: str | None
    code: str | None
    hits: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "id": self.id,
            "kind": self.kind,
            "operation": self.operation,
            "status": self.status,
            "seconds": self.seconds,
            "remaining": self.remaining,
            "message": self.message,
            "code": self.code,
            "hits": self.hits,
        }


class FaultRegistry:
    """Faults in registration order; the oldest matching fault is consumed first."""

    def __init__(self, operations: Collection[str]) -> None:
        self._operations = frozenset(operations)
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    @property
    def operations(self) -> frozenset[str]:
        """Operation names this simulator knows (besides ``*``)."""
        return self._operations

    def add(self, spec: FaultSpec) -> Fault:
        """Register ``spec``; raise ValueError for an unknown operation."""
        if spec.operation != "*" and spec.operation not in self._operations:
            known = ", ".join(sorted(self._operations))
            raise ValueError(f"unknown operation {spec.operation!r}; known: *, {known}")
        seconds = spec.seconds if spec.seconds is not None else _DEFAULT_SECONDS.get(spec.kind, 0)
        fault = Fault(
            id=f"flt_{next(self._ids)}",
            kind=spec.kind,
            operation=spec.operation,
            status=spec.status,
            seconds=seconds,
            remaining=spec.count,
            message=spec.message,
            code=spec.code,
        )
        self._faults.append(fault)
        return fault

    def take(self, operation: str) -> Fault | None:
        """Consume and return the first request fault matching ``operation``."""
        return self._consume(
            lambda f: f.kind in REQUEST_FAULT_KINDS and f.operation in ("*", operation)
        )

    def take_webhook(self, kind: str) -> Fault | None:
        """Consume and return the first webhook fault of ``kind``."""
        return self._consume(lambda f: f.kind == kind)

    def _consume(self, matches: Callable[[Fault], bool]) -> Fault | None:
        for fault in self._faults:
            if matches(fault):
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def active(self) -> list[Fault]:
        """Active faults, oldest first."""
        return list(self._faults)

    def remove(self, fault_id: str) -> bool:
        """Remove one fault; False when it does not exist (any more)."""
        for fault in self._faults:
            if fault.id == fault_id:
                self._faults.remove(fault)
                return True
        return False

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()


async def hang(request: Request, seconds: float) -> None:
    """Hold the answer for ``seconds`` (real time), or until the client goes away.

    The client of a ``timeout_after_execute`` fault has usually timed out long before; ending
    the hang when it disconnects frees the connection and keeps shutdowns fast.
    """

    async def until_disconnect() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    waiters = [asyncio.ensure_future(asyncio.sleep(max(0.0, seconds)))]
    waiters.append(asyncio.ensure_future(until_disconnect()))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await waiter
