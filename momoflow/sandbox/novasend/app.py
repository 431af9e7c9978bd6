"""NovaSend simulator: the documented ``/v1`` API, from providers.md section 2 only.

``create_app(config)`` returns a FastAPI app serving, at the host root:

- ``GET /health`` (public, empty 200) [DOC N2];
- ``POST /v1/payin/sessions``, ``POST /v1/direct/payin`` (payins);
- ``POST /v1/payout``, ``POST /v1/direct/payout`` (payouts);
- ``GET /v1/payin/{reference}``, ``GET /v1/payout/{reference}``,
  ``GET /v1/direct/payout/{reference}`` (status by merchant reference or ``pr_`` id; an
  older-API session, ``payin_api_version="seed004"``, only by its system ``tr_`` reference);
- ``POST /v1/payin/{reference}/refund``, ``GET /v1/balance``;
- ``GET /link/{code}``: the hosted confirmation page a ``paymentUrl`` points to;
- the control API under ``/_sandbox`` (see :mod:`momoflow.sandbox.novasend.control`).

Every authenticated call goes through one pipeline: Basic auth → rate limit (off by
default) → idempotency key check (writes) → request fault → idempotency (replay / conflict /
execute and store 2xx) → post-execution fault. See ``docs/sandbox-novasend.md``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import re
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..shared import (
    OPERATION_STATE_KEY,
    Fault,
    InsufficientBalance,
    ready,
    replay_or_execute,
    sandbox_app,
    with_request_fault,
)
from .catalog import COUNTRIES, OPERATORS, Language, limits_for, static_message
from .config import NovaSendSandboxConfig
from .control import NovaSendControl
from .engine import NovaSendEngine
from .payloads import refund_body, transfer_body
from .transfers import Transfer
from .wire import (
    InvalidBody,
    TransferRequest,
    language_of,
    ns_error,
    parse_json_object,
    parse_refund,
    parse_transfer,
)

__all__ = ["NovaSendEngine", "NovaSendSandboxConfig", "create_app"]

#: A route body: raw request bytes and the caller's language in, a response out.
Handler = Callable[[bytes, Language], Awaitable[Response]]
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(api_key, api_client)`` from ``Authorization: Basic base64(key:client)``."""
    authorization = headers.get("authorization", "")
    if authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    api_key, sep, api_client = decoded.partition(":")
    return (api_key, api_client) if sep else None


def describe_credential(headers: Mapping[str, str]) -> str | None:
    """Redacted credential for the request log: never the pair in clear."""
    pair = _basic_credentials(headers)
    if pair is None:
        return "basic:***" if headers.get("authorization") else None
    return pair[0][:8] + "***:***"


def _fault_code(status: int) -> str:
    if status == 500:
        return "internal_error"
    if status == 429:
        return "too_many_requests"
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


class _Api:
    """Route implementations bound to one engine."""

    def __init__(self, engine: NovaSendEngine) -> None:
        self.engine = engine

    # -- pipeline -----------------------------------------------------------------------------

    def _authenticate(self, request: Request, language: Language) -> str | Response:
        config = self.engine.config
        pair = _basic_credentials(request.headers)
        if pair is not None:
            key_ok = hmac.compare_digest(pair[0].encode(), config.api_key.encode())
            client_ok = hmac.compare_digest(pair[1].encode(), config.api_client.encode())
            if key_ok and client_ok:
                return pair[0]
        return ns_error(401, "api_token_invalid", language)

    async def run(
        self,
        request: Request,
        operation: str,
        handler: Handler,
        *,
        write: bool = False,
    ) -> Response:
        """Auth, rate limit, key check, faults and idempotency around ``handler``."""
        setattr(request.state, OPERATION_STATE_KEY, operation)
        engine = self.engine
        language = language_of(request.headers.get("accept-language"))
        principal = self._authenticate(request, language)
        if isinstance(principal, Response):
            return principal
        decision = engine.limiter.hit(principal)
        if decision is not None and not decision.allowed:
            retry = {"Retry-After": str(decision.retry_after)}
            return ns_error(429, "too_many_requests", language, headers=retry)
        key = request.headers.get("x-idempotency-key", "").strip().lower()
        if write and not _UUID.match(key):
            return ns_error(400, "idempotency_key_invalid", language)
        fault = engine.faults.take(operation)

        async def execute() -> Response:
            body = await request.body()
            if not write:
                return await handler(body, language)
            return await replay_or_execute(
                engine.idempotency,
                principal,
                key,
                request,
                body,
                lambda: handler(body, language),
                # Assumed (2.11.6): a key reused for another body is "already processed".
                lambda: ns_error(409, "transaction_is_already_processed", language),
            )

        return await with_request_fault(
            request, fault, engine.clock, execute, lambda f: _fault_error(f, language)
        )

    # -- business handlers ----------------------------------------------------------------------

    def _check(self, request: TransferRequest, language: Language) -> Response | None:
        """Business checks of a well-formed body, in the order docs/sandbox-novasend.md lists."""
        country = COUNTRIES.get(request.country)
        if country is None:
            return ns_error(404, "country_not_found", language, country=request.country)
        problems = []
        if request.currency is not None and request.currency != country.currency:
            problems.append(f"currency must be {country.currency} for country {country.code}")
        if not request.msisdn.startswith("+" + country.dial_code):
            problems.append(f"msisdn must be a +{country.dial_code} number for {country.code}")
        if problems:
            return ns_error(400, "validation_error", language, detail="; ".join(problems))
        if request.provider is not None and (
            request.provider not in OPERATORS or request.provider not in country.operators
        ):
            return ns_error(
                404,
                "provider_not_found",
                language,
                provider=request.provider,
                country=country.code,
            )
        if request.amount <= 0:
            return ns_error(403, "transaction_greater_than_zero", language)
        low, high = limits_for(country.currency, request.kind)
        if not low <= request.amount <= high:
            return ns_error(400, "invalid_amount", language)
        if self.engine.reference_taken(request.reference):
            return ns_error(409, "transaction_is_already_processed", language)
        if request.kind == "payin" and request.provider == "ORANGE" and request.otp is None:
            return ns_error(403, "transaction_otp_required", language)  # [DOC N5]
        return None

    async def create(
        self, raw: bytes, language: Language, *, kind: str, direct: bool, base_url: str
    ) -> Response:
        # The version setting changes wallet sessions only: the other creates have one
        # documented version (2.11.1).
        older = kind == "payin" and not direct and self.engine.config.payin_api_version == "seed004"
        try:
            request = parse_transfer(
                parse_json_object(raw),
                "payin" if kind == "payin" else "payout",
                direct=direct,
                older=older,
            )
        except InvalidBody as exc:
            return ns_error(400, "validation_error", language, detail=exc.detail)
        rejected = self._check(request, language)
        if rejected is not None:
            return rejected
        try:
            tx = self.engine.create_transfer(request, base_url, older=older)
        except InsufficientBalance:
            return ns_error(403, "wallet_not_enough_cash", language)
        return JSONResponse(transfer_body(tx, language, created=True), status_code=201)

    def _transfer(self, reference: str, kind: str) -> Transfer | None:
        found = self.engine.find(reference)
        if isinstance(found, Transfer) and found.kind == kind:
            return found
        return None

    def status(self, reference: str, kind: str, language: Language) -> Response:
        tx = self._transfer(reference, kind)
        if tx is not None and tx.older and reference != tx.system_reference:
            # The older status path takes "l'identifiant unique du paiement (généré lors du
            # POST)" only [DOC N3, seed 004], not the merchant's reference.
            tx = None
        if tx is None:
            return ns_error(404, "transaction_does_not_exist", language, reference=reference)
        return JSONResponse(transfer_body(tx, language))

    async def refund(self, raw: bytes, language: Language, *, reference: str) -> Response:
        try:
            request = parse_refund(parse_json_object(raw))
        except InvalidBody as exc:
            return ns_error(400, "validation_error", language, detail=exc.detail)
        payin = self._transfer(reference, "payin")
        if payin is None:
            return ns_error(404, "transaction_does_not_exist", language, reference=reference)
        if payin.refund is not None:
            return ns_error(409, "transaction_already_refunded", language)
        if not payin.is_final:
            return ns_error(403, "transaction_not_processed", language)
        if payin.state != "completed":
            return ns_error(403, "transaction_not_refundable", language)
        external = request.external_reference
        if external is not None and self.engine.reference_taken(external):
            return ns_error(409, "transaction_is_already_processed", language)
        try:
            refund = self.engine.create_refund(payin, ledger_key=external, reason=request.reason)
        except InsufficientBalance:
            return ns_error(403, "wallet_not_enough_cash", language)
        return JSONResponse(refund_body(refund, language), status_code=201)

    def balance(self) -> Response:
        return JSONResponse(self.engine.balances())


def _fault_error(fault: Fault, language: Language) -> Response:
    """The error an ``error`` or ``error_after_execute`` fault answers."""
    headers = {}
    if fault.status == 429:
        headers["Retry-After"] = str(max(1, round(fault.seconds)))
    code = fault.code or _fault_code(fault.status)
    text = fault.message or static_message(code, language) or _phrase(fault.status)
    return ns_error(fault.status, code, language, text=text, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _http_error(request: Request, exc: HTTPException) -> Response:
    language = language_of(request.headers.get("accept-language"))
    if exc.status_code in (404, 405):
        return ns_error(404, "not_found", language, method=request.method, path=request.url.path)
    return ns_error(exc.status_code, _fault_code(exc.status_code), text=str(exc.detail))


def _server_error(request: Request) -> Response:
    return ns_error(500, "internal_error", language_of(request.headers.get("accept-language")))


def create_app(config: NovaSendSandboxConfig | None = None) -> FastAPI:
    """Build the simulator app; all state lives in ``app.state.engine``."""
    engine = NovaSendEngine(config or NovaSendSandboxConfig())
    api = _Api(engine)
    app = sandbox_app(
        engine,
        title="NovaSend sandbox",
        log_prefixes=("/v1/", "/health"),
        describe_credential=describe_credential,
        http_error=_http_error,
        server_error=_server_error,
    )

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)  # [DOC N2] no payload

    def creator(
        operation: str, kind: str, direct: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            base = str(request.base_url)

            async def handler(raw: bytes, language: Language) -> Response:
                return await api.create(raw, language, kind=kind, direct=direct, base_url=base)

            return await api.run(request, operation, handler, write=True)

        return route

    app.post("/v1/payin/sessions")(creator("payin.sessions", "payin", False))
    app.post("/v1/direct/payin")(creator("payin.direct", "payin", True))
    app.post("/v1/payout")(creator("payout.wallet", "payout", False))
    app.post("/v1/direct/payout")(creator("payout.direct", "payout", True))

    @app.get("/v1/balance")
    async def balance(request: Request) -> Response:
        return await api.run(request, "balance", lambda _raw, _lang: ready(api.balance()))

    @app.get("/v1/payin/{reference}")
    async def payin_status(request: Request, reference: str) -> Response:
        return await api.run(
            request, "payin.status", lambda _, lang: ready(api.status(reference, "payin", lang))
        )

    @app.get("/v1/payout/{reference}")
    @app.get("/v1/direct/payout/{reference}")
    async def payout_status(request: Request, reference: str) -> Response:
        return await api.run(
            request, "payout.status", lambda _, lang: ready(api.status(reference, "payout", lang))
        )

    @app.post("/v1/payin/{reference}/refund")
    async def refund(request: Request, reference: str) -> Response:
        async def handler(raw: bytes, language: Language) -> Response:
            return await api.refund(raw, language, reference=reference)

        return await api.run(request, "refund", handler, write=True)

    @app.get("/link/{code}")
    async def link(code: str) -> Response:
        tx = engine.by_link.get(code)
        if tx is None:
            return ns_error(404, "not_found", method="GET", path=f"/link/{code}")
        return HTMLResponse(
            "<!doctype html><title>NovaSend sandbox</title>"
            f"<p>Payment {html.escape(tx.reference)}: "
            f"{tx.amount} {tx.currency} + {tx.fee} fee, confirmation {tx.confirmation_status}, "
            f"status {tx.status}.</p>"
        )

    app.include_router(NovaSendControl(engine).router())
    return app
