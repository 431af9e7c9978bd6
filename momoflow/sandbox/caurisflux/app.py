"""CaurisFlux simulator: the documented ``/api/v1`` API, from providers.md section 1 only.

``create_app(config)`` returns a FastAPI app serving:

- ``GET /health``, ``GET /api/v1/health`` (public);
- ``GET /api/v1/payments/providers``, ``GET /api/v1/countries/active`` (public, paginated
  lists ``{data, meta}`` with ``page`` and ``limit``);
- ``GET /api/v1/payments/balance``, ``POST /api/v1/payouts/quote``,
  ``POST /api/v1/payouts/initiate``, ``POST /api/v1/payments/initiate``,
  ``GET /api/v1/payments/status/{id}`` (``X-API-Key: pk:sk`` or ``Bearer pk:sk``);
- the control API under ``/_sandbox`` (see :mod:`momoflow.sandbox.caurisflux.control`).

Every authenticated call goes through one pipeline: auth → rate limit → request fault →
idempotency (replay / conflict / execute and store 2xx) → post-execution fault.
See ``docs/sandbox-caurisflux.md`` for behaviour and assumptions.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..shared import (
    OPERATION_STATE_KEY,
    Fault,
    ready,
    replay_or_execute,
    sandbox_app,
    with_request_fault,
)
from .catalog import (
    COUNTRIES,
    ERROR_CODES,
    LIST_DEFAULT_LIMIT,
    LIST_MAX_LIMIT,
    PROVIDERS,
    payout_fees,
    provider_in,
)
from .control import CaurisFluxControl
from .engine import CaurisFluxEngine, CaurisFluxSandboxConfig, Transaction
from .wire import (
    PayinRequest,
    PayoutRequest,
    http_phrase,
    nest_error,
    parse_json_object,
    parse_payin,
    parse_payout,
    parse_quote,
)

__all__ = ["CaurisFluxEngine", "CaurisFluxSandboxConfig", "create_app"]

API = "/api/v1"
Handler = Callable[[bytes], Awaitable[Response]]
UNAUTHENTICATED = {"statusCode": 401, "message": "Non authentifié", "error": "Unauthorized"}


def _credential(headers: Mapping[str, str]) -> str | None:
    """The raw ``pk:sk`` from ``X-API-Key`` (preferred) or ``Authorization: Bearer``."""
    raw = headers.get("x-api-key")
    if raw is None:
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            raw = authorization[7:]
    return raw.strip() if raw is not None else None


def describe_credential(headers: Mapping[str, str]) -> str | None:
    """Redacted credential for the request log: never the key in clear."""
    raw = _credential(headers)
    if raw is None:
        return None
    public, _, secret = raw.partition(":")
    return public[:8] + "***" + (":***" if secret else "")


class _Api:
    """Route implementations bound to one engine."""

    def __init__(self, engine: CaurisFluxEngine) -> None:
        self.engine = engine

    # -- pipeline -----------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> str | Response:
        config = self.engine.config
        raw = _credential(request.headers)
        if not raw:
            return JSONResponse(UNAUTHENTICATED, status_code=401)
        public, _, secret = raw.partition(":")
        if not hmac.compare_digest(public.encode(), config.public_key.encode()):
            return JSONResponse(UNAUTHENTICATED, status_code=401)
        if not secret:
            # [DOC S5] 403 FORBIDDEN: a public key used where the secret key is required.
            return nest_error(403, "Clé secrète requise pour cette opération", code="FORBIDDEN")
        if not hmac.compare_digest(secret.encode(), config.secret_key.encode()):
            return JSONResponse(UNAUTHENTICATED, status_code=401)
        return public

    async def run(
        self, request: Request, operation: str, handler: Handler, *, idempotent: bool = False
    ) -> Response:
        """Auth, rate limit, faults and idempotency around ``handler(raw_body)``."""
        setattr(request.state, OPERATION_STATE_KEY, operation)
        engine = self.engine
        principal = self._authenticate(request)
        if isinstance(principal, Response):
            return principal
        rate_headers: dict[str, str] = {}
        decision = engine.limiter.hit(principal)
        if decision is not None:
            rate_headers = {
                "X-RateLimit-Limit": str(decision.limit),
                "X-RateLimit-Remaining": str(decision.remaining),
                "X-RateLimit-Reset": str(decision.reset_epoch),
            }
            if not decision.allowed:
                return nest_error(
                    429,
                    "Trop de requêtes",
                    code="RATE_LIMIT_EXCEEDED",
                    headers={**rate_headers, "Retry-After": str(decision.retry_after)},
                )
        fault = engine.faults.take(operation)

        async def execute() -> Response:
            body = await request.body()
            key = request.headers.get("x-idempotency-key") if idempotent else None
            if not key:
                return await handler(body)
            return await replay_or_execute(
                engine.idempotency,
                principal,
                key,
                request,
                body,
                lambda: handler(body),
                lambda: nest_error(409, "Idempotency key reuse", code="idempotency_key_reuse"),
            )

        response = await with_request_fault(
            request, fault, engine.clock, execute, lambda f: _fault_error(f, rate_headers)
        )
        response.headers.update(rate_headers)
        return response

    # -- business handlers ----------------------------------------------------------------------

    def _duplicate(self, reference: str) -> Response | None:
        if self.engine.config.idempotency_key_only:
            return None
        if reference in self.engine.by_reference:
            return nest_error(409, "Référence externe déjà utilisée", code="duplicate_reference")
        return None

    async def quote(self, raw: bytes) -> Response:
        body = parse_json_object(raw)
        if isinstance(body, Response):
            return body
        errors: list[str] = []
        request = parse_quote(body, errors)
        if request is None:
            return nest_error(400, errors)
        rejected = self._check_route(
            request.provider, request.country, request.currency, request.amount, request.method
        )
        if rejected is not None:
            return rejected
        quote = self.engine.new_quote(
            amount=request.amount,
            fees=payout_fees(request.amount),
            currency=request.currency,
            country=request.country,
            method=request.method,
            provider=request.provider,
        )
        return JSONResponse(quote.to_body(), status_code=201)

    def _check_route(
        self, provider_code: str, country: str, currency: str, amount: int, method: str
    ) -> Response | None:
        if method != "mobile_money":
            return nest_error(400, "Méthode non disponible dans le sandbox")
        if COUNTRIES[country].currency != currency:
            return nest_error(400, "Devise non supportée pour ce pays")
        provider = provider_in(provider_code, country)
        if provider is None:
            return nest_error(400, "Provider non disponible")  # [DOC S2]
        if not provider.min_amount <= amount <= provider.max_amount:
            return nest_error(400, "Montant invalide", code="invalid_amount")  # [DOC S2]
        return None

    def _check_phone(self, phone: str, country: str | None) -> Response | None:
        if country is not None and not phone.startswith("+" + COUNTRIES[country].dial_code):
            return nest_error(
                400, "Numéro de téléphone invalide pour ce pays", code="invalid_phone"
            )
        return None

    async def payout(self, raw: bytes) -> Response:
        body = parse_json_object(raw)
        if isinstance(body, Response):
            return body
        request = parse_payout(body)
        if isinstance(request, list):
            return nest_error(400, request)
        duplicate = self._duplicate(request.external_reference)
        if duplicate is not None:
            return duplicate
        engine = self.engine
        if request.quote_id is not None:
            quote = engine.usable_quote(request.quote_id)
            if quote is None:
                return nest_error(400, "Quote invalide ou expirée", code="quote_expired")
            amount, fees, currency = quote.amount, quote.fees, quote.currency
            country, provider = quote.country, quote.provider
        else:
            assert request.inline is not None
            inline = request.inline
            rejected = self._check_route(
                inline.provider, inline.country, inline.currency, inline.amount, inline.method
            )
            if rejected is not None:
                return rejected
            amount, fees, currency = inline.amount, payout_fees(inline.amount), inline.currency
            country, provider = inline.country, inline.provider
            quote = None
        rejected = self._check_phone(request.phone, country)
        if rejected is not None:
            return rejected
        if amount > engine.account.balance:
            return nest_error(422, "Solde insuffisant", code="insufficient_balance")
        engine.account.debit(amount)
        if quote is not None:
            quote.used = True
        fields = _payout_fields(request, amount, fees, currency, country, provider)
        tx = engine.new_transaction("payout", **fields)
        return JSONResponse(engine.payout_created_body(tx), status_code=201)

    async def payin(self, raw: bytes, base_url: str) -> Response:
        body = parse_json_object(raw)
        if isinstance(body, Response):
            return body
        request = parse_payin(body)
        if isinstance(request, list):
            return nest_error(400, request)
        duplicate = self._duplicate(request.external_reference)
        if duplicate is not None:
            return duplicate
        if request.provider is not None or request.type == "direct":
            country = request.country or ""
            if country not in COUNTRIES:
                return nest_error(400, "Provider non disponible")
            rejected = self._check_route(
                request.provider or "", country, request.currency, request.amount, "mobile_money"
            )
            if rejected is not None:
                return rejected
        if request.customer_phone is not None:
            rejected = self._check_phone(request.customer_phone, request.country)
            if rejected is not None:
                return rejected
        tx = self.engine.new_transaction("payin", **_payin_fields(request))
        return JSONResponse(self.engine.payin_created_body(tx, base_url), status_code=201)

    def status(self, transaction_id: str) -> Response:
        tx = self.engine.transactions.get(transaction_id)
        if tx is None:
            return nest_error(404, f"Transaction {transaction_id} introuvable")
        return JSONResponse(self.engine.status_body(tx))

    def balance(self) -> Response:
        account = self.engine.account
        data = {
            "balance": account.balance,
            "availableBalance": account.balance,
            "currency": account.currency,
        }
        return JSONResponse({"success": True, "data": data})


def _payout_fields(
    request: PayoutRequest, amount: int, fees: int, currency: str, country: str, provider: str
) -> dict[str, Any]:
    return {
        "external_reference": request.external_reference,
        "amount": amount,
        "fees": fees,
        "currency": currency,
        "country": country,
        "provider": provider,
        "phone": request.phone,
        "first_name": request.first_name,
        "last_name": request.last_name,
        "callback_url": request.callback_url,
        "metadata": request.metadata,
        "description": request.description,
    }


def _payin_fields(request: PayinRequest) -> dict[str, Any]:
    return {
        "external_reference": request.external_reference,
        "amount": request.amount,
        "fees": 0,  # payin fees are [GAP] (providers.md 1.9): simulator-defined as none
        "currency": request.currency,
        "country": request.country,
        "provider": request.provider,
        "phone": request.customer_phone,
        "first_name": request.customer_name,
        "last_name": None,
        "callback_url": request.callback_url,
        "metadata": request.metadata,
        "payin_type": request.type,
        "customer_email": request.customer_email,
        "description": request.description,
    }


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code in (404, 405):
        # NestJS answers an unknown route or method with 404 "Cannot METHOD /path".
        return nest_error(404, f"Cannot {request.method} {request.url.path}")
    return nest_error(exc.status_code, str(exc.detail))


def _server_error(request: Request) -> Response:
    return JSONResponse({"statusCode": 500, "message": "Internal server error"}, 500)


def create_app(config: CaurisFluxSandboxConfig | None = None) -> FastAPI:
    """Build the simulator app; all state lives in ``app.state.engine``."""
    engine = CaurisFluxEngine(config or CaurisFluxSandboxConfig())
    api = _Api(engine)
    app = sandbox_app(
        engine,
        title="CaurisFlux sandbox",
        log_prefixes=(f"{API}/", "/health"),
        describe_credential=describe_credential,
        http_error=_http_error,
        server_error=_server_error,
    )

    @app.get("/health")
    @app.get(f"{API}/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get(f"{API}/payments/providers")
    async def providers(
        request: Request,
        country: str | None = None,
        page: str | None = None,
        limit: str | None = None,
    ) -> Response:
        async def handler(_: bytes) -> Response:
            entries = [
                {
                    "code": p.code,
                    "name": p.name,
                    "country": c,
                    "minAmount": p.min_amount,
                    "maxAmount": p.max_amount,
                    "logoUrl": p.logo_url,
                    "active": True,
                }
                for p in PROVIDERS.values()
                for c in p.countries
                if country is None or c == country.upper()
            ]
            return paginated(entries, page, limit)

        return await _public(engine, request, "payments.providers", handler)

    @app.get(f"{API}/countries/active")
    async def countries(
        request: Request, page: str | None = None, limit: str | None = None
    ) -> Response:
        async def handler(_: bytes) -> Response:
            entries = [
                {"code": c.code, "name": c.name, "currency": c.currency} for c in COUNTRIES.values()
            ]
            return paginated(entries, page, limit)

        return await _public(engine, request, "countries.active", handler)

    @app.get(f"{API}/payments/balance")
    async def balance(request: Request) -> Response:
        return await api.run(request, "payments.balance", lambda _: ready(api.balance()))

    @app.post(f"{API}/payouts/quote")
    async def quote(request: Request) -> Response:
        return await api.run(request, "payouts.quote", api.quote, idempotent=True)

    @app.post(f"{API}/payouts/initiate")
    async def payout(request: Request) -> Response:
        return await api.run(request, "payouts.initiate", api.payout, idempotent=True)

    @app.post(f"{API}/payments/initiate")
    async def payin(request: Request) -> Response:
        base = str(request.base_url)
        return await api.run(
            request, "payments.initiate", lambda raw: api.payin(raw, base), idempotent=True
        )

    @app.get(f"{API}/payments/status/{{transaction_id}}")
    async def status(request: Request, transaction_id: str) -> Response:
        return await api.run(
            request, "payments.status", lambda _: ready(api.status(transaction_id))
        )

    @app.get("/checkout/{transaction_id}")
    async def checkout(transaction_id: str) -> Response:
        tx: Transaction | None = engine.transactions.get(transaction_id)
        if tx is None or tx.kind != "payin":
            return nest_error(404, f"Transaction {transaction_id} introuvable")
        return HTMLResponse(
            f"<!doctype html><title>CaurisFlux sandbox</title><p>Paiement {tx.id}: "
            f"{tx.amount} {tx.currency}, statut {tx.status}.</p>"
        )

    app.include_router(CaurisFluxControl(engine).router())
    return app


def _documented_text(code: str | None) -> str | None:
    """The documented French text of an error code (a fault that names only the code)."""
    known = ERROR_CODES.get(code) if code else None
    return known.message if known else None


def _page_number(value: str | None, name: str, default: int, errors: list[str]) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        errors.append(f"{name} doit être un entier positif")
    return number


def paginated(items: list[dict[str, Any]], page: str | None, limit: str | None) -> Response:
    """One page of ``items``: ``{data, meta: {total, page, limit, totalPages}}`` with
    ``page`` (default 1) and ``limit`` (default 20, at most 100) [DOC S1 "Pagination"].
    A page past the end is empty; an invalid value is a 400 like a ``ValidationPipe``."""
    errors: list[str] = []
    number = _page_number(page, "page", 1, errors)
    size = _page_number(limit, "limit", LIST_DEFAULT_LIMIT, errors)
    if size > LIST_MAX_LIMIT:
        errors.append(f"limit ne doit pas dépasser {LIST_MAX_LIMIT}")
    if errors:
        return nest_error(400, errors)
    start = (number - 1) * size
    meta = {
        "total": len(items),
        "page": number,
        "limit": size,
        "totalPages": -(-len(items) // size),
    }
    return JSONResponse({"data": items[start : start + size], "meta": meta})


def _fault_error(fault: Fault, rate_headers: Mapping[str, str]) -> Response:
    """The error an ``error`` or ``error_after_execute`` fault answers."""
    headers = dict(rate_headers)
    code = fault.code
    message = fault.message or _documented_text(code) or http_phrase(fault.status)
    if fault.status == 429:
        headers["Retry-After"] = str(max(1, round(fault.seconds)))
        code = code or "RATE_LIMIT_EXCEEDED"
        message = fault.message or "Trop de requêtes"
    return nest_error(fault.status, message, code=code, headers=headers)


async def _public(
    engine: CaurisFluxEngine, request: Request, operation: str, handler: Handler
) -> Response:
    """Public endpoints: no auth and no rate limit, but request faults still apply."""
    setattr(request.state, OPERATION_STATE_KEY, operation)
    fault = engine.faults.take(operation)
    if fault is not None and fault.kind == "error_after_execute":
        fault = None  # consumed without effect: a public list moves no money

    def error(fault: Fault) -> Response:
        message = fault.message or _documented_text(fault.code) or http_phrase(fault.status)
        return nest_error(fault.status, message, code=fault.code)

    return await with_request_fault(request, fault, engine.clock, lambda: handler(b""), error)
