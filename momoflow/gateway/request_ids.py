"""A request id on every answer of the gateway (``X-Request-Id``).

A caller's own id is kept when it is safe to echo (letters, digits and ``. _ : -``, at most
64); otherwise the gateway makes one. The id is in the answer's headers whatever the answer
(401 and 429 included), so a merchant can quote it to the operator, and the Python client
puts it on every error it raises (``MomoflowError.request_id``).
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momoflow.contract import REQUEST_ID_HEADER

__all__ = ["RequestIds", "request_id_for"]

_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_for(given: str | None) -> str:
    """``given`` when it is safe to echo in a header and a log line, else a new id."""
    if given is not None and _SAFE.fullmatch(given):
        return given
    return f"req_{uuid.uuid4().hex}"


class RequestIds:
    """ASGI middleware: every HTTP answer carries ``X-Request-Id``; the id is also in
    ``scope["state"]["request_id"]`` for the code that handles the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the answer of an HTTP request; pass anything else on unchanged."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(Headers(scope=scope).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, tagged)
