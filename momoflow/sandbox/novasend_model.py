"""Configuration and records of the NovaSend simulator: the settings, the transfers
(payins and payouts with their three status layers) and refunds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .kit import Delivery
from .novasend_catalog import DEFAULT_OUTCOMES, ScriptedOutcome

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "FINAL_STATES",
    "OPERATIONS",
    "PAYIN_API_VERSIONS",
    "NovaSendSandboxConfig",
    "PayinApiVersion",
    "Refund",
    "Transfer",
]

#: The two documented versions of the payin session API (providers.md 2.3, 2.11.1):
#: ``v2`` is the newer page [DOC N4], ``seed004`` the older one [DOC N3, seed 004].
PayinApiVersion = Literal["v2", "seed004"]
PAYIN_API_VERSIONS: tuple[PayinApiVersion, ...] = ("v2", "seed004")

#: Operation names for fault injection and the request log.
OPERATIONS = (
    "payin.sessions",
    "payin.direct",
    "payout.wallet",
    "payout.direct",
    "payin.status",
    "payout.status",
    "refund",
    "balance",
)

#: 1 min, 5 min, 30 min, 2 h, 6 h (providers.md 2.11.5), in simulated seconds.
DEFAULT_RETRY_SCHEDULE = (60.0, 300.0, 1800.0, 7200.0, 21600.0)

#: Final states per kind, the vocabulary of the ledger and of the control API's settle.
FINAL_STATES: dict[str, tuple[str, ...]] = {
    "payin": ("completed", "failed", "declined", "expired"),
    "payout": ("completed", "failed"),
    "refund": ("completed", "failed"),
}


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


@dataclass
class Transfer:
    """A payin (wallet session or direct push) or a payout, with its three status layers."""

    id: str
    kind: Literal["payin", "payout"]
    direct: bool
    reference: str
    amount: int
    fee: int
    currency: str
    country: str
    provider: str | None
    msisdn: str
    customer_name: str | None
    outcome: ScriptedOutcome
    created_at: float
    #: A wallet session of the older payin API (seed 004): its bodies have no ``id``, put
    #: ``system_reference`` in ``reference`` and ours in ``customerReference``, and its
    #: status is read by ``system_reference`` only.
    older: bool = False
    system_reference: str | None = None
    account_id: str | None = None
    payment_url: str | None = None
    link_code: str | None = None
    expires_at: float | None = None
    status: str = "processing"
    confirmation_status: str = "none"
    settlement: str | None = None
    tx_reference: str | None = None
    processed_at: float | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    state: str = "processing"
    refund: Refund | None = None
    held_webhooks: list[Delivery] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        """Whether the engine state is final for this kind."""
        return self.state in FINAL_STATES[self.kind]

    @property
    def charged_amount(self) -> int:
        """``amount + fee``."""
        return self.amount + self.fee


@dataclass
class Refund:
    """A full refund of a successful payin [DOC N8]."""

    id: str
    payin: Transfer
    ledger_key: str
    reason: str | None
    amount: int
    fee: int
    currency: str
    refund_type: str
    created_at: float
    state: str = "processing"
    tx_reference: str | None = None
    processed_at: float | None = None
    failure_code: str | None = None

    kind: Literal["refund"] = "refund"

    @property
    def is_final(self) -> bool:
        """Whether the refund is completed or failed."""
        return self.state in FINAL_STATES["refund"]
