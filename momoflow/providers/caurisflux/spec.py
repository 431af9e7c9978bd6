"""CaurisFlux as momoflow's provider catalog sees it."""

from __future__ import annotations

import httpx

from momoflow.models import ProviderName
from momoflow.providers.caurisflux.capabilities import CAPABILITIES
from momoflow.providers.caurisflux.client import CaurisFluxClient, CaurisFluxCredentials
from momoflow.providers.caurisflux.settings import CaurisFluxSettings
from momoflow.providers.spec import ProviderSpec, SandboxEntry


def build_adapter(settings: CaurisFluxSettings, http: httpx.AsyncClient) -> CaurisFluxClient:
    """The CaurisFlux client of ``settings``, sharing ``http``."""
    return CaurisFluxClient(
        http,
        base_url=settings.base_url,
        credentials=CaurisFluxCredentials(
            public_key=settings.public_key,
            secret_key=settings.secret_key.get_secret_value(),
            webhook_secret=settings.webhook_secret.get_secret_value(),
        ),
        webhook_tolerance_s=settings.webhook_tolerance_s,
        allow_legacy_signatures=settings.allow_legacy_signatures,
    )


SPEC = ProviderSpec(
    name=ProviderName.CAURISFLUX,
    title="CaurisFlux",
    capabilities=CAPABILITIES,
    settings_model=CaurisFluxSettings,
    build_adapter=build_adapter,
    sandbox=SandboxEntry(
        command="caurisflux",
        add_parser="momoflow.sandbox.caurisflux.cli:add_caurisflux_parser",
        default_port=8101,
        api_path="/api/v1",
    ),
    refund_guidance=(
        "CaurisFlux refunds are manual for now: e-mail support@cauris-pay.com with the "
        "transaction id, amount and reason (refund API announced)"
    ),
    # A local sandbox takes far more than the Standard plan's 100 requests a minute.
    dev_settings={"RATE_LIMIT_PER_MINUTE": "1200"},
)
