"""The provider-neutral steps of a simulator's request pipeline.

Each simulator checks credentials, rate limit and its own preconditions itself, then runs
the operation through :func:`with_request_fault`, and its keyed writes through
:func:`replay_or_execute`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from .core import Clock
from .faults import Fault, hang
from .idempotency import IdempotencyKeyReuse, IdempotencyStore, StoredResponse

__all__ = ["Operation", "ready", "replay_or_execute", "with_request_fault"]

#: The operation itself: executes and answers.
Operation = Callable[[], Awaitable[Response]]


async def ready(response: Response) -> Response:
    """``response``, already built, as the awaitable a route handler returns."""
    return response


async def with_request_fault(
    request: Request,
    fault: Fault | None,
    clock: Clock,
    execute: Operation,
    error: Callable[[Fault], Response],
) -> Response:
    """Run ``execute`` under ``fault`` (a request fault already taken, or None).

    ``error`` answers instead of executing, ``delay`` waits (real time) then executes,
    ``timeout_after_execute`` executes then holds the answer, ``error_after_execute``
    executes then answers ``error(fault)``, ``garbage_body`` executes then answers 200 with
    the first half of the body.
    """
    if fault is not None and fault.kind == "error":
        return error(fault)
    if fault is not None and fault.kind == "delay":
        await clock.sleep_real(fault.seconds)
    response = await execute()
    if fault is not None and fault.kind == "timeout_after_execute":
        await hang(request, fault.seconds)
    if fault is not None and fault.kind == "error_after_execute":
        return error(fault)
    if fault is not None and fault.kind == "garbage_body":
        # A body cut in half under a JSON content type: what a proxy reset looks like.
        return Response(
            bytes(response.body)[: len(response.body) // 2],
            status_code=200,
            media_type="application/json",
        )
    return response


async def replay_or_execute(
    store: IdempotencyStore,
    scope: str,
    key: str,
    request: Request,
    body: bytes,
    execute: Operation,
    conflict: Callable[[], Response],
) -> Response:
    """The idempotent form of ``execute`` for ``key`` within ``scope``.

    A key already used for the same method, path and body replays the stored answer with
    ``Idempotent-Replayed: true``; one used for another request answers ``conflict()``.
    Otherwise ``execute`` runs, and only a 2xx answer is kept: a 4xx/5xx created nothing,
    so the key stays free. Requests with the same key are serialized.
    """
    fingerprint = IdempotencyStore.fingerprint(request.method, request.url.path, body)
    async with store.guard(scope, key):
        try:
            stored = store.lookup(scope, key, fingerprint)
        except IdempotencyKeyReuse:
            return conflict()
        if stored is not None:
            return Response(
                stored.body,
                status_code=stored.status_code,
                media_type=stored.media_type,
                headers={"Idempotent-Replayed": "true"},
            )
        response = await execute()
        if 200 <= response.status_code < 300:
            media_type = response.media_type or "application/json"
            store.store(
                scope,
                key,
                fingerprint,
                StoredResponse(response.status_code, bytes(response.body), media_type),
            )
        return response
