"""Business requests as callers send them, and the rules they must meet.

Parsing (:class:`PayoutRequest`) checks types and formats, field by field. Business rules
that involve several fields or external tables (a number valid for the country, the
country's currency, the provider's operators and limits) are checked by
:func:`check_payout_request`, which reports *every* problem at once. A request with any
problem starts nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from momoflow.ids import REFERENCE_PATTERN
from momoflow.models import Direction, Operator, PayoutInput, PayoutTimings, ProviderName
from momoflow.money import COUNTRY_CURRENCY, Country, Currency, format_amount
from momoflow.providers.capabilities import CAPABILITIES

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"

Reference = Annotated[str, StringConstraints(pattern=REFERENCE_PATTERN)]
Phone = Annotated[str, StringConstraints(pattern=E164_PATTERN)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]


class Recipient(BaseModel):
    """Who receives a payout."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: Phone = Field(description="E.164 mobile number, e.g. +221771234567")
    name: str = Field(min_length=1, max_length=100, description="Full name or business name")


class PayoutRequest(BaseModel):
    """``POST /v1/payouts``: pay a supplier or employee on their mobile wallet."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "reference": "INV-2026-0001",
                    "provider": "caurisflux",
                    "country": "SN",
                    "operator": "wave",
                    "recipient": {"phone": "+221771234567", "name": "Awa Diallo"},
                    "amount": 50000,
                    "currency": "XOF",
                    "description": "Invoice 2026-0001",
                }
            ]
        },
    )

    reference: Reference = Field(
        description="Your unique reference; the same reference never pays twice"
    )
    provider: ProviderName
    country: Country
    operator: Operator
    recipient: Recipient
    amount: StrictInt = Field(gt=0, description="Integer amount in the currency's minor unit")
    currency: Currency
    description: str = Field(default="", max_length=140)
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=20)

    def fingerprint(self, secret: str) -> str:
        """A keyed digest of the whole request, to recognise a reused reference."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()

    def to_input(
        self, *, merchant: str, secret: str, requested_at: datetime, timings: PayoutTimings
    ) -> PayoutInput:
        """The workflow input for this (already checked) request."""
        return PayoutInput(
            merchant=merchant,
            reference=self.reference,
            provider=self.provider,
            country=self.country,
            operator=self.operator,
            recipient_phone=self.recipient.phone,
            recipient_name=self.recipient.name,
            amount=self.amount,
            currency=self.currency,
            description=self.description,
            metadata=dict(self.metadata),
            request_fingerprint=self.fingerprint(secret),
            requested_at=requested_at,
            quote_first=CAPABILITIES[self.provider].quotes_payouts,
            status_by_reference=CAPABILITIES[self.provider].status_by_reference,
            timings=timings,
        )


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule: which field, which rule, and a sentence for humans."""

    field: str
    rule: str
    message: str


def check_phone_for_country(phone: str, country: Country) -> FieldProblem | None:
    """A problem when ``phone`` is not a valid number of ``country``."""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return FieldProblem("recipient.phone", "e164", "not a parseable E.164 phone number")
    region = phonenumbers.region_code_for_number(parsed)
    if not phonenumbers.is_valid_number(parsed):
        return FieldProblem(
            "recipient.phone", "valid_number", "not a valid phone number (wrong length or prefix)"
        )
    if region != country.value:
        return FieldProblem(
            "recipient.phone",
            "number_in_country",
            f"number belongs to {region or 'no country'}, not to country {country.value}",
        )
    return None


def check_payout_request(request: PayoutRequest) -> list[FieldProblem]:
    """Every business rule ``request`` breaks (empty when it may be paid)."""
    problems: list[FieldProblem] = []
    phone_problem = check_phone_for_country(request.recipient.phone, request.country)
    if phone_problem:
        problems.append(phone_problem)
    expected_currency = COUNTRY_CURRENCY[request.country]
    if request.currency is not expected_currency:
        problems.append(
            FieldProblem(
                "currency",
                "currency_of_country",
                f"payouts in {request.country.value} are in {expected_currency.value}, "
                f"not {request.currency.value}",
            )
        )
    caps = CAPABILITIES.get(request.provider)
    if caps is None or Direction.PAYOUT not in caps.directions:
        problems.append(
            FieldProblem(
                "provider", "provider_available", f"{request.provider.value} is not enabled"
            )
        )
        return problems
    operators = caps.operators.get(request.country)
    if operators is None:
        served = ", ".join(sorted(c.value for c in caps.countries()))
        problems.append(
            FieldProblem(
                "country",
                "country_served",
                f"{request.provider.value} does not serve {request.country.value} "
                f"(serves {served})",
            )
        )
    elif request.operator not in operators:
        offered = ", ".join(sorted(o.value for o in operators))
        problems.append(
            FieldProblem(
                "operator",
                "operator_in_country",
                f"{request.provider.value} offers {offered} in {request.country.value}, "
                f"not {request.operator.value}",
            )
        )
    limits = caps.limits_for(Direction.PAYOUT, request.currency, request.country)
    if limits is None:
        problems.append(
            FieldProblem(
                "currency",
                "currency_supported",
                f"{request.provider.value} does not pay out in {request.currency.value}",
            )
        )
    elif not limits.contains(request.amount):
        problems.append(
            FieldProblem(
                "amount",
                "provider_limits",
                f"{request.provider.value} pays out between "
                f"{format_amount(limits.minimum, request.currency)} and "
                f"{format_amount(limits.maximum, request.currency)}",
            )
        )
    return problems
