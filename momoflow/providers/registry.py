"""Builds the configured provider adapters (the only place that knows them all)."""

from __future__ import annotations

import httpx

from momoflow.models import ProviderName
from momoflow.providers.base import PaymentProvider
from momoflow.providers.caurisflux import CaurisFluxClient, CaurisFluxCredentials
from momoflow.settings import Settings


def build_providers(
    settings: Settings, http: httpx.AsyncClient
) -> dict[ProviderName, PaymentProvider]:
    """One adapter per configured provider, sharing ``http``."""
    cf = settings.caurisflux
    return {
        ProviderName.CAURISFLUX: CaurisFluxClient(
            http,
            base_url=cf.base_url,
            credentials=CaurisFluxCredentials(
                public_key=cf.public_key,
                secret_key=cf.secret_key.get_secret_value(),
                webhook_secret=cf.webhook_secret.get_secret_value(),
            ),
            webhook_tolerance_s=cf.webhook_tolerance_s,
        )
    }


def provider_http_client(settings: Settings) -> httpx.AsyncClient:
    """The shared HTTP client of provider calls (timeouts from settings, no retries)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.caurisflux.timeout_s),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        headers={"User-Agent": "momoflow/0.1"},
    )
