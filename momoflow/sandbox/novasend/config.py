"""Settings of the NovaSend simulator and the payin API versions it can follow."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .catalog import DEFAULT_OUTCOMES, ScriptedOutcome

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "PAYIN_API_VERSIONS",
    "NovaSendSandboxConfig",
    "PayinApiVersion",
]

#: The two documented versions of the payin session API (providers.md 2.3, 2.11.1):
#: ``v2`` is the newer page [DOC N4], ``seed004`` the older one [DOC N3, seed 004].
PayinApiVersion = Literal["v2", "seed004"]
PAYIN_API_VERSIONS: tuple[PayinApiVersion, ...] = ("v2", "seed004")

#: 1 min, 5 min, 30 min, 2 h, 6 h (providers.md 2.11.5), in simulated seconds.
DEFAULT_RETRY_SCHEDULE = (60.0, 300.0, 1800.0, 7200.0, 21600.0)


class NovaSendSandboxConfig(BaseModel):
    """Settings of one NovaSend simulator. Durations are simulated seconds (see
    ``time_scale``) except ``idempotency_ttl`` and ``rate_limit_window``, which are real."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_key: str = "nsk_test_momoflow"
    api_client: str = "nsc_test_momoflow"
    settle_delay: float = Field(default=2.0, ge=0)
    time_scale: float = Field(default=1.0, ge=0)
    webhook_url: str | None = None
    webhook_secret: str = "nswh_momoflow_sandbox"
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout: float = Field(default=5.0, gt=0)
    rate_limit_per_minute: int = Field(default=0, ge=0)
    rate_limit_window: float = Field(default=60.0, gt=0)
    balance: int = Field(default=100_000_000, ge=0, description="XOF wallet at start")
    balance_xaf: int = Field(default=100_000_000, ge=0, description="XAF wallet at start")
    payment_ttl: float = Field(default=1800.0, ge=0)
    late_reversal_delay: float | None = Field(default=None, ge=0)
    refund_type: Literal["full", "partial"] = "full"
    #: Which documented payin session API new wallet sessions follow (2.11.1).
    payin_api_version: PayinApiVersion = "v2"
    idempotency_ttl: float = Field(default=86_400.0, ge=0)
    outcomes: dict[str, ScriptedOutcome] = Field(default_factory=lambda: dict(DEFAULT_OUTCOMES))
    #: Only ``X-Idempotency-Key`` protects against a second transfer: a used merchant
    #: ``reference`` (or refund ``externalReference``) under a new key executes again
    #: instead of answering 409 ``transaction_is_already_processed``. Tests use it to see a
    #: client whose key changes between retries, which that check would otherwise hide.
    idempotency_key_only: bool = False
    allow_remote_control: bool = False
    seed: int | None = None

    @property
    def effective_late_reversal_delay(self) -> float:
        """``late_reversal_delay``, or 10 × ``settle_delay`` when unset."""
        if self.late_reversal_delay is not None:
            return self.late_reversal_delay
        return 10 * self.settle_delay
