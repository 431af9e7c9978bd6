"""Error bodies and request parsing of the MOBILE-PAY simulator.

The error body is assumed (providers.md 3.4.6): ``{"error": {"code", "message"}}`` with an
UPPER_SNAKE code and a French message. Malformed bodies (not JSON, a field missing or of the
wrong type) answer 400 ``VALIDATION_ERROR``; well-formed values the provider would refuse
(country, phone, amount) answer 422 with their own code. Unknown fields are ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse

from .catalog import DOMESTIC, INTERNATIONAL, MAX_AMOUNT, MIN_AMOUNT, error_message

__all__ = [
    "ListQuery",
    "QrPaymentRequest",
    "TransferRequest",
    "default_error",
    "mp_error",
    "parse_json_object",
    "parse_list_query",
    "parse_login",
    "parse_qr_payment",
    "parse_transfer",
]

_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("VALIDATION_ERROR", "Requête invalide"),
    401: ("UNAUTHORIZED", "Authentification requise"),
    403: ("FORBIDDEN", "Accès refusé"),
    404: ("NOT_FOUND", "Ressource introuvable"),
    405: ("METHOD_NOT_ALLOWED", "Méthode non autorisée"),
    409: ("CONFLICT", "Conflit"),
    422: ("UNPROCESSABLE_ENTITY", "Requête non traitable"),
    429: ("RATE_LIMITED", "Trop de requêtes, veuillez réessayer plus tard"),
    500: ("INTERNAL_ERROR", "Erreur interne du serveur"),
    502: ("BAD_GATEWAY", "Passerelle défaillante"),
    503: ("SERVICE_UNAVAILABLE", "Service temporairement indisponible"),
    504: ("GATEWAY_TIMEOUT", "Délai d'attente dépassé"),
}

_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LIMIT = 100
DEFAULT_LIMIT = 20


def default_error(status: int) -> tuple[str, str]:
    """Default ``(code, message)`` for an HTTP status."""
    if status in _DEFAULTS:
        return _DEFAULTS[status]
    try:
        return HTTPStatus(status).name, HTTPStatus(status).phrase
    except ValueError:
        return "ERROR", "Erreur"


def mp_error(
    status: int,
    code: str | None = None,
    message: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """``{"error": {"code", "message"}}`` with defaults taken from the HTTP status."""
    default_code, default_message = default_error(status)
    body = {"error": {"code": code or default_code, "message": message or default_message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid(messages: list[str]) -> JSONResponse:
    return mp_error(400, "VALIDATION_ERROR", "Requête invalide : " + " ; ".join(messages))


def parse_json_object(raw: bytes) -> dict[str, Any] | JSONResponse:
    """The JSON object in ``raw``, or 400 ``VALIDATION_ERROR``."""
    try:
        value = json.loads(raw) if raw.strip() else None
    except ValueError:
        return _invalid(["le corps n'est pas du JSON valide"])
    if not isinstance(value, dict):
        return _invalid(["le corps doit être un objet JSON"])
    return value


def _text(body: dict[str, Any], field: str, errors: list[str], *, required: bool) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            errors.append(f"{field} est requis")
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{field} doit être une chaîne non vide")
        return None
    if len(value) > 255:
        errors.append(f"{field} ne doit pas dépasser 255 caractères")
        return None
    return value


def _number(body: dict[str, Any], errors: list[str]) -> int | float | None:
    value = body.get("amount")
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append("amount est requis et doit être un nombre")
        return None
    return value


def _metadata(body: dict[str, Any], errors: list[str]) -> dict[str, Any] | None:
    value = body.get("metadata")
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append("metadata doit être un objet")
        return None
    return value


def _amount_error(amount: int | float) -> JSONResponse | None:
    if isinstance(amount, float) and not amount.is_integer():
        return mp_error(422, "INVALID_AMOUNT", "Le montant doit être un entier en XOF")
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        message = f"Le montant doit être compris entre {MIN_AMOUNT} et {MAX_AMOUNT} XOF"
        return mp_error(422, "INVALID_AMOUNT", message)
    return None


def _phone_error(phone: str, dial_code: str, where: str) -> JSONResponse | None:
    if not _E164.match(phone) or not phone.startswith("+" + dial_code):
        message = f"{error_message('INVALID_PHONE')} : +{dial_code} attendu ({where})"
        return mp_error(422, "INVALID_PHONE", message)
    return None


@dataclass(frozen=True)
class TransferRequest:
    """``POST /transfers/local`` or ``/transfers/international`` (M1 parameters, 3.4.2)."""

    recipient_phone: str
    amount: int
    description: str | None
    metadata: dict[str, Any] | None
    recipient_country: str | None


def parse_transfer(body: dict[str, Any], *, international: bool) -> TransferRequest | JSONResponse:
    """Validate a transfer body. ``description`` is required for local transfers only, as in
    the M1 parameter lists; ``metadata`` is an assumed free object."""
    errors: list[str] = []
    country_code = (
        _text(body, "recipient_country", errors, required=True) if international else None
    )
    phone = _text(body, "recipient_phone", errors, required=True)
    amount = _number(body, errors)
    description = _text(body, "description", errors, required=not international)
    metadata = _metadata(body, errors)
    if errors:
        return _invalid(errors)
    assert phone is not None and amount is not None
    if international:
        country = INTERNATIONAL.get(country_code or "")
        if country is None:
            known = ", ".join(INTERNATIONAL)
            message = (
                f"{error_message('INVALID_COUNTRY')} : {country_code} (pays acceptés : {known})"
            )
            return mp_error(422, "INVALID_COUNTRY", message)
        rejected = _phone_error(phone, country.dial_code, country.name)
    else:
        rejected = _phone_error(phone, DOMESTIC.dial_code, "transfert local")
    rejected = rejected or _amount_error(amount)
    if rejected is not None:
        return rejected
    return TransferRequest(phone, int(amount), description, metadata, country_code)


@dataclass(frozen=True)
class QrPaymentRequest:
    """``POST /payments/qr`` (M1 parameters)."""

    amount: int
    description: str
    merchant_id: str
    metadata: dict[str, Any] | None


def parse_qr_payment(body: dict[str, Any]) -> QrPaymentRequest | JSONResponse:
    """Validate a QR payment body (same amount limits as transfers, simulator-defined)."""
    errors: list[str] = []
    amount = _number(body, errors)
    description = _text(body, "description", errors, required=True)
    merchant_id = _text(body, "merchant_id", errors, required=True)
    metadata = _metadata(body, errors)
    if errors:
        return _invalid(errors)
    assert amount is not None and description is not None and merchant_id is not None
    rejected = _amount_error(amount)
    if rejected is not None:
        return rejected
    return QrPaymentRequest(int(amount), description, merchant_id, metadata)


def parse_login(body: dict[str, Any]) -> tuple[str, str] | JSONResponse:
    """``(email, password)`` of ``POST /auth/login``."""
    errors: list[str] = []
    email = _text(body, "email", errors, required=True)
    password = _text(body, "password", errors, required=True)
    if errors:
        return _invalid(errors)
    assert email is not None and password is not None
    return email, password


@dataclass(frozen=True)
class ListQuery:
    """``GET /transactions`` parameters; bounds are Unix milliseconds, both inclusive."""

    limit: int
    offset: int
    start_ms: int | None
    end_ms: int | None


def _integer(params: QueryParams, name: str, default: int, errors: list[str]) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        errors.append(f"{name} doit être un entier")
        return default


def _bound(params: QueryParams, name: str, errors: list[str], *, end: bool) -> int | None:
    """A date (whole UTC day, inclusive) or an ISO datetime (naive = UTC), in ms."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end:
                return _ms(moment + timedelta(days=1)) - 1
            return _ms(moment)
        # An unencoded "+01:00" offset reaches us as " 01:00" (a "+" in a query is a space).
        text = raw[:11] + raw[11:].replace(" ", "+")
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        errors.append(f"{name} doit être une date ISO-8601 (AAAA-MM-JJ)")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    # An end bound keeps every millisecond it touches; a start bound only those it covers.
    return micros // 1000 if end else -(-micros // 1000)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def parse_list_query(params: QueryParams) -> ListQuery | JSONResponse:
    """Validate ``limit`` (default 20, 1..100), ``offset`` (>= 0) and the date bounds."""
    errors: list[str] = []
    limit = _integer(params, "limit", DEFAULT_LIMIT, errors)
    offset = _integer(params, "offset", 0, errors)
    if not 1 <= limit <= MAX_LIMIT:
        errors.append(f"limit doit être compris entre 1 et {MAX_LIMIT}")
    if offset < 0:
        errors.append("offset doit être positif ou nul")
    start = _bound(params, "start_date", errors, end=False)
    end = _bound(params, "end_date", errors, end=True)
    if errors:
        return _invalid(errors)
    return ListQuery(limit, offset, start, end)
