"""The FastAPI skeleton every simulator app is built on.

:func:`sandbox_app` owns what the simulators share: the lifespan (webhook client opened at
startup; background tasks cancelled and client closed at shutdown), ``app.state.engine``,
the request log and the two error handlers. The simulator adds its own routes, then its
control router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .core import Clock, TaskSupervisor
from .faults import FaultRegistry
from .ledger import Ledger
from .requestlog import CredentialDescriber, RequestLog, RequestLogMiddleware
from .webhooks import WebhookDispatcher

__all__ = ["RemoteControlSetting", "SandboxEngine", "sandbox_app"]


class RemoteControlSetting(Protocol):
    """The one configuration value the shared parts read."""

    @property
    def allow_remote_control(self) -> bool:
        """Serve ``/_sandbox`` to non-loopback clients."""
        ...


class SandboxEngine(Protocol):
    """What the shared app skeleton and control routes need from a simulator's engine."""

    clock: Clock
    tasks: TaskSupervisor
    faults: FaultRegistry
    ledger: Ledger
    webhooks: WebhookDispatcher
    requests: RequestLog

    @property
    def config(self) -> RemoteControlSetting:
        """The current configuration (read-only here: each simulator has its own type)."""
        ...

    async def reset(self) -> None:
        """Forget every transaction, fault and counter; restore the startup config."""
        ...

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Change configuration values at runtime (raise ValueError for a bad one)."""
        ...


def sandbox_app(
    engine: SandboxEngine,
    *,
    title: str,
    log_prefixes: Sequence[str],
    describe_credential: CredentialDescriber,
    http_error: Callable[[Request, HTTPException], Response],
    server_error: Callable[[Request], Response],
    idempotency_header: str = "x-idempotency-key",
) -> FastAPI:
    """A FastAPI app serving nothing yet, with ``engine`` in ``app.state.engine``.

    Requests whose path starts with one of ``log_prefixes`` go to ``engine.requests``
    (credential redacted by ``describe_credential``). ``http_error`` answers every HTTP
    error (unknown route, wrong method, 403 of the control API) and ``server_error`` every
    unhandled exception, in the provider's own error body.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await engine.webhooks.start()
        try:
            yield
        finally:
            await engine.tasks.cancel_all()
            await engine.webhooks.close()

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine = engine
    app.add_middleware(
        RequestLogMiddleware,
        log=engine.requests,
        clock=engine.clock,
        prefixes=tuple(log_prefixes),
        describe_credential=describe_credential,
        idempotency_header=idempotency_header,
    )

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        return http_error(request, exc)

    @app.exception_handler(Exception)
    async def on_server_error(request: Request, exc: Exception) -> Response:
        return server_error(request)

    return app
