"""CaurisFlux adapter: wire models, pure mapping functions, and a thin async client.

Sources are the keys of ``docs/providers.md`` (S1..S7). Where CaurisFlux's documentation is
silent, the assumption is named here and listed in that document.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from momoflow.models import (
    InitiatePayoutInput,
    Operator,
    PaymentStatus,
    PayoutQuote,
    PayoutQuoteInput,
    ProviderEvent,
    ProviderName,
    ProviderTransaction,
    StatusLookup,
)
from momoflow.money import Currency
from momoflow.providers import errors
from momoflow.providers.http import json_body, map_httpx_errors, retry_after_seconds

PROVIDER = ProviderName.CAURISFLUX.value

#: Operator codes. Only ``wave`` and ``orange_money`` are documented [S2]; the rest assumed.
OPERATOR_CODES: dict[Operator, str] = {
    Operator.WAVE: "wave",
    Operator.ORANGE_MONEY: "orange_money",
    Operator.MTN_MOMO: "mtn_money",
    Operator.MOOV_MONEY: "moov_money",
    Operator.FREE_MONEY: "free_money",
}

# --------------------------------------------------------------------------- wire models


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CaurisFluxQuoteRequest(_Wire):
    """``POST /payouts/quote`` body (schema assumed, providers.md 1.12.6)."""

    amount: int
    currency: str
    country: str
    method: str = "mobile_money"
    provider: str


class CaurisFluxQuoteResponse(_Wire):
    """``POST /payouts/quote`` answer (schema assumed)."""

    quote_id: str = Field(alias="quoteId")
    amount: int
    fees: int
    net_amount: int = Field(alias="netAmount")
    currency: str
    expires_at: datetime | None = Field(default=None, alias="expiresAt")


class CaurisFluxRecipient(_Wire):
    """Payout recipient [S4]."""

    phone: str
    first_name: str = Field(alias="firstName")
    last_name: str = Field(alias="lastName")


class CaurisFluxPayoutRequest(_Wire):
    """``POST /payouts/initiate`` body, quote variant [S4]."""

    quote_id: str = Field(alias="quoteId")
    external_reference: str = Field(alias="externalReference")
    recipient: CaurisFluxRecipient
    description: str
    callback_url: str | None = Field(default=None, alias="callbackUrl")


class CaurisFluxTransaction(_Wire):
    """A payout as returned by ``POST /payouts/initiate`` [S4] or the status endpoint [S3]."""

    transaction_id: str = Field(alias="transactionId")
    external_reference: str | None = Field(default=None, alias="externalReference")
    status: str
    amount: int | None = None
    currency: str | None = None
    fees: int | None = None
    net_amount: int | None = Field(default=None, alias="netAmount")
    provider_reference: str | None = Field(default=None, alias="providerReference")
    error_code: str | None = Field(default=None, alias="errorCode")
    error_message: str | None = Field(default=None, alias="errorMessage")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class CaurisFluxErrorBody(_Wire):
    """NestJS error envelope [S1]; ``code`` is assumed for business errors (1.12.8)."""

    status_code: int | None = Field(default=None, alias="statusCode")
    message: str | list[str] = ""
    error: str | None = None
    code: str | None = None

    def text(self) -> str:
        """The message as one string (class-validator sends a list)."""
        return "; ".join(self.message) if isinstance(self.message, list) else self.message


class CaurisFluxWebhookData(_Wire):
    """``data`` of a webhook, as the vendor plugin reads it [S7]."""

    transaction_id: str | None = Field(default=None, alias="transactionId")
    external_reference: str | None = Field(default=None, alias="externalReference")
    provider_transaction_id: str | None = Field(default=None, alias="providerTransactionId")
    status: str | None = None
    amount: int | None = None
    currency: str | None = None
    fees: int | None = None
    failure_reason: str | None = Field(default=None, alias="failureReason")
    failure_message: str | None = Field(default=None, alias="failureMessage")
    error_code: str | None = Field(default=None, alias="errorCode")
    error_message: str | None = Field(default=None, alias="errorMessage")


class CaurisFluxWebhook(_Wire):
    """Webhook envelope ``{event, data}`` [S7]."""

    event: str
    data: CaurisFluxWebhookData


# --------------------------------------------------------------------------- pure mapping

_WireT = TypeVar("_WireT", bound=_Wire)

#: Raw status words [S3, S6, S7]; anything else is PENDING, never a failure.
_STATUS_MAP: dict[str, PaymentStatus] = {
    "pending": PaymentStatus.PENDING,
    "processing": PaymentStatus.PENDING,
    "success": PaymentStatus.SUCCEEDED,
    "completed": PaymentStatus.SUCCEEDED,
    "failed": PaymentStatus.FAILED,
    "cancelled": PaymentStatus.CANCELLED,
    "canceled": PaymentStatus.CANCELLED,
    "expired": PaymentStatus.EXPIRED,
}


def map_status(raw: str) -> PaymentStatus:
    """Normalise a CaurisFlux status word; unknown words are PENDING."""
    return _STATUS_MAP.get(raw.strip().lower(), PaymentStatus.PENDING)


def unwrap_envelope(payload: Any) -> Any:
    """Return ``data`` from ``{success, data}``, or the payload itself (bare objects, S3/S4)."""
    if isinstance(payload, dict) and "success" in payload and "data" in payload:
        return payload["data"]
    return payload


def split_name(name: str) -> tuple[str, str]:
    """CaurisFlux wants first and last names: the last word is the last name; a one-word
    name (often a business) is sent as both."""
    words = name.split()
    if len(words) <= 1:
        return name.strip(), name.strip()
    return " ".join(words[:-1]), words[-1]


def build_quote_request(request: PayoutQuoteInput) -> CaurisFluxQuoteRequest:
    """Body of ``POST /payouts/quote``."""
    return CaurisFluxQuoteRequest(
        amount=request.amount,
        currency=request.currency.value,
        country=request.country.value,
        provider=OPERATOR_CODES[request.operator],
    )


def build_payout_request(request: InitiatePayoutInput) -> CaurisFluxPayoutRequest:
    """Body of ``POST /payouts/initiate`` (quote variant)."""
    if not request.quote_id:
        raise ValueError("CaurisFlux payouts need a quote id")
    first, last = split_name(request.recipient_name)
    return CaurisFluxPayoutRequest(
        quote_id=request.quote_id,
        external_reference=request.external_reference,
        recipient=CaurisFluxRecipient(
            phone=request.recipient_phone, first_name=first, last_name=last
        ),
        description=request.description or request.external_reference,
        callback_url=request.callback_url,
    )


def _validate(model: type[_WireT], payload: Any, *, operation: str, status: int) -> _WireT:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise errors.ProviderProtocolError(
            f"unexpected answer shape (fields: {fields})",
            provider=PROVIDER,
            operation=operation,
            http_status=status,
        ) from exc


def parse_quote_response(status: int, body: bytes, *, request_currency: Currency) -> PayoutQuote:
    """A 2xx ``/payouts/quote`` answer as a :class:`PayoutQuote`."""
    payload = unwrap_envelope(
        json_body(body, provider=PROVIDER, operation="quote_payout", http_status=status)
    )
    wire = _validate(CaurisFluxQuoteResponse, payload, operation="quote_payout", status=status)
    return PayoutQuote(
        provider=ProviderName.CAURISFLUX,
        quote_id=wire.quote_id,
        amount=wire.amount,
        fees=wire.fees,
        net_amount=wire.net_amount,
        currency=_currency(wire.currency) or request_currency,
        expires_at=wire.expires_at,
    )


def _currency(code: str | None) -> Currency | None:
    return Currency(code) if code is not None and code in Currency.__members__ else None


def to_transaction(wire: CaurisFluxTransaction) -> ProviderTransaction:
    """Normalise a CaurisFlux transaction."""
    currency = _currency(wire.currency)
    return ProviderTransaction(
        provider=ProviderName.CAURISFLUX,
        provider_transaction_id=wire.transaction_id,
        external_reference=wire.external_reference,
        status=map_status(wire.status),
        raw_status=wire.status,
        amount=wire.amount,
        currency=currency,
        fees=wire.fees,
        net_amount=wire.net_amount,
        provider_reference=wire.provider_reference,
        failure_code=wire.error_code,
        failure_message=wire.error_message,
        updated_at=wire.updated_at,
    )


def parse_transaction_response(status: int, body: bytes, *, operation: str) -> ProviderTransaction:
    """A 2xx payout-creation or status answer as a :class:`ProviderTransaction`."""
    payload = unwrap_envelope(
        json_body(body, provider=PROVIDER, operation=operation, http_status=status)
    )
    wire = _validate(CaurisFluxTransaction, payload, operation=operation, status=status)
    return to_transaction(wire)


#: Business error codes (S1, S3 lowercase; S5 uppercase) and the error each means.
_REJECTION_CODES: dict[str, type[errors.ProviderRejected]] = {
    "invalid_recipient": errors.InvalidRecipient,
    "invalid_phone": errors.InvalidRecipient,
    "insufficient_balance": errors.InsufficientBalance,
    "insufficient_funds": errors.InsufficientBalance,
    "invalid_amount": errors.InvalidAmount,
    "limit_exceeded": errors.LimitExceeded,
    "daily_limit_exceeded": errors.LimitExceeded,
    "account_blocked": errors.RecipientAccountBlocked,
    "quote_expired": errors.QuoteExpired,
    "quote_not_found": errors.QuoteExpired,
    "validation_error": errors.InvalidRequest,
}

#: Documented 400 messages [S2] for bodies that carry no code.
_REJECTION_MESSAGES: dict[str, type[errors.ProviderRejected]] = {
    "provider non disponible": errors.OperatorUnavailable,
    "montant invalide": errors.InvalidAmount,
    "quote invalide": errors.QuoteExpired,
    "quote expir": errors.QuoteExpired,
}


def classify_error(
    operation: str, status: int, body: bytes, headers: Mapping[str, str], *, now: float
) -> errors.ProviderError:
    """The error a non-2xx CaurisFlux answer means (rule 6 of the design)."""
    try:
        parsed = CaurisFluxErrorBody.model_validate(json.loads(body))
        message, code = parsed.text() or f"HTTP {status}", (parsed.code or "").strip()
    except (ValueError, ValidationError):
        message, code = f"HTTP {status} with an unreadable body", ""
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "operation": operation,
        "http_status": status,
        "provider_code": code or None,
    }
    lowered_code = code.lower()
    if status == 429:
        return errors.ProviderRateLimited(
            message, retry_after=retry_after_seconds(headers, now=now), **common
        )
    if status >= 500 or status == 408:
        return errors.ProviderUnavailable(message, **common)
    if status in (401, 403):
        return errors.ProviderAuthError(message, **common)
    if status == 409:
        if lowered_code == "duplicate_reference":
            return errors.DuplicateReference(message, **common)
        return errors.IdempotencyConflict(message, **common)
    if lowered_code in _REJECTION_CODES:
        return _REJECTION_CODES[lowered_code](message, **common)
    lowered_message = message.lower()
    for fragment, error_type in _REJECTION_MESSAGES.items():
        if fragment in lowered_message:
            return error_type(message, **common)
    if status == 404 and operation == "payout_status":
        # A transaction we created but the provider cannot find yet: read again later.
        return errors.ProviderUnavailable(message, **common)
    if status == 404 and operation == "initiate_payout":
        return errors.QuoteExpired(message, **common)
    return errors.InvalidRequest(message, **common)


# --------------------------------------------------------------------------- webhooks


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        if (value := lowered.get(name.lower())) is not None:
            return value
    return None


def verify_webhook_signature(
    headers: Mapping[str, str], body: bytes, *, secret: str, tolerance_s: int, now: float
) -> None:
    """Check ``X-Webhook-Signature`` over ``"{timestamp}.{raw body}"`` [S7].

    The legacy form (HMAC of the body alone, no timestamp header) is accepted as the vendor
    plugin does; replaying such a delivery changes nothing because events are idempotent.
    """
    signature = _header(headers, "X-Webhook-Signature", "X-Cauris-Signature")
    if not signature:
        raise errors.WebhookVerificationError("missing signature header", reason="missing")
    signature = signature.strip()
    if signature.lower().startswith("sha256="):
        signature = signature[len("sha256=") :]
    timestamp = _header(headers, "X-Webhook-Timestamp", "X-Cauris-Timestamp")
    key = secret.encode()
    if timestamp is not None:
        try:
            sent_at = int(timestamp.strip())
        except ValueError as exc:
            raise errors.WebhookVerificationError(
                "timestamp is not an integer", reason="bad_timestamp"
            ) from exc
        if abs(now - sent_at) > tolerance_s:
            raise errors.WebhookVerificationError(
                f"timestamp outside the {tolerance_s}s tolerance", reason="stale"
            )
        signed = timestamp.strip().encode() + b"." + body
    else:
        signed = body
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise errors.WebhookVerificationError("signature does not match", reason="mismatch")


def parse_webhook_event(headers: Mapping[str, str], body: bytes) -> ProviderEvent:
    """Normalise an already verified webhook body."""
    try:
        wire = CaurisFluxWebhook.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise errors.WebhookVerificationError(
            "body is not a CaurisFlux webhook", reason="bad_body"
        ) from exc
    data = wire.data
    raw_status = data.status or wire.event.rsplit(".", 1)[-1]
    delivery_id = _header(headers, "X-Webhook-Delivery-Id")
    event_id = delivery_id or hashlib.sha256(body).hexdigest()
    currency = _currency(data.currency)
    return ProviderEvent(
        provider=ProviderName.CAURISFLUX,
        event_id=event_id,
        event_type=wire.event,
        external_reference=data.external_reference,
        provider_transaction_id=data.transaction_id,
        status=map_status(raw_status),
        raw_status=raw_status,
        amount=data.amount,
        currency=currency,
        fees=data.fees,
        provider_reference=data.provider_transaction_id,
        failure_code=data.failure_reason or data.error_code,
        failure_message=data.failure_message or data.error_message,
    )


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class CaurisFluxCredentials:
    """The key pair and webhook secret. ``repr`` never shows the secrets."""

    public_key: str
    secret_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)

    def auth_header(self) -> str:
        """``X-API-Key`` value: ``public:secret`` [S1]."""
        return f"{self.public_key}:{self.secret_key}"


class CaurisFluxClient:
    """Thin async client: HTTP calls plus the pure mapping functions above.

    **Parameters:**

    * **http** - a shared ``httpx.AsyncClient``; this class never builds one.
    * **base_url** - e.g. ``https://sandbox-api.caurisflux.com/api/v1``.
    * **credentials** - key pair and webhook secret.
    * **webhook_tolerance_s** - accepted clock skew of webhook timestamps.
    """

    name = ProviderName.CAURISFLUX

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        credentials: CaurisFluxCredentials,
        webhook_tolerance_s: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._tolerance_s = webhook_tolerance_s
        self._clock = clock

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: BaseModel | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {
            "X-API-Key": self._credentials.auth_header(),
            "Accept": "application/json",
        }
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = body.model_dump_json(by_alias=True, exclude_none=True).encode()
        if idempotency_key is not None:
            headers["X-Idempotency-Key"] = idempotency_key
        with map_httpx_errors(PROVIDER, operation):
            response = await self._http.request(
                method, f"{self._base_url}{path}", headers=headers, content=content
            )
        if not 200 <= response.status_code < 300:
            raise classify_error(
                operation,
                response.status_code,
                response.content,
                response.headers,
                now=self._clock(),
            )
        return response

    async def quote_payout(self, request: PayoutQuoteInput) -> PayoutQuote:
        """``POST /payouts/quote``."""
        response = await self._call(
            "POST", "/payouts/quote", operation="quote_payout", body=build_quote_request(request)
        )
        return parse_quote_response(
            response.status_code, response.content, request_currency=request.currency
        )

    async def initiate_payout(self, request: InitiatePayoutInput) -> ProviderTransaction:
        """``POST /payouts/initiate`` with ``X-Idempotency-Key``."""
        response = await self._call(
            "POST",
            "/payouts/initiate",
            operation="initiate_payout",
            body=build_payout_request(request),
            idempotency_key=request.idempotency_key,
        )
        return parse_transaction_response(
            response.status_code, response.content, operation="initiate_payout"
        )

    async def payout_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """``GET /payments/status/{id}`` [S3]."""
        if not lookup.provider_transaction_id:
            raise errors.ProviderProtocolError(
                "CaurisFlux reads status by transaction id only",
                provider=PROVIDER,
                operation="payout_status",
            )
        response = await self._call(
            "GET",
            f"/payments/status/{lookup.provider_transaction_id}",
            operation="payout_status",
        )
        return parse_transaction_response(
            response.status_code, response.content, operation="payout_status"
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verify the signature, then normalise the event."""
        verify_webhook_signature(
            headers,
            body,
            secret=self._credentials.webhook_secret,
            tolerance_s=self._tolerance_s,
            now=self._clock(),
        )
        return parse_webhook_event(headers, body)
