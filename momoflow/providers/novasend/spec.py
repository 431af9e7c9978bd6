"""NovaSend as momoflow's provider catalog sees it."""

from __future__ import annotations

import httpx

from momoflow.models import ProviderName
from momoflow.providers.novasend.capabilities import CAPABILITIES
from momoflow.providers.novasend.client import NovaSendClient, NovaSendCredentials
from momoflow.providers.novasend.rules import payin_rules
from momoflow.providers.novasend.settings import NovaSendSettings
from momoflow.providers.spec import ProviderSpec, SandboxEntry


def build_adapter(settings: NovaSendSettings, http: httpx.AsyncClient) -> NovaSendClient:
    """The NovaSend client of ``settings``, sharing ``http``."""
    return NovaSendClient(
        http,
        base_url=settings.base_url,
        credentials=NovaSendCredentials(
            api_key=settings.api_key,
            api_client=settings.api_client.get_secret_value(),
            webhook_secret=settings.webhook_secret.get_secret_value(),
        ),
        language=settings.language,
        account_id=settings.account_id,
    )


SPEC = ProviderSpec(
    name=ProviderName.NOVASEND,
    title="NovaSend",
    capabilities=CAPABILITIES,
    settings_model=NovaSendSettings,
    build_adapter=build_adapter,
    sandbox=SandboxEntry(
        command="novasend",
        add_parser="momoflow.sandbox.novasend.cli:add_novasend_parser",
        default_port=8102,
    ),
    payin_rules=payin_rules,
)
