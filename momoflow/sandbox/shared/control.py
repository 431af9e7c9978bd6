"""The ``/_sandbox`` control API every simulator serves.

The routes, bodies and semantics are the same in every sandbox (see
``docs/sandbox-caurisflux.md``), so that one test helper drives them all. No
authentication: loopback clients only, unless the simulator was started with
``allow_remote_control``. :class:`SandboxControl` serves the routes; a simulator subclasses
it with its configuration patch, error bodies, transaction lookup and settlement rules.
"""

from __future__ import annotations

import ipaddress
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .app import SandboxEngine
from .faults import FaultSpec
from .ledger import LedgerEntry

__all__ = [
    "PREFIX",
    "SandboxControl",
    "Settleable",
    "SettleOrder",
    "loopback_only",
    "read_json",
    "validation_messages",
]

#: Where the control API is mounted.
PREFIX = "/_sandbox"


def loopback_only(allow_remote: Callable[[], bool]) -> Callable[[Request], None]:
    """A dependency raising 403 for clients outside 127.0.0.0/8 and ::1.

    ``allow_remote`` is read on every call, so the setting can change at runtime.
    """

    def dependency(request: Request) -> None:
        if allow_remote():
            return
        host = request.client.host if request.client else ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in ("localhost", "testclient")
        if not loopback:
            raise HTTPException(403, "Control API is loopback-only")

    return dependency


class SettleOrder(BaseModel):
    """Body of ``POST /_sandbox/transactions/{id}/settle``: a final status to force now.

    ``late`` allows the one transition out of a final status: a failed payin that turns
    successful (late reversal).
    """

    model_config = ConfigDict(extra="forbid")

    status: str
    errorCode: str | None = None
    errorMessage: str | None = None
    late: bool = False


async def read_json(request: Request) -> Any:
    """The JSON body of ``request`` (``{}`` when empty); ValueError when not JSON."""
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def validation_messages(exc: ValidationError | ValueError) -> list[str]:
    """One ``"field: problem"`` line per pydantic error (or the ValueError's text)."""
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return [str(exc)]


class Settleable(Protocol):
    """What the settle route reads from a transaction."""

    @property
    def kind(self) -> str:
        """``payout``, ``payin``, ``refund``…: names the kind in error messages."""
        ...

    @property
    def is_final(self) -> bool:
        """Whether the transaction already has a final status."""
        ...


EngineT = TypeVar("EngineT", bound=SandboxEngine)
TxT = TypeVar("TxT", bound=Settleable)


class SandboxControl(ABC, Generic[EngineT, TxT]):
    """The ``/_sandbox`` routes bound to one engine; :meth:`router` builds them.

    - ``POST /reset``; ``GET|POST /config``; ``GET|POST|DELETE /faults``,
      ``DELETE /faults/{id}``;
    - ``GET /ledger``, ``GET /ledger/{reference}``, ``GET /webhooks``, ``GET /requests``;
    - ``GET /transactions/{id}``, ``POST /transactions/{id}/settle``.

    A subclass supplies what differs between simulators: ``config_patch``,
    :meth:`config_json`, the error bodies, :meth:`find`, :meth:`transaction_json` and the
    settlement rules (:meth:`final_statuses`, :meth:`late_reversal`, :meth:`settle`).
    """

    #: Body of ``POST /config``: only the fields present are changed.
    config_patch: ClassVar[type[BaseModel]]
    #: Body of ``POST /transactions/{id}/settle``.
    settle_order: ClassVar[type[SettleOrder]] = SettleOrder

    def __init__(self, engine: EngineT) -> None:
        self.engine = engine

    # -- what each simulator supplies ---------------------------------------------------------

    @abstractmethod
    def config_json(self) -> dict[str, Any]:
        """The current configuration, secrets masked, as ``GET /config`` answers it."""

    @abstractmethod
    def invalid(self, exc: ValidationError | ValueError) -> Response:
        """400 for a control body that is not JSON or fails validation."""

    @abstractmethod
    def bad_status(self, text: str) -> Response:
        """400 for a settle status the transaction's kind does not have."""

    @abstractmethod
    def already_final(self, tx: TxT) -> Response:
        """409 for settling a transaction that is already final."""

    @abstractmethod
    def fault_missing(self, fault_id: str) -> Response:
        """404 of ``DELETE /faults/{id}``."""

    @abstractmethod
    def ledger_missing(self, reference: str) -> Response:
        """404 of ``GET /ledger/{reference}``."""

    @abstractmethod
    def transaction_missing(self, transaction_id: str) -> Response:
        """404 of the ``/transactions/{id}`` routes."""

    @abstractmethod
    def find(self, transaction_id: str) -> TxT | None:
        """The transaction the control routes name ``transaction_id``."""

    @abstractmethod
    def transaction_json(self, tx: TxT) -> dict[str, Any]:
        """The body of ``GET /transactions/{id}``."""

    @abstractmethod
    def final_statuses(self, tx: TxT) -> tuple[str, ...]:
        """The statuses ``settle`` may force on ``tx``."""

    @abstractmethod
    def late_reversal(self, tx: TxT, order: SettleOrder) -> bool:
        """Whether ``order`` is the one allowed move out of a final status (a late
        reversal of a failed payin)."""

    @abstractmethod
    def settle(self, tx: TxT, order: SettleOrder) -> dict[str, Any]:
        """Force the checked ``order`` on ``tx``; the body of the 200."""

    def ledger_json(self, entry: LedgerEntry) -> dict[str, Any]:
        """One ledger entry as ``GET /ledger`` lists it."""
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

    # -- routes -------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        """The ``/_sandbox`` router; a subclass may add routes to it."""
        engine = self.engine
        guard = loopback_only(lambda: engine.config.allow_remote_control)
        router = APIRouter(prefix=PREFIX, dependencies=[Depends(guard)])

        @router.post("/reset")
        async def reset() -> Response:
            await engine.reset()
            return JSONResponse({"ok": True})

        @router.get("/config")
        async def get_config() -> Response:
            return JSONResponse(self.config_json())

        @router.post("/config")
        async def set_config(request: Request) -> Response:
            try:
                patch = self.config_patch.model_validate(await read_json(request))
                engine.apply_config(patch.model_dump(include=patch.model_fields_set))
            except (ValidationError, ValueError) as exc:
                return self.invalid(exc)
            return JSONResponse(self.config_json())

        @router.get("/faults")
        async def list_faults() -> Response:
            return JSONResponse({"faults": [f.to_dict() for f in engine.faults.active()]})

        @router.post("/faults")
        async def add_fault(request: Request) -> Response:
            try:
                fault = engine.faults.add(FaultSpec.model_validate(await read_json(request)))
            except (ValidationError, ValueError) as exc:
                return self.invalid(exc)
            return JSONResponse(fault.to_dict(), status_code=201)

        @router.delete("/faults")
        async def clear_faults() -> Response:
            count = len(engine.faults.active())
            engine.faults.clear()
            return JSONResponse({"cleared": count})

        @router.delete("/faults/{fault_id}")
        async def delete_fault(fault_id: str) -> Response:
            if not engine.faults.remove(fault_id):
                return self.fault_missing(fault_id)
            return JSONResponse({"cleared": 1})

        @router.get("/ledger")
        async def ledger() -> Response:
            entries = engine.ledger.entries()
            return JSONResponse({"transfers": [self.ledger_json(e) for e in entries]})

        @router.get("/ledger/{reference:path}")
        async def ledger_entry(reference: str) -> Response:
            entry = engine.ledger.get(reference)
            if entry is None:
                return self.ledger_missing(reference)
            return JSONResponse(self.ledger_json(entry))

        @router.get("/webhooks")
        async def webhooks() -> Response:
            deliveries = engine.webhooks.deliveries()
            return JSONResponse({"deliveries": [d.to_dict() for d in deliveries]})

        @router.get("/requests")
        async def requests() -> Response:
            return JSONResponse({"requests": [r.to_dict() for r in engine.requests.records()]})

        @router.get("/transactions/{transaction_id}")
        async def transaction(transaction_id: str) -> Response:
            tx = self.find(transaction_id)
            if tx is None:
                return self.transaction_missing(transaction_id)
            return JSONResponse(self.transaction_json(tx))

        @router.post("/transactions/{transaction_id}/settle")
        async def settle(transaction_id: str, request: Request) -> Response:
            tx = self.find(transaction_id)
            if tx is None:
                return self.transaction_missing(transaction_id)
            try:
                order = self.settle_order.model_validate(await read_json(request))
            except (ValidationError, ValueError) as exc:
                return self.invalid(exc)
            finals = self.final_statuses(tx)
            if order.status not in finals:
                return self.bad_status(f"status must be one of {', '.join(finals)} for a {tx.kind}")
            if tx.is_final and not self.late_reversal(tx, order):
                return self.already_final(tx)
            return JSONResponse(self.settle(tx, order))

        return router
