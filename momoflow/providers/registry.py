"""Builds the configured provider adapters, each from its provider's spec."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from momoflow.models import ProviderName
from momoflow.providers.base import PaymentProvider
from momoflow.providers.catalog import spec_for
from momoflow.providers.spec import ProviderSpec
from momoflow.settings import Settings


def build_provider(
    provider: ProviderName,
    settings: Settings,
    http: httpx.AsyncClient,
    specs: Sequence[ProviderSpec[Any]] | None = None,
) -> PaymentProvider:
    """The adapter of one provider, sharing ``http``; ``specs`` default to the discovered
    ones."""
    return spec_for(provider, specs).adapter(settings, http)


@asynccontextmanager
async def open_providers(
    settings: Settings, specs: Sequence[ProviderSpec[Any]] | None = None
) -> AsyncIterator[dict[ProviderName, PaymentProvider]]:
    """One adapter per enabled provider (``MOMOFLOW_PROVIDERS``), each with its own HTTP
    client and timeout; the clients are closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        providers: dict[ProviderName, PaymentProvider] = {}
        for provider in settings.providers:
            http = await stack.enter_async_context(provider_http_client(settings, provider))
            providers[provider] = build_provider(provider, settings, http, specs)
        yield providers


def provider_http_client(settings: Settings, provider: ProviderName) -> httpx.AsyncClient:
    """The HTTP client of one provider's calls (no retries: Temporal owns them)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.for_provider(provider).timeout_s),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        headers={"User-Agent": "momoflow/0.1"},
    )
