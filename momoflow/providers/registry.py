"""Builds the configured provider adapters (the only place that knows them all)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from momoflow.models import ProviderName
from momoflow.providers.base import PaymentProvider
from momoflow.providers.caurisflux import CaurisFluxClient, CaurisFluxCredentials
from momoflow.providers.mobilepay import MobilePayClient, MobilePayCredentials
from momoflow.providers.novasend import NovaSendClient, NovaSendCredentials
from momoflow.settings import Settings


def build_provider(
    provider: ProviderName, settings: Settings, http: httpx.AsyncClient
) -> PaymentProvider:
    """The adapter of one provider, sharing ``http``."""
    match provider:
        case ProviderName.CAURISFLUX:
            cf = settings.caurisflux
            return CaurisFluxClient(
                http,
                base_url=cf.base_url,
                credentials=CaurisFluxCredentials(
                    public_key=cf.public_key,
                    secret_key=cf.secret_key.get_secret_value(),
                    webhook_secret=cf.webhook_secret.get_secret_value(),
                ),
                webhook_tolerance_s=cf.webhook_tolerance_s,
                allow_legacy_signatures=cf.allow_legacy_signatures,
            )
        case ProviderName.NOVASEND:
            ns = settings.novasend
            return NovaSendClient(
                http,
                base_url=ns.base_url,
                credentials=NovaSendCredentials(
                    api_key=ns.api_key,
                    api_client=ns.api_client.get_secret_value(),
                    webhook_secret=ns.webhook_secret.get_secret_value(),
                ),
                language=ns.language,
                account_id=ns.account_id,
            )
        case ProviderName.MOBILEPAY:
            mp = settings.mobilepay
            return MobilePayClient(
                http,
                base_url=mp.base_url,
                credentials=MobilePayCredentials(
                    api_token=mp.api_token.get_secret_value() if mp.api_token else None,
                    login_email=mp.login_email,
                    login_password=(
                        mp.login_password.get_secret_value() if mp.login_password else None
                    ),
                    webhook_token=mp.webhook_token.get_secret_value(),
                ),
                merchant_id=mp.merchant_id,
                duplicate_search_window_s=mp.duplicate_search_window_s,
                consistency_window_s=mp.consistency_window_s,
            )


@asynccontextmanager
async def open_providers(settings: Settings) -> AsyncIterator[dict[ProviderName, PaymentProvider]]:
    """One adapter per enabled provider (``MOMOFLOW_PROVIDERS``), each with its own HTTP
    client and timeout; the clients are closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        providers: dict[ProviderName, PaymentProvider] = {}
        for provider in settings.providers:
            http = await stack.enter_async_context(provider_http_client(settings, provider))
            providers[provider] = build_provider(provider, settings, http)
        yield providers


def provider_http_client(settings: Settings, provider: ProviderName) -> httpx.AsyncClient:
    """The HTTP client of one provider's calls (no retries: Temporal owns them)."""
    timeouts = {
        ProviderName.CAURISFLUX: settings.caurisflux.timeout_s,
        ProviderName.NOVASEND: settings.novasend.timeout_s,
        ProviderName.MOBILEPAY: settings.mobilepay.timeout_s,
    }
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeouts[provider]),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        headers={"User-Agent": "momoflow/0.1"},
    )
