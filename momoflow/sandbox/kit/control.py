"""Pieces of the ``/_sandbox`` control contract that every simulator shares.

The control API has the same routes, bodies and semantics in every sandbox (see
``docs/sandbox-caurisflux.md``), so that one test helper drives them all:

- :func:`loopback_only`: a FastAPI dependency refusing non-loopback clients with 403;
- :class:`SettleOrder`: the body of ``POST /_sandbox/transactions/{id}/settle``;
- :func:`read_json`, :func:`validation_messages`: request reading and 400 messages;
- :func:`add_config_and_fault_routes`: ``/reset``, ``/config`` and ``/faults``, the same in
  every sandbox but for the provider's own error bodies.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .faults import FaultRegistry, FaultSpec

__all__ = [
    "ControlledEngine",
    "SettleOrder",
    "add_config_and_fault_routes",
    "loopback_only",
    "read_json",
    "validation_messages",
]


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


class ControlledEngine(Protocol):
    """What the shared control routes need from a simulator's engine."""

    faults: FaultRegistry

    async def reset(self) -> None:
        """Forget every transaction, fault and counter; restore the startup config."""
        ...

    def apply_config(self, changes: dict[str, Any]) -> None:
        """Change configuration values at runtime (raise ValueError for a bad one)."""
        ...


def add_config_and_fault_routes(
    router: APIRouter,
    engine: ControlledEngine,
    *,
    config_patch: type[BaseModel],
    config_json: Callable[[], dict[str, Any]],
    invalid: Callable[[ValidationError | ValueError], Response],
    fault_not_found: Callable[[str], Response],
) -> None:
    """Add ``POST /reset``, ``GET|POST /config``, ``GET|POST|DELETE /faults`` and
    ``DELETE /faults/{id}`` to ``router``; errors use the provider's own bodies."""

    @router.post("/reset")
    async def reset() -> Response:
        await engine.reset()
        return JSONResponse({"ok": True})

    @router.get("/config")
    async def get_config() -> Response:
        return JSONResponse(config_json())

    @router.post("/config")
    async def set_config(request: Request) -> Response:
        try:
            patch = config_patch.model_validate(await read_json(request))
            engine.apply_config(patch.model_dump(include=patch.model_fields_set))
        except (ValidationError, ValueError) as exc:
            return invalid(exc)
        return JSONResponse(config_json())

    @router.get("/faults")
    async def list_faults() -> Response:
        return JSONResponse({"faults": [f.to_dict() for f in engine.faults.active()]})

    @router.post("/faults")
    async def add_fault(request: Request) -> Response:
        try:
            fault = engine.faults.add(FaultSpec.model_validate(await read_json(request)))
        except (ValidationError, ValueError) as exc:
            return invalid(exc)
        return JSONResponse(fault.to_dict(), status_code=201)

    @router.delete("/faults")
    async def clear_faults() -> Response:
        count = len(engine.faults.active())
        engine.faults.clear()
        return JSONResponse({"cleared": count})

    @router.delete("/faults/{fault_id}")
    async def delete_fault(fault_id: str) -> Response:
        if not engine.faults.remove(fault_id):
            return fault_not_found(fault_id)
        return JSONResponse({"cleared": 1})
