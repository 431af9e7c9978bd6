"""Shared dependencies of the gateway's routes."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client

from momoflow.gateway.limits import MerchantLimiter, RateLimited
from momoflow.models import ProviderName
from momoflow.providers.base import PaymentProvider
from momoflow.records.store import RecordStore
from momoflow.settings import Settings
from momoflow.temporal import connect_client


class TemporalConnection:
    """Connects to Temporal on first use, so the gateway starts (and reports not-ready)
    while the server is still coming up."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        """The connected client; raises HTTP 503 when Temporal cannot be reached."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        connect_client(self._settings.temporal, codec=self._settings.codec),
                        timeout=10,
                    )
                except Exception as exc:
                    raise HTTPException(
                        status.HTTP_503_SERVICE_UNAVAILABLE,
                        detail={
                            "error": "temporal_unavailable",
                            "message": "the orchestration server cannot be reached; "
                            "nothing was started, retry later",
                        },
                        headers={"Retry-After": "5"},
                    ) from exc
            return self._client


def records_unavailable(message: str | None = None) -> HTTPException:
    """503 when the record store cannot be reached (nothing was started or changed)."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail={
            "error": "records_unavailable",
            "message": message
            or "the record store cannot be reached; nothing was started, retry shortly",
        },
        headers={"Retry-After": "5"},
    )


def get_store(request: Request) -> RecordStore:
    """The record store (503 when none is configured)."""
    store: RecordStore | None = request.app.state.records
    if store is None:
        raise records_unavailable(
            "no record store is configured (MOMOFLOW_DATABASE__URL); nothing was started"
        )
    return store


def get_temporal_connection(request: Request) -> TemporalConnection:
    """The lazy Temporal connection, for routes that can answer without Temporal."""
    connection: TemporalConnection = request.app.state.temporal
    return connection


def get_settings_dep(request: Request) -> Settings:
    """The gateway's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_temporal(request: Request) -> Client:
    """The Temporal client (503 when unreachable)."""
    connection: TemporalConnection = request.app.state.temporal
    return await connection.get()


def get_providers(request: Request) -> dict[ProviderName, PaymentProvider]:
    """The provider adapters (used here only to verify and parse webhooks)."""
    providers: dict[ProviderName, PaymentProvider] = request.app.state.providers
    return providers


def authenticate(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    """The merchant owning the caller's API key (``Authorization: Bearer`` or
    ``X-API-Key``); 401 otherwise."""
    settings: Settings = request.app.state.settings
    key = api_key_of(authorization, x_api_key)
    merchant = settings.merchant_for_key(key) if key else None
    if merchant is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=UNAUTHENTICATED, headers=_CHALLENGE
        )
    return merchant


def api_key_of(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key a request carries: ``X-API-Key``, else ``Authorization: Bearer``."""
    if x_api_key is not None:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


UNAUTHENTICATED = {
    "error": "unauthenticated",
    "message": "missing or unknown API key (send 'Authorization: Bearer <key>')",
}
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class ApiKeyGate:
    """ASGI middleware: a request to the business API (``/v1``) without a known API key is
    a 401 before anything else, its body unread. FastAPI parses a JSON body before it runs
    the route's dependencies, so a broken body would otherwise be a 400 or a 422 to a
    caller who never proved who it is. A known merchant over its request limit is a 429
    with ``Retry-After``, its body unread too (:mod:`momoflow.gateway.limits`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse unauthenticated ``/v1`` requests; pass everything else on."""
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == "/v1" or path.startswith("/v1/")):
            headers = Headers(scope=scope)
            key = api_key_of(headers.get("authorization"), headers.get("x-api-key"))
            settings: Settings = scope["app"].state.settings
            merchant = settings.merchant_for_key(key) if key else None
            if merchant is None:
                refusal = JSONResponse(UNAUTHENTICATED, status_code=401, headers=_CHALLENGE)
                await refusal(scope, receive, send)
                return
            limiter: MerchantLimiter = scope["app"].state.merchant_limits
            try:
                await limiter.admit(merchant)
            except RateLimited as exc:
                await rate_limited_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def rate_limited_response(exc: RateLimited) -> JSONResponse:
    """429 for a merchant over its request limit."""
    return JSONResponse(
        {
            "error": "rate_limited",
            "message": f"{exc}; nothing was started",
            "limit": exc.limit,
            "window_s": exc.window_s,
            "retry_after_s": exc.retry_after_s,
        },
        status_code=429,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
TemporalConnectionDep = Annotated[TemporalConnection, Depends(get_temporal_connection)]
StoreDep = Annotated[RecordStore, Depends(get_store)]
ProvidersDep = Annotated[dict[ProviderName, PaymentProvider], Depends(get_providers)]
MerchantDep = Annotated[str, Depends(authenticate)]
