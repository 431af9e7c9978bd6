"""Request parsing and error bodies of the CaurisFlux simulator.

Validation answers like a NestJS ``ValidationPipe``: 400 with ``message`` as a list of
French sentences [DOC S1, CODE S7 accepts string or list]. Unknown fields are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

from .catalog import (
    COUNTRIES,
    CURRENCIES,
    validate_amount,
    validate_choice,
    validate_phone,
    validate_text,
    validate_url,
)

__all__ = [
    "PayinRequest",
    "PayoutRequest",
    "QuoteRequest",
    "http_phrase",
    "nest_error",
    "parse_json_object",
    "parse_payin",
    "parse_payout",
    "parse_quote",
]


def http_phrase(status: int) -> str:
    """The reason phrase of ``status`` ("Error" for a code Python does not know)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def nest_error(
    status: int,
    message: str | list[str],
    *,
    code: str | None = None,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A NestJS-shaped error ``{statusCode, message, error[, code]}``."""
    body: dict[str, Any] = {
        "statusCode": status,
        "message": message,
        "error": error or http_phrase(status),
    }
    if code is not None:
        body["code"] = code
    return JSONResponse(body, status_code=status, headers=headers)


def parse_json_object(raw: bytes) -> dict[str, Any] | JSONResponse:
    """The JSON object in ``raw``, or the 400 a NestJS body parser would answer."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return nest_error(400, "Corps de requête JSON invalide")
    if not isinstance(value, dict):
        return nest_error(400, "Le corps de la requête doit être un objet JSON")
    return value


@dataclass(frozen=True)
class QuoteRequest:
    """``POST /payouts/quote`` body (schema assumed, providers.md 1.12.6)."""

    amount: int
    currency: str
    country: str
    method: str
    provider: str


def parse_quote(body: dict[str, Any], errors: list[str]) -> QuoteRequest | None:
    """Validate the quote fields (also used by the no-quote payout variant, 1.12.7)."""
    currency = validate_choice(body.get("currency", "XOF"), "currency", CURRENCIES, errors)
    amount = validate_amount(body.get("amount"), currency or "XOF", errors)
    country = validate_choice(body.get("country"), "country", tuple(COUNTRIES), errors)
    method = validate_choice(
        body.get("method"), "method", ("mobile_money", "bank_transfer"), errors
    )
    provider = validate_text(body.get("provider"), "provider", errors, required=True)
    if None in (amount, currency, country, method, provider):
        return None
    assert amount is not None and currency and country and method and provider
    return QuoteRequest(amount, currency, country, method, provider)


@dataclass(frozen=True)
class PayoutRequest:
    """``POST /payouts/initiate`` body: with ``quote_id`` [DOC S4] or ``inline`` (1.12.7)."""

    quote_id: str | None
    inline: QuoteRequest | None
    external_reference: str
    phone: str
    first_name: str
    last_name: str
    description: str | None
    callback_url: str | None
    metadata: dict[str, Any] | None


def _metadata(value: Any, errors: list[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append("metadata doit être un objet")
        return None
    return value


def parse_payout(body: dict[str, Any]) -> PayoutRequest | list[str]:
    """Validate a payout request; the list of messages when invalid."""
    errors: list[str] = []
    quote_id: str | None = None
    inline: QuoteRequest | None = None
    if "quoteId" in body:
        quote_id = validate_text(body.get("quoteId"), "quoteId", errors, required=True)
    else:
        inline = parse_quote(body, errors)
    reference = validate_text(
        body.get("externalReference"), "externalReference", errors, required=True
    )
    recipient = body.get("recipient")
    phone = first_name = last_name = None
    if not isinstance(recipient, dict):
        errors.append("recipient doit être un objet")
    else:
        phone = validate_phone(recipient.get("phone"), "recipient.phone", errors)
        first_name = validate_text(
            recipient.get("firstName"), "recipient.firstName", errors, required=True
        )
        last_name = validate_text(
            recipient.get("lastName"), "recipient.lastName", errors, required=True
        )
    description = validate_text(body.get("description"), "description", errors, required=False)
    callback_url = validate_url(body.get("callbackUrl"), "callbackUrl", errors)
    metadata = _metadata(body.get("metadata"), errors)
    if errors:
        return errors
    assert reference and phone and first_name and last_name
    return PayoutRequest(
        quote_id=quote_id,
        inline=inline,
        external_reference=reference,
        phone=phone,
        first_name=first_name,
        last_name=last_name,
        description=description,
        callback_url=callback_url,
        metadata=metadata,
    )


@dataclass(frozen=True)
class PayinRequest:
    """``POST /payments/initiate`` body [DOC S2]."""

    type: str
    amount: int
    currency: str
    external_reference: str
    provider: str | None
    country: str | None
    customer_phone: str | None
    customer_name: str | None
    customer_email: str | None
    description: str | None
    callback_url: str | None
    return_url: str | None
    cancel_url: str | None
    metadata: dict[str, Any] | None


def parse_payin(body: dict[str, Any]) -> PayinRequest | list[str]:
    """Validate a payment request; ``provider``, ``country`` and ``customerPhone`` are
    required for ``type=direct`` only [DOC S2]."""
    errors: list[str] = []
    kind = validate_choice(body.get("type"), "type", ("direct", "checkout"), errors)
    currency = validate_choice(body.get("currency", "XOF"), "currency", CURRENCIES, errors)
    amount = validate_amount(body.get("amount"), currency or "XOF", errors)
    reference = validate_text(
        body.get("externalReference"), "externalReference", errors, required=True
    )
    direct = kind == "direct"
    provider = validate_text(body.get("provider"), "provider", errors, required=direct)
    country: str | None = None
    if direct or body.get("country") is not None:
        country = validate_choice(body.get("country"), "country", tuple(COUNTRIES), errors)
    phone: str | None = None
    if direct or body.get("customerPhone") is not None:
        phone = validate_phone(body.get("customerPhone"), "customerPhone", errors)
    name = validate_text(body.get("customerName"), "customerName", errors, required=False)
    email = validate_text(body.get("customerEmail"), "customerEmail", errors, required=False)
    if email is not None and "@" not in email:
        errors.append("customerEmail doit être une adresse e-mail valide")
    description = validate_text(body.get("description"), "description", errors, required=False)
    callback_url = validate_url(body.get("callbackUrl"), "callbackUrl", errors)
    return_url = validate_url(body.get("returnUrl"), "returnUrl", errors)
    cancel_url = validate_url(body.get("cancelUrl"), "cancelUrl", errors)
    metadata = _metadata(body.get("metadata"), errors)
    if errors:
        return errors
    assert kind and amount is not None and currency and reference
    return PayinRequest(
        type=kind,
        amount=amount,
        currency=currency,
        external_reference=reference,
        provider=provider,
        country=country,
        customer_phone=phone,
        customer_name=name,
        customer_email=email,
        description=description,
        callback_url=callback_url,
        return_url=return_url,
        cancel_url=cancel_url,
        metadata=metadata,
    )
