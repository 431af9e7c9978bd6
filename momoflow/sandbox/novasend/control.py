"""Control API of the NovaSend simulator, under ``/_sandbox`` (not part of NovaSend).

The shared routes of :mod:`momoflow.sandbox.shared.control`; errors use NovaSend's
``{code, message, statusCode}`` shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from ..shared import SandboxControl, SettleOrder
from ..shared.control import validation_messages
from .config import PayinApiVersion
from .engine import NovaSendEngine
from .payloads import refund_body, transfer_body
from .transfers import FINAL_STATES, Refund, Transfer
from .wire import ns_error

__all__ = ["ConfigPatch", "NovaSendControl"]


class ConfigPatch(BaseModel):
    """Body of ``POST /_sandbox/config``: only the fields present are changed."""

    model_config = ConfigDict(extra="forbid")

    settle_delay: float | None = Field(default=None, ge=0)
    time_scale: float | None = Field(default=None, ge=0)
    rate_limit_per_minute: int | None = Field(default=None, ge=0)
    balance: int | None = Field(default=None, ge=0)
    balance_xaf: int | None = Field(default=None, ge=0)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_retry_schedule: list[float] | None = None
    payment_ttl: float | None = Field(default=None, ge=0)
    late_reversal_delay: float | None = Field(default=None, ge=0)
    refund_type: Literal["full", "partial"] | None = None
    payin_api_version: PayinApiVersion | None = None
    idempotency_key_only: bool | None = None


def _missing(what: str) -> Response:
    return ns_error(404, "not_found", text=f"{what} not found")


class NovaSendControl(SandboxControl[NovaSendEngine, Transfer | Refund]):
    """The shared ``/_sandbox`` routes with NovaSend's errors and settlement rules.

    A transaction is found by any of its references (see :meth:`NovaSendEngine.find`), and
    may be a refund.
    """

    config_patch = ConfigPatch

    def config_json(self) -> dict[str, Any]:
        engine = self.engine
        data = engine.config.model_dump(mode="json")
        data["api_client"] = "***"
        data["webhook_secret"] = "***"
        data["current_balance"] = engine.accounts["XOF"].balance
        data["current_balances"] = {c: a.balance for c, a in engine.accounts.items()}
        return data

    def invalid(self, exc: ValidationError | ValueError) -> Response:
        body = {"code": "validation_error", "message": validation_messages(exc), "statusCode": 400}
        return JSONResponse(body, status_code=400)

    def bad_status(self, text: str) -> Response:
        return ns_error(400, "validation_error", text=text)

    def already_final(self, tx: Transfer | Refund) -> Response:
        text = f"Transaction already final ({tx.state})"
        return ns_error(409, "transaction_is_already_processed", text=text)

    def fault_missing(self, fault_id: str) -> Response:
        return _missing(f"Fault {fault_id}")

    def ledger_missing(self, reference: str) -> Response:
        return _missing(f"Transfer for {reference}")

    def transaction_missing(self, transaction_id: str) -> Response:
        return _missing(f"Transaction {transaction_id}")

    def find(self, transaction_id: str) -> Transfer | Refund | None:
        return self.engine.find(transaction_id)

    def transaction_json(self, tx: Transfer | Refund) -> dict[str, Any]:
        if isinstance(tx, Transfer):
            body = transfer_body(tx, "en")
            body["scriptedOutcome"] = tx.outcome.model_dump()
            body["state"] = tx.state
            body["accountId"] = tx.account_id
            return body
        return refund_body(tx, "en")

    def final_statuses(self, tx: Transfer | Refund) -> tuple[str, ...]:
        return FINAL_STATES[tx.kind]

    def late_reversal(self, tx: Transfer | Refund, order: SettleOrder) -> bool:
        return (
            isinstance(tx, Transfer)
            and tx.kind == "payin"
            and order.late
            and order.status == "completed"
            and tx.state != "completed"
        )

    def settle(self, tx: Transfer | Refund, order: SettleOrder) -> dict[str, Any]:
        engine = self.engine
        if not isinstance(tx, Transfer):
            engine.finish_refund(tx, order.status, order.errorCode)
        elif order.status == "completed":
            engine.complete(tx)
        elif order.status == "failed":
            engine.fail(tx, order.errorCode or "transaction_error", order.errorMessage)
        elif order.status == "declined":
            engine.decline(tx, order.errorCode, order.errorMessage)
        else:
            engine.expire(tx)
        return self.transaction_json(tx)
