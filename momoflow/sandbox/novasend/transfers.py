"""Records of the NovaSend simulator: transfers (payins and payouts with their three status
layers) and refunds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..shared import Delivery
from .catalog import ScriptedOutcome

__all__ = ["FINAL_STATES", "Refund", "Transfer"]

#: Final states per kind, the vocabulary of the ledger and of the control API's settle.
FINAL_STATES: dict[str, tuple[str, ...]] = {
    "payin": ("completed", "failed", "declined", "expired"),
    "payout": ("completed", "failed"),
    "refund": ("completed", "failed"),
}


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
