"""Control API of the CaurisFlux simulator, under ``/_sandbox`` (not part of CaurisFlux).

No authentication: it answers loopback clients only, unless the simulator was started with
``allow_remote_control``. Used by test fixtures, the local stack and benchmarks to reset
state, inject faults, read the ledger / webhook log / request log and force settlements.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from .caurisflux_catalog import PAYIN_FINAL, PAYOUT_FINAL
from .caurisflux_wire import nest_error
from .kit import LedgerEntry
from .kit.control import add_config_and_fault_routes, read_json

if TYPE_CHECKING:
    from .caurisflux_engine import CaurisFluxEngine

__all__ = ["control_router"]

PREFIX = "/_sandbox"


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


class SettleRequest(BaseModel):
    """Body of ``POST /_sandbox/transactions/{id}/settle``."""

    model_config = ConfigDict(extra="forbid")

    status: str
    errorCode: str | None = None
    errorMessage: str | None = None
    late: bool = False


def _ledger_json(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "transactionId": entry.transaction_id,
        "externalReference": entry.reference,
        "kind": entry.kind,
        "amount": entry.amount,
        "currency": entry.currency,
        "status": entry.status,
        "executions": entry.executions,
        "recipientPhone": entry.counterparty,
    }


def _invalid(exc: ValidationError | ValueError) -> Response:
    if isinstance(exc, ValidationError):
        messages = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return nest_error(400, messages)
    return nest_error(400, str(exc))


def control_router(engine: CaurisFluxEngine) -> APIRouter:
    """The ``/_sandbox`` routes bound to ``engine``."""

    def loopback_only(request: Request) -> None:
        if engine.config.allow_remote_control:
            return
        host = request.client.host if request.client else ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in ("localhost", "testclient")
        if not loopback:
            raise HTTPException(403, "Control API is loopback-only")

    router = APIRouter(prefix=PREFIX, dependencies=[Depends(loopback_only)])

    def config_json() -> dict[str, Any]:
        data = engine.config.model_dump(mode="json")
        data["secret_key"] = "***"
        data["webhook_secret"] = "***"
        data["current_balance"] = engine.account.balance
        return data

    add_config_and_fault_routes(
        router,
        engine,
        config_patch=ConfigPatch,
        config_json=config_json,
        invalid=_invalid,
        fault_not_found=lambda fault_id: nest_error(404, f"Fault {fault_id} introuvable"),
    )

    @router.get("/ledger")
    async def ledger() -> Response:
        return JSONResponse({"transfers": [_ledger_json(e) for e in engine.ledger.entries()]})

    @router.get("/ledger/{reference:path}")
    async def ledger_entry(reference: str) -> Response:
        entry = engine.ledger.get(reference)
        if entry is None:
            return nest_error(404, f"Aucun transfert pour {reference}")
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
            return nest_error(404, f"Transaction {transaction_id} introuvable")
        body = engine.status_body(tx)
        body["scriptedOutcome"] = tx.outcome.model_dump()
        return JSONResponse(body)

    @router.post("/transactions/{transaction_id}/settle")
    async def settle(transaction_id: str, request: Request) -> Response:
        tx = engine.transactions.get(transaction_id)
        if tx is None:
            return nest_error(404, f"Transaction {transaction_id} introuvable")
        try:
            order = SettleRequest.model_validate(await read_json(request))
        except (ValidationError, ValueError) as exc:
            return _invalid(exc)
        finals = PAYOUT_FINAL if tx.kind == "payout" else PAYIN_FINAL
        if order.status not in finals:
            return nest_error(400, f"status must be one of {', '.join(finals)} for a {tx.kind}")
        if tx.is_final:
            late_reversal = (
                tx.kind == "payin"
                and order.late
                and order.status == "success"
                and tx.status in ("failed", "cancelled", "expired")
            )
            if not late_reversal:
                return nest_error(409, f"Transaction déjà finalisée ({tx.status})")
        error_code = order.errorCode
        if order.status == "failed" and error_code is None:
            error_code = "provider_error"
        engine.finalize(tx, order.status, error_code, order.errorMessage)
        return JSONResponse(engine.status_body(tx))

    return router
