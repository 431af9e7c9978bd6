"""NovaSend account settings (``MOMOFLOW_NOVASEND__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from momoflow.providers.spec import ProviderSettingsBase, SandboxLaunch


class NovaSendSettings(ProviderSettingsBase):
    """NovaSend account: Basic credentials, webhook secret, language."""

    base_url: str = "http://127.0.0.1:8102"
    api_key: str = "nsk_test_momoflow"
    api_client: SecretStr = SecretStr("nsc_test_momoflow")
    webhook_secret: SecretStr = SecretStr("nswh_momoflow_sandbox")
    #: Language of NovaSend's error messages (``Accept-Language``).
    language: Literal["fr", "en"] = "en"
    #: A signed final payout webhook is confirmed by a status read before it counts (see
    #: ``CaurisFluxSettings.confirm_payout_webhooks``).
    confirm_payout_webhooks: bool = True
    #: Not documented; status reads should stay under one per 5-10 s per transaction [N3].
    rate_limit_per_minute: int = Field(default=300, ge=1)
    #: The docs ask for at most 30 s per call [N3].
    timeout_s: float = Field(default=20.0, gt=0, le=30)
    #: ``accountId`` of payin sessions: required by the older payin API (seed 004), absent
    #: from the newer one [N3, N4, 2.11.1]. Sent only when set; never guessed, since another
    #: value could credit another (sub-)account. Unset, an account on the older API refuses
    #: checkout payins (nothing is created, the payin ends ``failed``).
    account_id: str | None = Field(default=None, max_length=255)

    @field_validator("account_id", mode="before")
    @classmethod
    def _blank_account_id_is_unset(cls, value: object) -> object:
        # docker-compose passes an unset variable as "" ("${VAR:-}").
        return (value.strip() or None) if isinstance(value, str) else value

    def rate_limit_per_second(self) -> float:
        """The limit as activities per second."""
        return self.rate_limit_per_minute / 60.0

    def secrets(self) -> dict[str, SecretStr | None]:
        """The API client (the secret half of the Basic credentials) and the webhook
        secret."""
        return {"api_client": self.api_client, "webhook_secret": self.webhook_secret}

    def confirms_payout_webhooks(self) -> bool:
        """``confirm_payout_webhooks``."""
        return self.confirm_payout_webhooks

    def sandbox_launch(self, webhook_url: str) -> SandboxLaunch:
        """The API key as an option, the secrets in the environment."""
        return SandboxLaunch(
            args=["--webhook-url", webhook_url, "--api-key", self.api_key],
            env={
                "NOVASEND_SANDBOX_API_CLIENT": self.api_client.get_secret_value(),
                "NOVASEND_SANDBOX_WEBHOOK_SECRET": self.webhook_secret.get_secret_value(),
            },
        )
