"""Pieces of the ``/_sandbox`` control contract that every simulator shares.

The control API has the same routes, bodies and semantics in every sandbox (see
``docs/sandbox-caurisflux.md``), so that one test helper drives them all:

- :func:`loopback_only`: a FastAPI dependency refusing non-loopback clients with 403;
- :class:`SettleOrder`: the body of ``POST /_sandbox/transactions/{id}/settle``;
- :func:`read_json`, :func:`validation_messages`: request reading and 400 messages.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

__all__ = ["SettleOrder", "loopback_only", "read_json", "validation_messages"]


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
