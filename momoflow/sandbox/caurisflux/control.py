"""Control API of the CaurisFlux simulator, under ``/_sandbox`` (not part of CaurisFlux):
the shared routes of :mod:`momoflow.sandbox.shared.control` with CaurisFlux's error bodies.

Used by test fixtures, the local stack and benchmarks to reset state, inject faults, read
the ledger / webhook log / request log and force settlements.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from ..shared import SandboxControl, SettleOrder
from ..shared.control import validation_messages
from .catalog import PAYIN_FINAL, PAYOUT_FINAL
from .engine import CaurisFluxEngine, Transaction
from .wire import nest_error

__all__ = ["CaurisFluxControl", "ConfigPatch"]


class ConfigPatch(BaseModel):
    """Body of ``POST /_sandbox/config``: only the fields present are changed."""

    model_config = ConfigDict(extra="forbid")

    settle_delay: float | None = Field(default=None, ge=0)
    time_scale: float | None = Field(default=None, ge=0)
    rate_limit_per_minute: int | None = Field(default=None, ge=0)
    balance: int | None = Field(default=None, ge=0)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_retry_schedule: list[float] | None = None
    quote_ttl: float | None = Field(default=None, ge=0)
    payment_ttl: float | None = Field(default=None, ge=0)
    idempotency_key_only: bool | None = None


class CaurisFluxControl(SandboxControl[CaurisFluxEngine, Transaction]):
    """The shared ``/_sandbox`` routes with CaurisFlux's errors and settlement rules."""

    config_patch = ConfigPatch

    def config_json(self) -> dict[str, Any]:
        data = self.engine.config.model_dump(mode="json")
        data["secret_key"] = "***"
        data["webhook_secret"] = "***"
        data["current_balance"] = self.engine.account.balance
        return data

    def invalid(self, exc: ValidationError | ValueError) -> Response:
        # A list for a failed validation, a sentence for a body that is not JSON.
        if isinstance(exc, ValidationError):
            return nest_error(400, validation_messages(exc))
        return nest_error(400, str(exc))

    def bad_status(self, text: str) -> Response:
        return nest_error(400, text)

    def already_final(self, tx: Transaction) -> Response:
        return nest_error(409, f"Transaction déjà finalisée ({tx.status})")

    def fault_missing(self, fault_id: str) -> Response:
        return nest_error(404, f"Fault {fault_id} introuvable")

    def ledger_missing(self, reference: str) -> Response:
        return nest_error(404, f"Aucun transfert pour {reference}")

    def transaction_missing(self, transaction_id: str) -> Response:
        return nest_error(404, f"Transaction {transaction_id} introuvable")

    def find(self, transaction_id: str) -> Transaction | None:
        return self.engine.transactions.get(transaction_id)

    def transaction_json(self, tx: Transaction) -> dict[str, Any]:
        body = self.engine.status_body(tx)
        body["scriptedOutcome"] = tx.outcome.model_dump()
        return body

    def final_statuses(self, tx: Transaction) -> tuple[str, ...]:
        return PAYOUT_FINAL if tx.kind == "payout" else PAYIN_FINAL

    def late_reversal(self, tx: Transaction, order: SettleOrder) -> bool:
        return (
            tx.kind == "payin"
            and order.late
            and order.status == "success"
            and tx.status in ("failed", "cancelled", "expired")
        )

    def settle(self, tx: Transaction, order: SettleOrder) -> dict[str, Any]:
        error_code = order.errorCode
        if order.status == "failed" and error_code is None:
            error_code = "provider_error"
        self.engine.finalize(tx, order.status, error_code, order.errorMessage)
        return self.engine.status_body(tx)
