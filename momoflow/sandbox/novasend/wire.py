"""Request parsing and error bodies of the NovaSend simulator.

Errors are ``{code, message, statusCode}`` [DOC N1, N11], the message in the language of
``Accept-Language`` (``fr`` or ``en``, default ``en``). Field validation answers 400
``validation_error`` (simulator-defined code). Unknown fields are ignored, so the older
schemas (``accountId``…) are accepted [2.11.1]. Enumerations (``country``, ``provider``)
are case-sensitive, as documented (``CI``, ``WAVE``), so that a misspelt value is caught.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from starlette.responses import JSONResponse

from .catalog import SCENARIOS, Language, message

__all__ = [
    "RefundRequest",
    "TransferRequest",
    "language_of",
    "ns_error",
    "parse_json_object",
    "parse_refund",
    "parse_transfer",
]

Kind = Literal["payin", "payout"]


def language_of(accept_language: str | None) -> Language:
    """``fr`` when the first language tag of ``Accept-Language`` is French, else ``en``."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag:
            return "fr" if tag.split("-")[0] == "fr" else "en"
    return "en"


def ns_error(
    status: int,
    code: str,
    language: Language = "en",
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
    **params: object,
) -> JSONResponse:
    """A NovaSend error ``{code, message, statusCode}``."""
    body = {
        "code": code,
        "message": text if text is not None else message(code, language, **params),
        "statusCode": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


class InvalidBody(Exception):
    """The body failed validation; ``detail`` lists the problems."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.detail = "; ".join(errors)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; :class:`InvalidBody` otherwise."""
    try:
        value = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise InvalidBody(["body must be valid JSON"]) from None
    if not isinstance(value, dict):
        raise InvalidBody(["body must be a JSON object"])
    return value


@dataclass(frozen=True)
class TransferRequest:
    """A payin or payout request of either family, normalised."""

    kind: Kind
    direct: bool
    reference: str
    amount: int
    msisdn: str
    country: str
    currency: str | None
    provider: str | None
    otp: str | None
    customer_name: str | None
    success_url: str | None
    failure_url: str | None
    scenario: str | None
    account_id: str | None = None


@dataclass(frozen=True)
class RefundRequest:
    """``POST /v1/payin/{reference}/refund`` body [DOC N8]: no amount (full refund)."""

    reason: str | None
    external_reference: str | None


_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_URL = re.compile(r"^https?://[^\s/]+")


class _Fields:
    """Collects validation errors while reading fields."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def text(self, value: Any, name: str, *, required: bool) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            self.errors.append(f"{name} must be a non-empty string")
            return None
        if len(value) > 255:
            self.errors.append(f"{name} must be at most 255 characters")
            return None
        return value

    def amount(self, value: Any, name: str) -> int | None:
        # A JavaScript backend sees 300.0 as the integer 300.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.errors.append(f"{name} must be an integer")
            return None
        return value

    def msisdn(self, value: Any, name: str) -> str | None:
        if not isinstance(value, str) or not _E164.match(value):
            self.errors.append(f"{name} must be a phone number in E.164 format")
            return None
        return value

    def country(self, value: Any, name: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.errors.append(f"{name} must be a country code")
            return None
        return value

    def url(self, value: Any, name: str) -> str | None:
        if not isinstance(value, str) or not _URL.match(value):
            self.errors.append(f"{name} must be an http(s) URL")
            return None
        return value

    def obj(self, value: Any, name: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.errors.append(f"{name} must be an object")
            return {}
        return value

    def scenario(self, value: Any) -> str | None:
        if value is None:
            return None
        if value not in SCENARIOS:
            self.errors.append(f"sandboxScenario must be one of {', '.join(SCENARIOS)}")
            return None
        assert isinstance(value, str)
        return value


def parse_transfer(
    body: dict[str, Any], kind: Kind, *, direct: bool, older: bool = False
) -> TransferRequest:
    """Validate a create body; :class:`InvalidBody` lists every problem.

    Wallet bodies carry ``amount``, ``msisdn``, ``country`` at the top level [DOC N4, N7];
    Direct bodies nest them with ``provider`` (and ``otp``) under ``payin`` or ``payout``
    [DOC N5, N6]. A direct payout also accepts the ``payin`` key, as the SDK sends it [N14].

    ``older`` reads a wallet session of the older payin page (seed 004): ``accountId`` and
    ``customerName`` are required, ``action`` is not part of it and is ignored. The newer
    schema ignores ``accountId`` (kept for the control API only) [2.11.1].
    """
    fields = _Fields()
    reference = fields.text(body.get("reference"), "reference", required=True)
    raw_account = body.get("accountId")
    if older:
        account_id = fields.text(raw_account, "accountId", required=True)
    else:
        account_id = raw_account if isinstance(raw_account, str) else None
    customer_name = fields.text(body.get("customerName"), "customerName", required=older)
    provider = otp = None
    if direct:
        key = "payin" if kind == "payin" or ("payout" not in body and "payin" in body) else "payout"
        nested = fields.obj(body.get(key), key)
        amount = fields.amount(nested.get("amount"), f"{key}.amount")
        msisdn = fields.msisdn(nested.get("msisdn"), f"{key}.msisdn")
        country = fields.country(nested.get("country"), f"{key}.country")
        provider = fields.text(nested.get("provider"), f"{key}.provider", required=True)
        if kind == "payin":
            otp = fields.text(nested.get("otp"), f"{key}.otp", required=False)
        currency = nested.get("currency", body.get("currency"))
        scenario = fields.scenario(body.get("sandboxScenario", nested.get("sandboxScenario")))
    else:
        amount = fields.amount(body.get("amount"), "amount")
        msisdn = fields.msisdn(body.get("msisdn"), "msisdn")
        country = fields.country(body.get("country"), "country")
        currency = body.get("currency")
        scenario = fields.scenario(body.get("sandboxScenario"))
    if currency is not None and not isinstance(currency, str):
        fields.errors.append("currency must be a string")
    success_url = failure_url = None
    if kind == "payin" and not older:
        action = body.get("action")
        if not isinstance(action, dict):
            fields.errors.append("action must be an object")
        else:
            success_url = fields.url(action.get("successUrl"), "action.successUrl")
            failure_url = fields.url(action.get("failureUrl"), "action.failureUrl")
    if fields.errors:
        raise InvalidBody(fields.errors)
    assert reference is not None and amount is not None and msisdn and country
    return TransferRequest(
        kind=kind,
        direct=direct,
        reference=reference,
        amount=amount,
        msisdn=msisdn,
        country=country,
        currency=currency,
        provider=provider,
        otp=otp,
        customer_name=customer_name,
        success_url=success_url,
        failure_url=failure_url,
        scenario=scenario,
        account_id=account_id,
    )


def parse_refund(body: dict[str, Any]) -> RefundRequest:
    """Validate a refund body (both fields optional strings, simulator-defined)."""
    fields = _Fields()
    reason = fields.text(body.get("reason"), "reason", required=False)
    external = fields.text(body.get("externalReference"), "externalReference", required=False)
    if fields.errors:
        raise InvalidBody(fields.errors)
    return RefundRequest(reason=reason, external_reference=external)
