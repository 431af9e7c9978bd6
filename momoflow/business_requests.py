"""Business requests as callers send them, and the rules they must meet.

Parsing (:class:`PayoutRequest`) checks types and formats, field by field, and writes phone
numbers in E.164 (national numbers are read as numbers of the request's ``country``). Business
rules that involve several fields or external tables (a number valid for the country, the
country's currency, the provider's operators and limits) are checked by
:func:`check_payout_request`, which reports *every* problem at once. A request with any
problem starts nothing. What a provider accepts, and any rule of its own, come from its
:class:`~momoflow.providers.spec.ProviderSpec`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from momoflow.ids import REFERENCE_PATTERN
from momoflow.models import (
    Direction,
    Operator,
    PayinInput,
    PayinMode,
    PayinTimings,
    PayoutInput,
    PayoutTimings,
    ProviderName,
)
from momoflow.money import (
    COUNTRY_CURRENCY,
    MINOR_UNIT_EXPONENT,
    Country,
    Currency,
    format_amount,
)
from momoflow.outbound import DestinationPolicy
from momoflow.phones import normalize_phone, phone_problem
from momoflow.problems import FieldProblem
from momoflow.providers.catalog import capabilities_of, find_spec
from momoflow.providers.spec import ProviderSpec

__all__ = [
    "Customer",
    "FieldProblem",
    "PayinRequest",
    "PayoutRequest",
    "Recipient",
    "amount_advice",
    "check_notify_url",
    "check_payin_request",
    "check_payout_request",
    "check_phone_for_country",
]


def _whole_amount(value: object) -> object:
    """Let integers through; refuse anything else with advice on the integer to send."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise PydanticCustomError("whole_number", "{advice}", {"advice": amount_advice(value)})


def amount_advice(value: object) -> str:
    """Why ``value`` is not an amount, and what to send instead. A fractional value is never
    rounded for the caller: it may be a unit mix-up, and only the caller knows."""
    without = " and ".join(c.value for c, e in MINOR_UNIT_EXPONENT.items() if e == 0)
    unit = f"an integer in the currency's minor unit ({without} have none)"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        if abs(value) < 1e15:
            return f"amount must be {unit}: write {int(value)}, not {value!r}"
        return f"amount must be {unit}, written without a decimal point or exponent"
    if isinstance(value, float) and math.isfinite(value):
        return f"amount must be {unit}: {value!r} has decimals"
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 20:
            return f'amount must be a JSON number, not a string: write {int(text)}, not "{text}"'
        return f"amount must be {unit}, written as a JSON number (50000), not a string"
    return f"amount must be {unit}, for example 50000"


#: Unicode categories refused in free text: controls (NUL, CR, LF, tab, ESC, C1), invisible
#: format characters (bidi embeddings, overrides and isolates such as U+202E, zero-width
#: space and joiners, word joiner, BOM, soft hyphen), line and paragraph separators, and
#: lone surrogates. They would reach providers, reports and back offices, where they can
#: forge a line break or reverse what a reader sees.
_UNCLEAN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def clean_text(value: str) -> str:
    """Refuse ``value`` when it holds a control or invisible formatting character
    (``clean_text``), naming the first one and where it is."""
    for index, char in enumerate(value):
        if unicodedata.category(char) in _UNCLEAN_CATEGORIES:
            raise PydanticCustomError(
                "clean_text",
                "must not contain control or invisible formatting characters: found "
                "U+{code} ({name}) at character {position}",
                {
                    "code": f"{ord(char):04X}",
                    "name": unicodedata.name(char, "a control character"),
                    "position": index + 1,
                },
            )
    return value


#: Free text that reaches providers, reports and people: no control or invisible
#: formatting character (:func:`clean_text`).
CleanText = Annotated[str, AfterValidator(clean_text)]

Reference = Annotated[str, StringConstraints(pattern=REFERENCE_PATTERN)]
#: A phone number as the caller writes it: international (``+221 77 123 45 67``,
#: ``00221…``) or national for the request's country (``77 123 45 67``). Parsing writes it
#: in E.164; :func:`check_phone_for_country` says in words what is wrong with it.
Phone = Annotated[str, StringConstraints(max_length=40)]
#: An integer amount in the currency's minor unit; floats and strings are refused with a
#: message that says so (``whole_number``), never rounded.
Amount = Annotated[
    StrictInt,
    BeforeValidator(_whole_amount),
    Field(gt=0, description="Integer amount in the currency's minor unit (XOF and XAF have none)"),
]
MetadataKey = Annotated[
    str, StringConstraints(min_length=1, max_length=40), AfterValidator(clean_text)
]
MetadataValue = Annotated[str, StringConstraints(max_length=500), AfterValidator(clean_text)]


class Recipient(BaseModel):
    """Who receives a payout."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: Phone = Field(
        description="Mobile number in international form (+221771234567) or as a national "
        "number of the request's country (77 123 45 67); answered in E.164",
        examples=["+221771234567"],
    )
    name: CleanText = Field(min_length=1, max_length=100, description="Full name or business name")


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
    amount: Amount
    currency: Currency
    description: CleanText = Field(default="", max_length=140)
    notify_url: AnyHttpUrl | None = Field(
        default=None, description="Your endpoint for signed notifications (docs/notifications.md)"
    )
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=20)

    @model_validator(mode="after")
    def _phone_in_e164(self) -> Self:
        # Before anything is derived (the fingerprint above all): the same payout sent with
        # a national and then an international number is the same request.
        phone = normalize_phone(self.recipient.phone, self.country)
        if phone != self.recipient.phone:
            self.recipient = self.recipient.model_copy(update={"phone": phone})
        return self

    def fingerprint(self, secret: str) -> str:
        """A keyed digest of the whole request, to recognise a reused reference."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()

    def to_input(
        self,
        *,
        merchant: str,
        secret: str,
        requested_at: datetime,
        timings: PayoutTimings,
        confirm_final_webhooks: bool = True,
    ) -> PayoutInput:
        """The workflow input for this (already checked) request. ``confirm_final_webhooks``
        comes from the provider's settings (``Settings.confirms_payout_webhooks``)."""
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
            notify_url=str(self.notify_url) if self.notify_url else None,
            quote_first=capabilities_of(self.provider).quotes_payouts,
            status_by_reference=capabilities_of(self.provider).status_by_reference,
            confirm_final_webhooks=confirm_final_webhooks,
            timings=timings,
        )


def check_phone_for_country(
    phone: str, country: Country, field: str = "recipient.phone"
) -> FieldProblem | None:
    """A problem when ``phone`` is not a valid number of ``country``; the message says in
    words how to write one (``e164``, ``valid_number`` or ``number_in_country``)."""
    problem = phone_problem(phone, country)
    if problem is None:
        return None
    return FieldProblem(field, problem.rule, problem.message)


def check_payout_request(
    request: PayoutRequest, specs: Sequence[ProviderSpec[Any]] | None = None
) -> list[FieldProblem]:
    """Every business rule ``request`` breaks (empty when it may be paid); the provider is
    looked up in ``specs`` (default: the discovered ones)."""
    problems: list[FieldProblem] = []
    recipient_phone = check_phone_for_country(request.recipient.phone, request.country)
    if recipient_phone:
        problems.append(recipient_phone)
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
    spec = find_spec(request.provider, specs)
    if spec is None or Direction.PAYOUT not in spec.capabilities.directions:
        problems.append(
            FieldProblem(
                "provider", "provider_available", f"{request.provider.value} is not enabled"
            )
        )
        return problems
    caps = spec.capabilities
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
    problems += spec.payout_rules(request)
    return problems


class Customer(BaseModel):
    """Who pays a payin."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: Phone | None = Field(
        default=None,
        description="Mobile number in international form or as a national number of the "
        "request's country; answered in E.164. Required for direct payins",
        examples=["+2250701020304"],
    )
    name: CleanText | None = Field(default=None, max_length=100)


class PayinRequest(BaseModel):
    """``POST /v1/payins``: collect money from a customer."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "reference": "ORDER-2026-0042",
                    "provider": "novasend",
                    "mode": "direct",
                    "country": "CI",
                    "operator": "wave",
                    "customer": {"phone": "+2250701020304", "name": "Aya Kone"},
                    "amount": 15000,
                    "currency": "XOF",
                    "description": "Order 2026-0042",
                    "return_url": "https://shop.example/paid",
                    "notify_url": "https://shop.example/momoflow/events",
                }
            ]
        },
    )

    reference: Reference = Field(description="Your unique reference; never collected twice")
    provider: ProviderName
    mode: PayinMode = Field(
        description="direct (push to the operator), checkout (hosted link) or qr"
    )
    country: Country
    operator: Operator | None = Field(default=None, description="Required for direct payins")
    customer: Customer = Field(default_factory=Customer)
    amount: Amount
    currency: Currency
    description: CleanText = Field(default="", max_length=140)
    otp: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4,8}$",
        description="The customer's one-time code (Orange Money direct payins at NovaSend)",
    )
    return_url: AnyHttpUrl | None = Field(
        default=None, description="Where the customer lands after paying"
    )
    cancel_url: AnyHttpUrl | None = None
    notify_url: AnyHttpUrl | None = Field(
        default=None, description="Your endpoint for signed notifications (docs/notifications.md)"
    )
    metadata: dict[MetadataKey, MetadataValue] = Field(default_factory=dict, max_length=20)

    @model_validator(mode="after")
    def _phone_in_e164(self) -> Self:
        # As for payouts: the fingerprint must see one form of the number.
        if self.customer.phone is not None:
            phone = normalize_phone(self.customer.phone, self.country)
            if phone != self.customer.phone:
                self.customer = self.customer.model_copy(update={"phone": phone})
        return self

    def fingerprint(self, secret: str) -> str:
        """A keyed digest of the whole request, to recognise a reused reference."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()

    def to_input(
        self, *, merchant: str, secret: str, requested_at: datetime, timings: PayinTimings
    ) -> PayinInput:
        """The workflow input for this (already checked) request."""
        caps = capabilities_of(self.provider)
        return PayinInput(
            merchant=merchant,
            reference=self.reference,
            provider=self.provider,
            mode=self.mode,
            country=self.country,
            operator=self.operator,
            customer_phone=self.customer.phone,
            customer_name=self.customer.name,
            amount=self.amount,
            currency=self.currency,
            description=self.description,
            otp=self.otp,
            return_url=str(self.return_url) if self.return_url else None,
            cancel_url=str(self.cancel_url) if self.cancel_url else None,
            notify_url=str(self.notify_url) if self.notify_url else None,
            metadata=dict(self.metadata),
            request_fingerprint=self.fingerprint(secret),
            requested_at=requested_at,
            status_by_reference=caps.status_by_reference,
            late_reversals=caps.late_reversals,
            # A success is what a merchant ships goods on: always read back.
            confirm_final_webhooks=True,
            timings=timings,
        )


def check_payin_request(
    request: PayinRequest, specs: Sequence[ProviderSpec[Any]] | None = None
) -> list[FieldProblem]:
    """Every business rule ``request`` breaks (empty when it may be collected); the
    provider is looked up in ``specs`` (default: the discovered ones)."""
    problems: list[FieldProblem] = []
    spec = find_spec(request.provider, specs)
    if spec is None or Direction.PAYIN not in spec.capabilities.directions:
        problems.append(
            FieldProblem(
                "provider", "provider_available", f"{request.provider.value} is not enabled"
            )
        )
        return problems
    caps = spec.capabilities
    name = request.provider.value
    if request.mode not in caps.payin_modes:
        offered = ", ".join(sorted(m.value for m in caps.payin_modes)) or "none"
        problems.append(
            FieldProblem("mode", "mode_offered", f"{name} offers payin modes {offered}")
        )
    if request.customer.phone is not None:
        customer_phone = check_phone_for_country(
            request.customer.phone, request.country, "customer.phone"
        )
        if customer_phone:
            problems.append(customer_phone)
    if request.mode is PayinMode.DIRECT:
        if request.customer.phone is None:
            problems.append(
                FieldProblem(
                    "customer.phone",
                    "required_for_direct",
                    "direct payins push a prompt to the customer's number: give it",
                )
            )
        if request.operator is None:
            problems.append(
                FieldProblem("operator", "required_for_direct", "direct payins need the operator")
            )
    problems += spec.payin_rules(request)
    expected_currency = COUNTRY_CURRENCY[request.country]
    if request.currency is not expected_currency:
        problems.append(
            FieldProblem(
                "currency",
                "currency_of_country",
                f"payins in {request.country.value} are in {expected_currency.value}, "
                f"not {request.currency.value}",
            )
        )
    operators = caps.operators.get(request.country)
    if operators is None:
        served = ", ".join(sorted(c.value for c in caps.countries()))
        problems.append(
            FieldProblem(
                "country",
                "country_served",
                f"{name} does not serve {request.country.value} (serves {served})",
            )
        )
    elif request.operator is not None and request.operator not in operators:
        offered = ", ".join(sorted(o.value for o in operators))
        problems.append(
            FieldProblem(
                "operator",
                "operator_in_country",
                f"{name} offers {offered} in {request.country.value}, not {request.operator.value}",
            )
        )
    limits = caps.limits_for(Direction.PAYIN, request.currency, request.country)
    if limits is None:
        problems.append(
            FieldProblem(
                "currency",
                "currency_supported",
                f"{name} does not collect in {request.currency.value}",
            )
        )
    elif not limits.contains(request.amount):
        problems.append(
            FieldProblem(
                "amount",
                "provider_limits",
                f"{name} collects between {format_amount(limits.minimum, request.currency)} "
                f"and {format_amount(limits.maximum, request.currency)}",
            )
        )
    return problems


def check_notify_url(
    url: str | None, *, local: bool, policy: DestinationPolicy | None = None
) -> FieldProblem | None:
    """A problem when momoflow should not POST to ``url``, seen from its text: https only
    (http too when ``local``), and no address that is not public unless ``policy`` allows
    it (loopback, private, link-local, metadata endpoints, ``localhost``). A name that
    *resolves* to such an address is refused at delivery, for every attempt
    (:mod:`momoflow.outbound`)."""
    if url is None:
        return None
    parsed = urlsplit(url)
    if parsed.scheme != "https" and not (local and parsed.scheme == "http"):
        return FieldProblem("notify_url", "https_only", "notification URLs must use https")
    host = (parsed.hostname or "").rstrip(".").lower()
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return FieldProblem("notify_url", "url_parsing", "the URL's port is not a number")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
            return FieldProblem(
                "notify_url", "public_host", f"{host} is not a public host (use an address)"
            )
        return None
    reason = (policy or DestinationPolicy()).refusal(address, port)
    if reason is not None:
        return FieldProblem("notify_url", "public_host", reason)
    return None
