"""What a workflow hands the record store at a state change (the ``record_transaction``
activity's argument), and the kinds of transaction the store holds."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from momoflow.models import PayinState, PayoutState, RefundState, TransactionStatus

__all__ = ["HistoryEntry", "Kind", "RecordClaim", "RecordWrite", "STATE_TYPES"]


class Kind(StrEnum):
    """The kinds of transaction the store holds."""

    PAYOUT = "payout"
    PAYIN = "payin"
    REFUND = "refund"


#: The state model each kind's ``state`` column holds.
STATE_TYPES: dict[Kind, type[PayoutState] | type[PayinState] | type[RefundState]] = {
    Kind.PAYOUT: PayoutState,
    Kind.PAYIN: PayinState,
    Kind.REFUND: RefundState,
}


class HistoryEntry(BaseModel):
    """One timeline entry with its number in the transaction's whole life (the state's own
    timeline keeps only the last ones)."""

    index: int = Field(ge=0)
    at: datetime
    status: TransactionStatus
    note: str = ""


class RecordWrite(BaseModel):
    """One write of a transaction's record: its state after change number ``seq``, and the
    timeline entries since the last write that was acknowledged."""

    kind: Kind
    seq: int = Field(ge=1)
    fingerprint: str
    campaign: str | None = None
    #: The state, as ``GET`` answers it (``model_dump(mode="json")``).
    state: dict[str, Any]
    entries: list[HistoryEntry] = Field(default_factory=list)
    #: The workflow run writing (None in histories from before it was sent).
    run_id: str | None = None


class RecordClaim(BaseModel):
    """A workflow that no start path claimed (a campaign's line) claims its reference
    before it calls the provider: the claim is its own when the record is new, or was made
    by the same run (a retried claim)."""

    kind: Kind
    run_id: str
    fingerprint: str
    campaign: str | None = None
    state: dict[str, Any]
