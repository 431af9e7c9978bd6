"""CaurisFlux account settings (``MOMOFLOW_CAURISFLUX__*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from momoflow.providers.spec import ProviderSettingsBase, SandboxLaunch


class CaurisFluxSettings(ProviderSettingsBase):
    """CaurisFlux account: base URL, key pair, webhook secret and plan limit."""

    base_url: str = "http://127.0.0.1:8101/api/v1"
    public_key: str = "pk_test_momoflow"
    secret_key: SecretStr = SecretStr("sk_test_momoflow")
    webhook_secret: SecretStr = SecretStr("whsec_momoflow_sandbox")
    webhook_tolerance_s: int = Field(default=300, ge=1)
    #: Accept webhooks signed without a timestamp (an HMAC of the body alone, the legacy form
    #: the vendor plugin still accepts). Off: such a signature never expires, so a captured
    #: delivery could be replayed at any time. On: a replay is dropped by the transaction,
    #: which keeps every event id (the delivery id, else a hash of the body) for its life.
    allow_legacy_signatures: bool = False
    #: A signed final payout webhook (success or failure) is confirmed by a status read
    #: before it counts. Off saves one read per payout, but then whoever holds the webhook
    #: secret can make a payout look paid, or failed and paid again (docs/providers.md).
    confirm_payout_webhooks: bool = True
    #: The plan's request limit (Standard plan: 100/min), enforced by the Temporal server.
    rate_limit_per_minute: int = Field(default=100, ge=1)
    timeout_s: float = Field(default=20.0, gt=0)

    def rate_limit_per_second(self) -> float:
        """The plan limit as activities per second."""
        return self.rate_limit_per_minute / 60.0

    def secrets(self) -> dict[str, SecretStr | None]:
        """The secret key and the webhook secret."""
        return {"secret_key": self.secret_key, "webhook_secret": self.webhook_secret}

    def confirms_payout_webhooks(self) -> bool:
        """``confirm_payout_webhooks``."""
        return self.confirm_payout_webhooks

    def sandbox_launch(self, webhook_url: str) -> SandboxLaunch:
        """The public key and plan limit as options, the secrets in the environment."""
        return SandboxLaunch(
            args=[
                "--webhook-url",
                webhook_url,
                "--public-key",
                self.public_key,
                "--rate-limit-per-minute",
                str(self.rate_limit_per_minute),
            ],
            env={
                "CAURISFLUX_SANDBOX_SECRET_KEY": self.secret_key.get_secret_value(),
                "CAURISFLUX_SANDBOX_WEBHOOK_SECRET": self.webhook_secret.get_secret_value(),
            },
        )
