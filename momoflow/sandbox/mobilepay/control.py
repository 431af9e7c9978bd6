"""Control API of the MOBILE-PAY simulator, under ``/_sandbox`` (not part of MOBILE-PAY).

The shared routes of :mod:`momoflow.sandbox.shared.control`; errors use the MOBILE-PAY error
body. One addition: ``POST /_sandbox/payments/{id}/pay``, the customer scanning and paying
a QR code.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from ..shared import LedgerEntry, SandboxControl, SettleOrder
from ..shared.control import read_json, validation_messages
from .catalog import PAYMENT_FINAL, TRANSFER_FINAL
from .engine import MobilePayEngine, Transaction
from .wire import mp_error

__all__ = ["DEFAULT_PAYER", "ConfigPatch", "MobilePayControl"]

#: Payer of a QR payment forced to ``received`` without one (simulator-defined).
DEFAULT_PAYER = "+2250102030405"
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class ConfigPatch(BaseModel):
    """Body of ``POST /_sandbox/config``: only the fields present are changed."""

    model_config = ConfigDict(extra="forbid")

    settle_delay: float | None = Field(default=None, ge=0)
    time_scale: float | None = Field(default=None, ge=0)
    rate_limit_per_hour: int | None = Field(default=None, ge=0)
    balance: int | None = Field(default=None, ge=0)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    sign_webhooks: bool | None = None
    webhook_retry_schedule: list[float] | None = None
    payment_ttl: float | None = Field(default=None, ge=0)
    session_ttl: float | None = Field(default=None, ge=0)
    fcfa_currency: bool | None = None
    honour_idempotency_key: bool | None = None
    list_lag: float | None = Field(default=None, ge=0)
    #: null clears the limit (descriptions kept whole).
    description_max_chars: int | None = Field(default=None, ge=1)
    echo_metadata: bool | None = None


class SettleRequest(SettleOrder):
    """The shared settle body plus ``payer``, used when forcing a QR payment ``received``."""

    payer: str | None = None


class PayRequest(BaseModel):
    """Body of ``POST /_sandbox/payments/{id}/pay``."""

    model_config = ConfigDict(extra="forbid")

    payer: str


def _not_found(message: str) -> Response:
    return mp_error(404, "NOT_FOUND", message)


class MobilePayControl(SandboxControl[MobilePayEngine, Transaction]):
    """The shared ``/_sandbox`` routes with MOBILE-PAY's errors and settlement rules, a
    ledger entry that lists every transfer of its key, and ``POST /payments/{id}/pay``."""

    config_patch = ConfigPatch
    settle_order = SettleRequest

    def config_json(self) -> dict[str, Any]:
        data = self.engine.config.model_dump(mode="json")
        for secret in ("api_token", "login_password", "webhook_secret"):
            data[secret] = "***"
        data["current_balance"] = self.engine.account.balance
        return data

    def invalid(self, exc: ValidationError | ValueError) -> Response:
        return mp_error(400, "VALIDATION_ERROR", "; ".join(validation_messages(exc)))

    def bad_status(self, text: str) -> Response:
        return mp_error(400, "VALIDATION_ERROR", text)

    def already_final(self, tx: Transaction) -> Response:
        return mp_error(409, "CONFLICT", f"Transaction déjà finalisée ({tx.status})")

    def fault_missing(self, fault_id: str) -> Response:
        return _not_found(f"Fault {fault_id} introuvable")

    def ledger_missing(self, reference: str) -> Response:
        return _not_found(f"Aucun transfert pour {reference}")

    def transaction_missing(self, transaction_id: str) -> Response:
        return _not_found(f"Transaction {transaction_id} introuvable")

    def ledger_json(self, entry: LedgerEntry) -> dict[str, Any]:
        return {
            "key": entry.reference,
            "externalReference": entry.reference,
            "transactionId": entry.transaction_id,
            "transfers": list(entry.transaction_ids),
            "kind": entry.kind,
            "amount": entry.amount,
            "currency": entry.currency,
            "status": entry.status,
            "executions": entry.executions,
            "recipientPhone": entry.counterparty,
        }

    def find(self, transaction_id: str) -> Transaction | None:
        return self.engine.transactions.get(transaction_id)

    def transaction_json(self, tx: Transaction) -> dict[str, Any]:
        body = self.engine.list_item(tx)
        body["ledgerKey"] = tx.ledger_key
        body["scriptedOutcome"] = tx.outcome.model_dump() if tx.outcome else None
        return body

    def final_statuses(self, tx: Transaction) -> tuple[str, ...]:
        return TRANSFER_FINAL if tx.kind == "transfer" else PAYMENT_FINAL

    def late_reversal(self, tx: Transaction, order: SettleOrder) -> bool:
        return (
            tx.kind == "payment"
            and order.late
            and order.status == "received"
            and tx.status in ("failed", "expired")
        )

    def settle(self, tx: Transaction, order: SettleOrder) -> dict[str, Any]:
        assert isinstance(order, SettleRequest)
        payer = (order.payer or DEFAULT_PAYER) if order.status == "received" else None
        self.engine.finalize(tx, order.status, order.errorCode, order.errorMessage, payer=payer)
        return self.transaction_json(tx)

    def router(self) -> APIRouter:
        """The shared routes plus ``POST /payments/{id}/pay``: the customer scans and pays."""
        router = super().router()
        engine = self.engine

        @router.post("/payments/{payment_id}/pay")
        async def pay(payment_id: str, request: Request) -> Response:
            tx = engine.transactions.get(payment_id)
            if tx is None or tx.kind != "payment":
                return _not_found(f"Paiement {payment_id} introuvable")
            try:
                order = PayRequest.model_validate(await read_json(request))
            except (ValidationError, ValueError) as exc:
                return self.invalid(exc)
            if not _E164.match(order.payer):
                return mp_error(400, "VALIDATION_ERROR", "payer doit être un numéro E.164")
            expires_ms = tx.expires_ms or 0
            if tx.status == "pending" and engine.clock.now() * 1000 >= expires_ms:
                engine.finalize(tx, "expired")  # its expiry task has not run yet
            if tx.status != "pending":
                return mp_error(409, "CONFLICT", f"Paiement déjà finalisé ({tx.status})")
            engine.finalize(tx, "received", payer=order.payer)
            return JSONResponse(self.transaction_json(tx))

        return router
