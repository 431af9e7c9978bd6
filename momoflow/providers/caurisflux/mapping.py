"""CaurisFlux pure mapping: request building, answer parsing, status and error
classification, webhook verification. No I/O."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from momoflow.models import (
    InitiatePayinInput,
    InitiatePayoutInput,
    Operator,
    PayinCreated,
    PayinMode,
    PaymentStatus,
    PayoutQuote,
    PayoutQuoteInput,
    ProviderBalance,
    ProviderEvent,
    ProviderName,
    ProviderTransaction,
)
from momoflow.money import Country, Currency
from momoflow.providers import errors
from momoflow.providers.caurisflux.wire import (
    CaurisFluxBalance,
    CaurisFluxCountry,
    CaurisFluxErrorBody,
    CaurisFluxPage,
    CaurisFluxPayment,
    CaurisFluxPaymentRequest,
    CaurisFluxPayoutRequest,
    CaurisFluxProviderEntry,
    CaurisFluxQuoteRequest,
    CaurisFluxQuoteResponse,
    CaurisFluxRecipient,
    CaurisFluxTransaction,
    CaurisFluxWebhook,
    _Wire,
)
from momoflow.providers.http import json_body, retry_after_seconds

PROVIDER = ProviderName.CAURISFLUX.value

#: Authentication header, ``public:secret`` [S1 option 1, recommended].
AUTH_HEADER = "X-API-Key"
#: Optional idempotency header of the writes [S1, S2]; keys expire after 24 h.
IDEMPOTENCY_HEADER = "X-Idempotency-Key"

#: Operator codes. Only ``wave`` and ``orange_money`` are documented [S2]; the rest assumed.
OPERATOR_CODES: dict[Operator, str] = {
    Operator.WAVE: "wave",
    Operator.ORANGE_MONEY: "orange_money",
    Operator.MTN_MOMO: "mtn_money",
    Operator.MOOV_MONEY: "moov_money",
    Operator.FREE_MONEY: "free_money",
}


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
        # from None: pydantic's message quotes the input, which may hold a phone number.
        raise errors.ProviderProtocolError(
            f"unexpected answer shape (fields: {fields})",
            provider=PROVIDER,
            operation=operation,
            http_status=status,
        ) from None


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


def build_payment_request(request: InitiatePayinInput) -> CaurisFluxPaymentRequest:
    """Body of ``POST /payments/initiate``: ``direct`` names the operator and the customer's
    number; ``checkout`` sends the customer to CaurisFlux's hosted page [S2]."""
    operator: str | None
    if request.mode is PayinMode.DIRECT:
        if request.operator is None or not request.customer_phone:
            raise errors.InvalidRequest(
                "direct payins need an operator and the customer's phone number",
                provider=PROVIDER,
                operation="initiate_payin",
            )
        kind, operator = "direct", OPERATOR_CODES[request.operator]
    elif request.mode is PayinMode.CHECKOUT:
        kind = "checkout"
        operator = OPERATOR_CODES[request.operator] if request.operator else None
    else:
        raise errors.UnsupportedOperation(
            "CaurisFlux offers direct and checkout payins, not QR",
            provider=PROVIDER,
            operation="initiate_payin",
        )
    return CaurisFluxPaymentRequest(
        type=kind,
        amount=request.amount,
        currency=request.currency.value,
        external_reference=request.external_reference,
        provider=operator,
        country=request.country.value,
        customer_phone=request.customer_phone,
        customer_name=request.customer_name,
        description=request.description or request.external_reference,
        callback_url=request.callback_url,
        return_url=request.return_url,
        cancel_url=request.cancel_url,
    )


def parse_payment_response(status: int, body: bytes) -> PayinCreated:
    """A 2xx ``/payments/initiate`` answer as a :class:`PayinCreated`."""
    payload = unwrap_envelope(
        json_body(body, provider=PROVIDER, operation="initiate_payin", http_status=status)
    )
    wire = _validate(CaurisFluxPayment, payload, operation="initiate_payin", status=status)
    return PayinCreated(
        transaction=to_transaction(wire),
        payment_url=wire.redirect_url,
        deep_links=wire.deep_links or {},
        qr_code=wire.qr_code,
        expires_at=wire.expires_at,
        confirmation_required=True,
    )


def parse_balance_response(status: int, body: bytes) -> list[ProviderBalance]:
    """``GET /payments/balance``: one balance (XOF unless it says otherwise)."""
    payload = unwrap_envelope(
        json_body(body, provider=PROVIDER, operation="balances", http_status=status)
    )
    wire = _validate(CaurisFluxBalance, payload, operation="balances", status=status)
    currency = _currency(wire.currency)
    if currency is None:
        return []
    available = wire.available_balance if wire.available_balance is not None else wire.balance
    return [
        ProviderBalance(
            provider=ProviderName.CAURISFLUX,
            currency=currency,
            balance=wire.balance,
            available=available,
        )
    ]


_OPERATORS_BY_CODE = {code: operator for operator, code in OPERATOR_CODES.items()}

#: ``limit`` asked of every list: the documented maximum [S1 "Pagination"].
LIST_PAGE_LIMIT = 100


def parse_list_page(status: int, body: bytes, *, operation: str, page: int) -> CaurisFluxPage:
    """One answer of a list endpoint, asked for page ``page``.

    The documented shape is ``{data: [...], meta: {total, page, limit, totalPages}}`` [S1];
    a bare array and ``{success, data: [...]}`` (what the older sandbox and the payment
    envelope use) are read as a whole list, with no ``meta``. A ``meta`` naming another page
    than the one asked for is a protocol error: following it could loop or skip pages.
    """
    payload = json_body(body, provider=PROVIDER, operation=operation, http_status=status)
    if isinstance(payload, list):
        return CaurisFluxPage(data=payload)
    if isinstance(payload, dict) and "meta" not in payload and "success" in payload:
        payload = unwrap_envelope(payload)
        if isinstance(payload, list):
            return CaurisFluxPage(data=payload)
    listing = _validate(CaurisFluxPage, payload, operation=operation, status=status)
    meta = listing.meta
    if meta is not None and meta.page != page:
        raise errors.ProviderProtocolError(
            f"asked for page {page}, the answer is page {meta.page}",
            provider=PROVIDER,
            operation=operation,
            http_status=status,
        )
    if meta is not None and not listing.data and page < meta.total_pages:
        raise errors.ProviderProtocolError(
            f"page {page} of {meta.total_pages} is empty",
            provider=PROVIDER,
            operation=operation,
            http_status=status,
        )
    return listing


def next_page(listing: CaurisFluxPage) -> int | None:
    """The page to ask for after ``listing``, or None when it was the last one."""
    meta = listing.meta
    if meta is None or meta.page >= meta.total_pages:
        return None
    return meta.page + 1


def parse_operators(
    provider_entries: Sequence[Any], country_entries: Sequence[Any] | None
) -> dict[Country, list[Operator]]:
    """Active operators per active country, from the items of ``/payments/providers`` and
    ``/countries/active``; codes momoflow does not know (cards, banks) are skipped."""
    countries: set[str] | None = None
    if country_entries is not None:
        countries = {CaurisFluxCountry.model_validate(c).code for c in country_entries}
    offered: dict[Country, list[Operator]] = {}
    for raw in provider_entries:
        entry = CaurisFluxProviderEntry.model_validate(raw)
        operator = _OPERATORS_BY_CODE.get(entry.code)
        if not entry.active or operator is None or entry.country is None:
            continue
        if entry.country not in Country.__members__:
            continue
        if countries is not None and entry.country not in countries:
            continue
        operators = offered.setdefault(Country(entry.country), [])
        if operator not in operators:
            operators.append(operator)
    return offered


#: Every error code the CaurisFlux documents name, and the error it means (providers.md
#: 1.5): the lowercase "common codes" [S1], the payout ``errorCode`` values [S3] and the
#: uppercase codes of the errors guide [S5] (codes are compared case-insensitively).
#: ``insufficient_funds`` is the payer's money: ours on a payout, the customer's on a
#: payin (:data:`_PAYIN_OVERRIDES`).
DOCUMENTED_ERROR_CODES: dict[str, type[errors.ProviderError]] = {
    # S1 "Codes d'erreur courants"
    "insufficient_funds": errors.InsufficientBalance,
    "invalid_phone": errors.InvalidRecipient,
    "invalid_amount": errors.InvalidAmount,
    # Retried: not proof that nothing was created (S3 shows it on an existing payout).
    "provider_error": errors.UpstreamError,
    "limit_exceeded": errors.LimitExceeded,
    # S3 payout errorCode values
    "invalid_recipient": errors.InvalidRecipient,
    "insufficient_balance": errors.InsufficientBalance,
    "account_blocked": errors.RecipientAccountBlocked,
    # S5 errors guide
    "unauthorized": errors.ProviderAuthError,
    "forbidden": errors.ProviderAuthError,
    "validation_error": errors.InvalidRequest,
    "rate_limit_exceeded": errors.ProviderRateLimited,
    "daily_limit_exceeded": errors.LimitExceeded,
    "refund_not_allowed": errors.InvalidRequest,
    "invalid_refund_amount": errors.InvalidAmount,
}

#: Codes momoflow assumes where the documents are silent (providers.md 1.12.5, 1.12.6).
ASSUMED_ERROR_CODES: dict[str, type[errors.ProviderError]] = {
    "quote_expired": errors.QuoteExpired,
    "quote_not_found": errors.QuoteExpired,
    "idempotency_key_reuse": errors.IdempotencyConflict,
    "duplicate_reference": errors.DuplicateReference,
}

_ERROR_CODES = {**DOCUMENTED_ERROR_CODES, **ASSUMED_ERROR_CODES}

_PAYIN_OPERATIONS = frozenset({"initiate_payin", "payin_status"})
_PAYIN_OVERRIDES: dict[str, type[errors.ProviderError]] = {
    "insufficient_funds": errors.InsufficientFunds,
}

#: Documented messages [S1, S2] for bodies that carry no code.
_REJECTION_MESSAGES: dict[str, type[errors.ProviderRejected]] = {
    "provider non disponible": errors.OperatorUnavailable,
    "montant invalide": errors.InvalidAmount,
    "le montant doit": errors.InvalidAmount,
    "quote invalide": errors.QuoteExpired,
    "quote expir": errors.QuoteExpired,
}


def error_type_for_code(code: str, operation: str) -> type[errors.ProviderError] | None:
    """The error a CaurisFlux error code means for ``operation``; None for a code no
    document names (the HTTP status then decides)."""
    lowered = code.strip().lower()
    if operation in _PAYIN_OPERATIONS and lowered in _PAYIN_OVERRIDES:
        return _PAYIN_OVERRIDES[lowered]
    return _ERROR_CODES.get(lowered)


def classify_error(
    operation: str, status: int, body: bytes, headers: Mapping[str, str], *, now: float
) -> errors.ProviderError:
    """The error a non-2xx CaurisFlux answer means (rule 6 of the design).

    In order: a rate limit (429 or ``RATE_LIMIT_EXCEEDED``) waits; 409 is a conflict
    (reconcile); 401 and 403 are our credentials; ``provider_error`` is retried whatever
    the status, since on a create it does not prove that nothing was created; 5xx and 408
    are unknown outcomes; then the error code, then the documented messages.
    """
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
    by_code = error_type_for_code(code, operation) if code else None
    if status == 429 or by_code is errors.ProviderRateLimited:
        return errors.ProviderRateLimited(
            message, retry_after=retry_after_seconds(headers, now=now), **common
        )
    if status == 409:
        if by_code is errors.DuplicateReference:
            return errors.DuplicateReference(message, **common)
        return errors.IdempotencyConflict(message, **common)
    if status in (401, 403):
        return errors.ProviderAuthError(message, **common)
    if by_code is errors.UpstreamError:
        return errors.UpstreamError(message, **common)
    if status >= 500 or status == 408:
        return errors.ProviderUnavailable(message, **common)
    if by_code is not None:
        return by_code(message, **common)
    lowered_message = message.lower()
    for fragment, error_type in _REJECTION_MESSAGES.items():
        if fragment in lowered_message:
            return error_type(message, **common)
    if status == 404 and operation in ("payout_status", "payin_status"):
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
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    tolerance_s: int,
    now: float,
    allow_legacy: bool = False,
) -> None:
    """Check ``X-Webhook-Signature`` over ``"{timestamp}.{raw body}"`` [S7].

    The legacy form (an HMAC of the body alone, no timestamp header), which the vendor
    plugin still accepts, never expires: a captured delivery could be replayed at any time.
    It is refused (``no_timestamp``) unless ``allow_legacy``; then a replay is bounded by the
    event's id (the delivery id, else a hash of the body), which the transaction keeps for
    its whole life and drops when seen again.
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
    elif allow_legacy:
        signed = body
    else:
        raise errors.WebhookVerificationError(
            "no X-Webhook-Timestamp: a signature of the body alone could be replayed at any "
            "time, so it is refused (MOMOFLOW_CAURISFLUX__ALLOW_LEGACY_SIGNATURES allows it)",
            reason="no_timestamp",
        )
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise errors.WebhookVerificationError("signature does not match", reason="mismatch")


def parse_webhook_event(headers: Mapping[str, str], body: bytes) -> ProviderEvent:
    """Normalise an already verified webhook body."""
    try:
        wire = CaurisFluxWebhook.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError) as exc:
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
