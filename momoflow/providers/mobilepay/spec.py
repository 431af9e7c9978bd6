"""MOBILE-PAY as momoflow's provider catalog sees it."""

from __future__ import annotations

import httpx

from momoflow.models import ProviderName
from momoflow.providers.mobilepay.capabilities import CAPABILITIES
from momoflow.providers.mobilepay.client import MobilePayClient, MobilePayCredentials
from momoflow.providers.mobilepay.mapping import marker
from momoflow.providers.mobilepay.settings import MobilePaySettings
from momoflow.providers.spec import ProviderSpec, SandboxEntry


def build_adapter(settings: MobilePaySettings, http: httpx.AsyncClient) -> MobilePayClient:
    """The MOBILE-PAY client of ``settings``, sharing ``http``."""
    return MobilePayClient(
        http,
        base_url=settings.base_url,
        credentials=MobilePayCredentials(
            api_token=settings.api_token.get_secret_value() if settings.api_token else None,
            login_email=settings.login_email,
            login_password=(
                settings.login_password.get_secret_value() if settings.login_password else None
            ),
            webhook_token=settings.webhook_token.get_secret_value(),
        ),
        merchant_id=settings.merchant_id,
        duplicate_search_window_s=settings.duplicate_search_window_s,
        consistency_window_s=settings.consistency_window_s,
    )


SPEC = ProviderSpec(
    name=ProviderName.MOBILEPAY,
    title="MOBILE-PAY",
    capabilities=CAPABILITIES,
    settings_model=MobilePaySettings,
    build_adapter=build_adapter,
    sandbox=SandboxEntry(
        command="mobilepay",
        add_parser="momoflow.sandbox.mobilepay.cli:add_mobilepay_parser",
        default_port=8103,
        api_path="/api/v1",
    ),
    refund_guidance="MOBILE-PAY offers no refund API",
    # MOBILE-PAY keeps no field for our reference: the marker opening each description.
    reference_marker=marker,
    # The real Free plan allows one request every 36 s: a local sandbox takes far more,
    # and the demo's outcomes should show within a minute.
    dev_settings={
        "RATE_LIMIT_PER_HOUR": "36000",
        "POLL_SCHEDULE_S": "[3, 5, 10]",
        "STATUS_READ_INTERVAL_S": "2",
    },
)
