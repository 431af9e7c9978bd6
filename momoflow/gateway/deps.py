"""Shared dependencies of the gateway's routes."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from temporalio.client import Client

from momoflow.models import ProviderName
from momoflow.providers.base import PaymentProvider
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
    key = x_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    merchant = settings.merchant_for_key(key) if key else None
    if merchant is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail={
                "error": "unauthenticated",
                "message": "missing or unknown API key (send 'Authorization: Bearer <key>')",
            },
            headers={"WWW-Authenticate": "Bearer"},
        )
    return merchant


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ProvidersDep = Annotated[dict[ProviderName, PaymentProvider], Depends(get_providers)]
MerchantDep = Annotated[str, Depends(authenticate)]
