"""Control API of the MOBILE-PAY simulator, under ``/_sandbox`` (not part of MOBILE-PAY).

Same routes, JSON shapes and semantics as the CaurisFlux control API, so that one test
helper drives every sandbox; errors use the MOBILE-PAY error body. One addition:
``POST /_sandbox/payments/{id}/pay``, the customer scanning and paying a QR code.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from .kit import LedgerEntry
from .kit.control import (
    SettleOrder,
    add_config_and_fault_routes,
    loopback_only,
    read_json,
    validation_messages,
)
from .mobilepay_catalog import PAYMENT_FINAL, TRANSFER_FINAL
from .mobilepay_wire import mp_error

if TYPE_CHECKING:
    from .mobilepay_engine import MobilePayEngine, Transaction

__all__ = ["DEFAULT_PAYER", "control_router"]

PREFIX = "/_sandbox"
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


def _ledger_json(entry: LedgerEntry) -> dict[str, Any]:
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


def _invalid(exc: ValidationError | ValueError) -> Response:
    return mp_error(400, "VALIDATION_ERROR", "; ".join(validation_messages(exc)))


def control_router(engine: MobilePayEngine) -> APIRouter:
    """The ``/_sandbox`` routes bound to ``engine``."""

    remote = loopback_only(lambda: engine.config.allow_remote_control)
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(remote)])

    def config_json() -> dict[str, Any]:
        data = engine.config.model_dump(mode="json")
        for secret in ("api_token", "login_password", "webhook_secret"):
            data[secret] = "***"
        data["current_balance"] = engine.account.balance
        return data

    def transaction_json(tx: Transaction) -> dict[str, Any]:
        body = engine.list_item(tx)
        body["ledgerKey"] = tx.ledger_key
        body["scriptedOutcome"] = tx.outcome.model_dump() if tx.outcome else None
        return body

    def missing(transaction_id: str) -> Response:
        return mp_error(404, "NOT_FOUND", f"Transaction {transaction_id} introuvable")

    add_config_and_fault_routes(
        router,
        engine,
        config_patch=ConfigPatch,
        config_json=config_json,
        invalid=_invalid,
        fault_not_found=lambda fault_id: mp_error(
            404, "NOT_FOUND", f"Fault {fault_id} introuvable"
        ),
    )

    @router.get("/ledger")
    async def ledger() -> Response:
        return JSONResponse({"transfers": [_ledger_json(e) for e in engine.ledger.entries()]})

    @router.get("/ledger/{key:path}")
    async def ledger_entry(key: str) -> Response:
        entry = engine.ledger.get(key)
        if entry is None:
            return mp_error(404, "NOT_FOUND", f"Aucun transfert pour {key}")
        return JSONResponse(_ledger_json(entry))

    @router.get("/webhooks")
    async def webhooks() -> Response:
        return JSONResponse({"deliveries": [d.to_dict() for d in engine.webhooks.deliveries()]})

    @router.get("/requests")
    async def requests() -> Response:
        return JSONResponse({"requests": [r.to_dict() for r in engine.requests.records()]})

    @router.get("/transactions/{transaction_id}")
    async def transaction(transaction_id: str) -> Response:
        tx = engine.transactions.get(transaction_id)
        if tx is None:
            return missing(transaction_id)
        return JSONResponse(transaction_json(tx))

    @router.post("/transactions/{transaction_id}/settle")
    async def settle(transaction_id: str, request: Request) -> Response:
        tx = engine.transactions.get(transaction_id)
        if tx is None:
            return missing(transaction_id)
        try:
            order = SettleRequest.model_validate(await read_json(request))
        except (ValidationError, ValueError) as exc:
            return _invalid(exc)
        finals = TRANSFER_FINAL if tx.kind == "transfer" else PAYMENT_FINAL
        if order.status not in finals:
            message = f"status must be one of {', '.join(finals)} for a {tx.kind}"
            return mp_error(400, "VALIDATION_ERROR", message)
        if tx.is_final:
            late_reversal = (
                tx.kind == "payment"
                and order.late
                and order.status == "received"
                and tx.status in ("failed", "expired")
            )
            if not late_reversal:
                return mp_error(409, "CONFLICT", f"Transaction déjà finalisée ({tx.status})")
        payer = (order.payer or DEFAULT_PAYER) if order.status == "received" else None
        engine.finalize(tx, order.status, order.errorCode, order.errorMessage, payer=payer)
        return JSONResponse(transaction_json(tx))

    @router.post("/payments/{payment_id}/pay")
    async def pay(payment_id: str, request: Request) -> Response:
        tx = engine.transactions.get(payment_id)
        if tx is None or tx.kind != "payment":
            return mp_error(404, "NOT_FOUND", f"Paiement {payment_id} introuvable")
        try:
            order = PayRequest.model_validate(await read_json(request))
        except (ValidationError, ValueError) as exc:
            return _invalid(exc)
        if not _E164.match(order.payer):
            return mp_error(400, "VALIDATION_ERROR", "payer doit être un numéro E.164")
        expires_ms = tx.expires_ms or 0
        if tx.status == "pending" and engine.clock.now() * 1000 >= expires_ms:
            engine.finalize(tx, "expired")  # its expiry task has not run yet
        if tx.status != "pending":
            return mp_error(409, "CONFLICT", f"Paiement déjà finalisé ({tx.status})")
        engine.finalize(tx, "received", payer=order.payer)
        return JSONResponse(transaction_json(tx))

    return router
