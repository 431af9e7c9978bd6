"""Control API of the NovaSend simulator, under ``/_sandbox`` (not part of NovaSend).

Same routes, bodies and semantics as the CaurisFlux sandbox's control API (see
``docs/sandbox-caurisflux.md``), so that one test helper drives every sandbox. No
authentication: loopback clients only, unless started with ``allow_remote_control``.
Errors use NovaSend's ``{code, message, statusCode}`` shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

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
from .novasend_bodies import refund_body, transfer_body
from .novasend_model import FINAL_STATES, PayinApiVersion, Refund, Transfer
from .novasend_wire import ns_error

if TYPE_CHECKING:
    from .novasend_engine import NovaSendEngine

__all__ = ["control_router"]

PREFIX = "/_sandbox"


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
    body = {"code": "validation_error", "message": validation_messages(exc), "statusCode": 400}
    return JSONResponse(body, status_code=400)


def _missing(what: str) -> Response:
    return ns_error(404, "not_found", text=f"{what} not found")


def control_router(engine: NovaSendEngine) -> APIRouter:
    """The ``/_sandbox`` routes bound to ``engine``."""
    guard = loopback_only(lambda: engine.config.allow_remote_control)
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(guard)])

    def config_json() -> dict[str, Any]:
        data = engine.config.model_dump(mode="json")
        data["api_client"] = "***"
        data["webhook_secret"] = "***"
        data["current_balance"] = engine.accounts["XOF"].balance
        data["current_balances"] = {c: a.balance for c, a in engine.accounts.items()}
        return data

    def state_json(found: Transfer | Refund) -> dict[str, Any]:
        if isinstance(found, Transfer):
            body = transfer_body(found, "en")
            body["scriptedOutcome"] = found.outcome.model_dump()
            body["state"] = found.state
            body["accountId"] = found.account_id
            return body
        return refund_body(found, "en")

    add_config_and_fault_routes(
        router,
        engine,
        config_patch=ConfigPatch,
        config_json=config_json,
        invalid=_invalid,
        fault_not_found=lambda fault_id: _missing(f"Fault {fault_id}"),
    )

    @router.get("/ledger")
    async def ledger() -> Response:
        return JSONResponse({"transfers": [_ledger_json(e) for e in engine.ledger.entries()]})

    @router.get("/ledger/{reference:path}")
    async def ledger_entry(reference: str) -> Response:
        entry = engine.ledger.get(reference)
        if entry is None:
            return _missing(f"Transfer for {reference}")
        return JSONResponse(_ledger_json(entry))

    @router.get("/webhooks")
    async def webhooks() -> Response:
        return JSONResponse({"deliveries": [d.to_dict() for d in engine.webhooks.deliveries()]})

    @router.get("/requests")
    async def requests() -> Response:
        return JSONResponse({"requests": [r.to_dict() for r in engine.requests.records()]})

    @router.get("/transactions/{transaction_id}")
    async def transaction(transaction_id: str) -> Response:
        found = engine.find(transaction_id)
        if found is None:
            return _missing(f"Transaction {transaction_id}")
        return JSONResponse(state_json(found))

    @router.post("/transactions/{transaction_id}/settle")
    async def settle(transaction_id: str, request: Request) -> Response:
        found = engine.find(transaction_id)
        if found is None:
            return _missing(f"Transaction {transaction_id}")
        try:
            order = SettleOrder.model_validate(await read_json(request))
        except (ValidationError, ValueError) as exc:
            return _invalid(exc)
        finals = FINAL_STATES[found.kind]
        if order.status not in finals:
            text = f"status must be one of {', '.join(finals)} for a {found.kind}"
            return ns_error(400, "validation_error", text=text)
        if found.is_final:
            late_reversal = (
                isinstance(found, Transfer)
                and found.kind == "payin"
                and order.late
                and order.status == "completed"
                and found.state != "completed"
            )
            if not late_reversal:
                text = f"Transaction already final ({found.state})"
                return ns_error(409, "transaction_is_already_processed", text=text)
        if not isinstance(found, Transfer):
            engine.finish_refund(found, order.status, order.errorCode)
            return JSONResponse(state_json(found))
        if order.status == "completed":
            engine.complete(found)
        elif order.status == "failed":
            engine.fail(found, order.errorCode or "transaction_error", order.errorMessage)
        elif order.status == "declined":
            engine.decline(found, order.errorCode, order.errorMessage)
        else:
            engine.expire(found)
        return JSONResponse(state_json(found))

    return router
