"""MOBILE-PAY (mobile-pay.ci) simulator, written from providers.md section 3 only.

``create_app(config)`` returns a FastAPI app serving:

- ``GET /health`` (public) and ``GET /qr/{payment_id}`` (the QR payload URL, public);
- ``POST /api/v1/auth/login`` (email + password → session token);
- ``POST /api/v1/transfers/local``, ``POST /api/v1/transfers/international``,
  ``POST /api/v1/payments/qr``, ``GET /api/v1/transactions``, ``GET /api/v1/balance``
  (``Authorization: Bearer <API token or session token>``);
- the control API under ``/_sandbox`` (see :mod:`momoflow.sandbox.mobilepay.control`).

Every authenticated call goes through one pipeline: auth → rate limit (per hour) → request
fault → execute (no idempotency unless ``honour_idempotency_key``) → post-execution fault.
See ``docs/sandbox-mobilepay.md`` for behaviour and assumptions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from ..shared import (
    OPERATION_STATE_KEY,
    Fault,
    ready,
    replay_or_execute,
    sandbox_app,
    with_request_fault,
)
from .control import MobilePayControl
from .engine import MobilePayEngine, MobilePaySandboxConfig, iso_ms
from .wire import (
    mp_error,
    parse_json_object,
    parse_list_query,
    parse_login,
    parse_qr_payment,
    parse_transfer,
)

__all__ = ["MobilePayEngine", "MobilePaySandboxConfig", "create_app", "describe_credential"]

API = "/api/v1"
IDEMPOTENCY_HEADER = "idempotency-key"
#: One merchant account per simulator: every token shares one idempotency scope.
IDEMPOTENCY_SCOPE = "merchant"
_KEY_REUSED = "Clé d'idempotence déjà utilisée pour une autre requête"
Handler = Callable[[bytes], Awaitable[Response]]


def _bearer(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    if authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip() or None


def describe_credential(headers: Mapping[str, str]) -> str | None:
    """Redacted bearer token for the request log: its prefix (up to the last ``_`` within
    the first 8 characters) and ``***``; never the token in clear."""
    token = _bearer(headers)
    if token is None:
        return None
    head = token[:8]
    return head[: head.rfind("_") + 1] + "***"


class _Api:
    """Route implementations bound to one engine."""

    def __init__(self, engine: MobilePayEngine) -> None:
        self.engine = engine

    # -- pipeline -----------------------------------------------------------------------------

    async def run(
        self,
        request: Request,
        operation: str,
        handler: Handler,
        *,
        authenticated: bool = True,
        idempotent: bool = False,
    ) -> Response:
        """Auth, rate limit, faults and the optional idempotency around ``handler(body)``."""
        setattr(request.state, OPERATION_STATE_KEY, operation)
        engine = self.engine
        if authenticated:
            token = _bearer(request.headers)
            if token is None or not engine.token_is_valid(token):
                return mp_error(401, "UNAUTHORIZED", "Token d'authentification invalide ou absent")
            decision = engine.limiter.hit(token)
            if decision is not None and not decision.allowed:
                # M1 documents the 429 and no headers; Retry-After is our assumption (3.2).
                headers = {"Retry-After": str(decision.retry_after)}
                return mp_error(429, "RATE_LIMITED", headers=headers)
        fault = engine.faults.take(operation)

        async def execute() -> Response:
            body = await request.body()
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if not (idempotent and key and engine.config.honour_idempotency_key):
                return await handler(body)
            return await replay_or_execute(
                engine.idempotency,
                IDEMPOTENCY_SCOPE,
                key,
                request,
                body,
                lambda: handler(body),
                lambda: mp_error(409, "IDEMPOTENCY_KEY_REUSE", _KEY_REUSED),
            )

        return await with_request_fault(request, fault, engine.clock, execute, _fault_error)

    # -- business handlers ----------------------------------------------------------------------

    async def login(self, raw: bytes) -> Response:
        body = parse_json_object(raw)
        if isinstance(body, Response):
            return body
        credentials = parse_login(body)
        if isinstance(credentials, Response):
            return credentials
        session = self.engine.login(*credentials)
        if session is None:
            return mp_error(401, "UNAUTHORIZED", "Identifiants invalides")
        token, expires_in = session
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
        )

    async def transfer(self, raw: bytes, *, international: bool) -> Response:
        body = parse_json_object(raw)
        if isinstance(body, Response):
            return body
        parsed = parse_transfer(body, international=international)
        if isinstance(parsed, Response):
            return parsed
        tx = self.engine.new_transfer(parsed)
        if tx is None:
            return mp_error(422, "INSUFFICIENT_FUNDS", "Solde insuffisant")
        return JSONResponse(self.engine.transfer_created_body(tx), status_code=201)

    async def qr_payment(self, raw: bytes, base_url: str) -> Response:
        body = parse_json_object(raw)
        if isinstance(body, Response):
            return body
        parsed = parse_qr_payment(body)
        if isinstance(parsed, Response):
            return parsed
        tx = self.engine.new_payment(parsed)
        return JSONResponse(self.engine.payment_created_body(tx, base_url), status_code=201)

    def transactions(self, request: Request) -> Response:
        query = parse_list_query(request.query_params)
        if isinstance(query, Response):
            return query
        page, total = self.engine.list_transactions(query)
        return JSONResponse(
            {
                "data": [self.engine.list_item(tx) for tx in page],
                "total": total,
                "limit": query.limit,
                "offset": query.offset,
            }
        )

    def balance(self) -> Response:
        return JSONResponse({"balance": self.engine.account.balance, "currency": "XOF"})


def _fault_error(fault: Fault) -> Response:
    """The error an ``error`` or ``error_after_execute`` fault answers."""
    headers = {}
    if fault.status == 429:
        headers["Retry-After"] = str(max(1, round(fault.seconds)))
    return mp_error(fault.status, fault.code, fault.message, headers=headers)


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return mp_error(404, "NOT_FOUND", f"Route introuvable : {request.url.path}")
    if exc.status_code == 405:
        return mp_error(405)
    return mp_error(exc.status_code, message=str(exc.detail))


def _server_error(request: Request) -> Response:
    return mp_error(500, "INTERNAL_ERROR")


def create_app(config: MobilePaySandboxConfig | None = None) -> FastAPI:
    """Build the simulator app; all state lives in ``app.state.engine``."""
    engine = MobilePayEngine(config or MobilePaySandboxConfig())
    api = _Api(engine)
    app = sandbox_app(
        engine,
        title="MOBILE-PAY sandbox",
        log_prefixes=(f"{API}/", "/health"),
        describe_credential=describe_credential,
        http_error=_http_error,
        server_error=_server_error,
        idempotency_header=IDEMPOTENCY_HEADER,
    )

    @app.get("/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    @app.post(f"{API}/auth/login")
    async def login(request: Request) -> Response:
        return await api.run(request, "auth.login", api.login, authenticated=False)

    @app.post(f"{API}/transfers/local")
    async def local(request: Request) -> Response:
        return await api.run(
            request,
            "transfers.local",
            lambda raw: api.transfer(raw, international=False),
            idempotent=True,
        )

    @app.post(f"{API}/transfers/international")
    async def international(request: Request) -> Response:
        return await api.run(
            request,
            "transfers.international",
            lambda raw: api.transfer(raw, international=True),
            idempotent=True,
        )

    @app.post(f"{API}/payments/qr")
    async def qr(request: Request) -> Response:
        base = str(request.base_url)
        return await api.run(
            request, "payments.qr", lambda raw: api.qr_payment(raw, base), idempotent=True
        )

    @app.get(f"{API}/transactions")
    async def transactions(request: Request) -> Response:
        return await api.run(
            request, "transactions.list", lambda _: ready(api.transactions(request))
        )

    @app.get(f"{API}/balance")
    async def balance(request: Request) -> Response:
        return await api.run(request, "balance", lambda _: ready(api.balance()))

    @app.get("/qr/{payment_id}")
    async def qr_payload(payment_id: str) -> Response:
        tx = engine.transactions.get(payment_id)
        if tx is None or tx.kind != "payment" or tx.expires_ms is None:
            return mp_error(404, "NOT_FOUND", f"Paiement {payment_id} introuvable")
        return JSONResponse(
            {
                "payment_id": tx.id,
                "merchant_id": tx.merchant_id,
                "amount": tx.amount,
                "currency": "XOF",
                "description": tx.description,
                "status": tx.status,
                "expires_at": iso_ms(tx.expires_ms),
            }
        )

    app.include_router(MobilePayControl(engine).router())
    return app
