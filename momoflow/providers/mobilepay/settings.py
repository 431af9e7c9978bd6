"""MOBILE-PAY account settings (``MOMOFLOW_MOBILEPAY__*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from momoflow.providers.spec import ProviderSettingsBase, SandboxLaunch
from momoflow.status_reads import ReadBudget


class MobilePaySettings(ProviderSettingsBase):
    """MOBILE-PAY account: Bearer token (or login), webhook URL token, hourly plan limit."""

    base_url: str = "http://127.0.0.1:8103/api/v1"
    api_token: SecretStr | None = SecretStr("mp_test_momoflow")
    #: When set (with the password), a session token from ``/auth/login`` is used instead.
    login_email: str | None = None
    login_password: SecretStr | None = None
    #: MOBILE-PAY signs nothing: webhooks are accepted only on
    #: ``/webhooks/mobilepay/<webhook_token>``.
    webhook_token: SecretStr = SecretStr("mpwh_momoflow_sandbox_token")
    #: ``merchant_id`` of QR payments.
    merchant_id: str = "momoflow"
    #: The plan's request limit per hour (Free: 100, Merchant: 1,000) [M1].
    rate_limit_per_hour: int = Field(default=100, ge=1)
    timeout_s: float = Field(default=20.0, gt=0)
    #: How far back a retry looks for a transfer it may already have made.
    duplicate_search_window_s: int = Field(default=2 * 24 * 3600, ge=60)
    #: MOBILE-PAY has no idempotency: after a transfer whose outcome is unknown (a
    #: timeout, a 5xx), it is never sent again. Its transaction list may lag behind its
    #: writes, so the transfer is searched for this long before the payout goes to
    #: ``reconciling``. Keep it below the payout's ``submit_timeout_s``.
    consistency_window_s: int = Field(default=900, ge=0)
    #: Status reads cost up to 10 requests each (the transaction list is the only way to
    #: read a status) out of 100 an hour on the Free plan: poll slowly, webhooks hint.
    poll_schedule_s: list[int] = Field(default_factory=lambda: [60, 300, 900, 1800], min_length=1)
    #: The share of the plan's requests that status reads may spend. All pending MOBILE-PAY
    #: transactions share one walk of the transaction list (``momoflow.status_reads``);
    #: the rest of the plan goes to the other calls (creates, balances), which the task
    #: queue's rate limit counts as activities.
    status_reads_share: float = Field(default=0.5, gt=0, lt=1)
    #: The shortest wait between two walks of the list, whatever the budget allows.
    status_read_interval_s: float = Field(default=60.0, ge=0.1)

    def status_reads_per_hour(self) -> float:
        """Requests an hour the shared status reads may spend."""
        return self.rate_limit_per_hour * self.status_reads_share

    def rate_limit_per_second(self) -> float:
        """The plan's requests left to the other calls, as activities per second."""
        return self.rate_limit_per_hour * (1 - self.status_reads_share) / 3600.0

    def secrets(self) -> dict[str, SecretStr | None]:
        """The API token and the webhook URL token."""
        return {"api_token": self.api_token, "webhook_token": self.webhook_token}

    def confirms_payout_webhooks(self) -> bool:
        """Always: MOBILE-PAY signs nothing, so its webhooks are only ever hints."""
        return True

    def status_read_budget(self) -> ReadBudget:
        """The plan's share for the batched walks of the transaction list."""
        return ReadBudget(
            per_hour=self.status_reads_per_hour(), min_interval_s=self.status_read_interval_s
        )

    def poll_schedule_override(self) -> list[int]:
        """``poll_schedule_s``: every status read costs requests of the hourly plan."""
        return list(self.poll_schedule_s)

    def webhook_path(self) -> str:
        """``/<webhook_token>``: the token is what authenticates a delivery."""
        return f"/{self.webhook_token.get_secret_value()}"

    def sandbox_launch(self, webhook_url: str) -> SandboxLaunch:
        """The plan limit as an option, the API token (when used) in the environment."""
        return SandboxLaunch(
            args=[
                "--webhook-url",
                webhook_url,
                "--rate-limit-per-hour",
                str(self.rate_limit_per_hour),
            ],
            env=(
                {"MOBILEPAY_SANDBOX_API_TOKEN": self.api_token.get_secret_value()}
                if self.api_token
                else {}
            ),
        )
