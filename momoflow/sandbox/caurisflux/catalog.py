"""Static knowledge of the CaurisFlux simulator: operators, countries, test numbers, messages.

Sources are the keys of ``providers.md`` section 1 (S1..S7). Everything marked
*simulator-defined* is an assumption the public documentation leaves open (1.12).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "COUNTRIES",
    "DEFAULT_OUTCOMES",
    "ERROR_CODES",
    "LIST_DEFAULT_LIMIT",
    "LIST_MAX_LIMIT",
    "MAX_AMOUNT",
    "MIN_AMOUNT",
    "PROVIDERS",
    "Country",
    "Provider",
    "ScriptedOutcome",
    "error_message",
    "payout_fees",
    "validate_amount",
    "validate_phone",
]

#: Global amount limits [DOC S5 validation table].
MIN_AMOUNT = 100
MAX_AMOUNT = 5_000_000
#: Currencies accepted by validation [DOC S5]; XOF is the default [DOC S2].
CURRENCIES = ("XOF", "XAF")
#: List pagination: ``limit`` defaults to 20 and is at most 100 [DOC S1 "Pagination"].
LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100
LOGO_BASE = "https://s3.denkmako.com/cauris/logos"  # as in the S2 example


@dataclass(frozen=True)
class Country:
    """An active country: ISO code, French name, currency, E.164 dialling code."""

    code: str
    name: str
    currency: str
    dial_code: str


# simulator-defined [GAP S1 /countries/active]: the six WAEMU countries of the brief.
COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        Country("SN", "Sénégal", "XOF", "221"),
        Country("CI", "Côte d'Ivoire", "XOF", "225"),
        Country("ML", "Mali", "XOF", "223"),
        Country("BF", "Burkina Faso", "XOF", "226"),
        Country("TG", "Togo", "XOF", "228"),
        Country("BJ", "Bénin", "XOF", "229"),
    )
}


@dataclass(frozen=True)
class Provider:
    """A mobile-money operator as the simulator offers it."""

    code: str
    name: str
    countries: tuple[str, ...]
    min_amount: int
    max_amount: int
    reference_prefix: str
    deep_link: str | None

    @property
    def logo_url(self) -> str:
        """Logo URL in the style of the S2 example."""
        return f"{LOGO_BASE}/{self.code}.png"


# Codes `wave` and `orange_money` are documented [DOC S2]; the others follow the likely
# forms of providers.md 1.9. Countries and per-provider limits are simulator-defined.
PROVIDERS: dict[str, Provider] = {
    p.code: p
    for p in (
        Provider("wave", "Wave", ("SN", "CI", "ML", "BF"), 100, 2_000_000, "WAVE", "wave"),
        Provider(
            "orange_money",
            "Orange Money",
            ("SN", "CI", "ML", "BF"),
            100,
            1_500_000,
            "OM",
            "orangemoney",
        ),
        Provider("mtn_money", "MTN Mobile Money", ("CI", "BJ"), 100, 1_000_000, "MTN", None),
        Provider("free_money", "Free Money", ("SN",), 100, 1_000_000, "FREE", None),
        Provider(
            "moov_money", "Moov Money", ("CI", "BJ", "TG", "BF", "ML"), 100, 1_000_000, "MOOV", None
        ),
    )
}


def provider_in(code: Any, country: Any) -> Provider | None:
    """The provider when it is active in ``country``, else None ("Provider non disponible")."""
    provider = PROVIDERS.get(code) if isinstance(code, str) else None
    if provider is None or country not in provider.countries:
        return None
    return provider


class ScriptedOutcome(BaseModel):
    """What happens to a transaction whose phone number ends with ``suffix``.

    A ``None`` final status means the transaction never settles on its own: a payout stays
    ``processing`` forever, a payin stays ``pending`` and becomes ``expired`` at ``expiresAt``.
    ``delay_factor`` multiplies ``settle_delay`` for the final transition.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    payout_status: str | None = "completed"
    payout_error: str | None = None
    payin_status: str | None = "success"
    payin_error: str | None = None
    delay_factor: float = 1.0
    description: str = ""


# simulator-defined test numbers [GAP S1 "numéros de test", providers.md 1.12.1]. `0000`
# matches the S3 failure example (+221770000000 → invalid_recipient).
DEFAULT_OUTCOMES: dict[str, ScriptedOutcome] = {
    "0000": ScriptedOutcome(
        payout_status="failed",
        payout_error="invalid_recipient",
        payin_status="failed",
        payin_error="invalid_recipient",
        description="no active wallet on this number",
    ),
    "0002": ScriptedOutcome(
        payout_status="failed",
        payout_error="account_blocked",
        payin_status="failed",
        payin_error="insufficient_funds",
        description="payout: recipient blocked; payin: customer has insufficient funds",
    ),
    "0003": ScriptedOutcome(
        payout_status=None,
        payin_status=None,
        description="payout stuck in processing; payin pending then expired",
    ),
    "0004": ScriptedOutcome(
        payout_status="failed",
        payout_error="provider_error",
        payin_status="failed",
        payin_error="provider_error",
        description="operator-side failure",
    ),
    "0005": ScriptedOutcome(
        payout_status="cancelled", payin_status="cancelled", description="cancelled"
    ),
    "0006": ScriptedOutcome(delay_factor=10.0, description="success after 10 x settle_delay"),
    "0007": ScriptedOutcome(
        payout_status="failed",
        payout_error="limit_exceeded",
        payin_status="failed",
        payin_error="limit_exceeded",
        description="the recipient's (payin: customer's) limit is reached",
    ),
    "0008": ScriptedOutcome(
        payout_status="failed",
        payout_error="insufficient_balance",
        payin_status="failed",
        payin_error="insufficient_funds",
        description="payout: merchant balance short at the operator; payin: customer short",
    ),
}
DEFAULT_OUTCOME = ScriptedOutcome(description="success")

PAYOUT_FINAL = ("completed", "failed", "cancelled")  # [DOC S3]
PAYIN_FINAL = ("success", "failed", "cancelled", "expired")  # [DOC S6, CODE S7]


def outcome_for(phone: str | None, table: dict[str, ScriptedOutcome]) -> ScriptedOutcome:
    """The scripted outcome of a phone number (default: success)."""
    if phone is None:
        return DEFAULT_OUTCOME
    return table.get(phone[-4:], DEFAULT_OUTCOME)


@dataclass(frozen=True)
class ErrorCode:
    """An error code the CaurisFlux documents name, with its French text and the HTTP
    status the simulator answers it with when asked to (fault injection)."""

    code: str
    message: str
    status: int
    source: str


# Every code of providers.md 1.5. Texts of S1 and S3 are the documents' own; the S5 codes
# come without a text, so theirs are simulator-defined (S1's HTTP table where it has one).
# The HTTP status of a business code is assumed 422 (1.12.8).
ERROR_CODES: dict[str, ErrorCode] = {
    e.code: e
    for e in (
        ErrorCode("insufficient_funds", "Solde insuffisant", 422, "S1"),
        ErrorCode("invalid_phone", "Numéro de téléphone invalide", 400, "S1"),
        ErrorCode("invalid_amount", "Montant invalide", 400, "S1, S2"),
        ErrorCode("provider_error", "Erreur du provider", 422, "S1, S3"),
        ErrorCode("limit_exceeded", "Limite dépassée", 422, "S1, S3"),
        ErrorCode("invalid_recipient", "Bénéficiaire invalide", 422, "S3"),
        ErrorCode("insufficient_balance", "Solde insuffisant (votre compte)", 422, "S3"),
        ErrorCode("account_blocked", "Compte bénéficiaire bloqué", 422, "S3"),
        ErrorCode("UNAUTHORIZED", "Non authentifié", 401, "S5"),
        ErrorCode("FORBIDDEN", "Non autorisé", 403, "S5"),
        ErrorCode("VALIDATION_ERROR", "Erreur de validation", 422, "S5"),
        ErrorCode("RATE_LIMIT_EXCEEDED", "Trop de requêtes", 429, "S5"),
        ErrorCode("DAILY_LIMIT_EXCEEDED", "Limite journalière dépassée", 422, "S5"),
        ErrorCode("REFUND_NOT_ALLOWED", "Remboursement non autorisé", 422, "S5"),
        ErrorCode("INVALID_REFUND_AMOUNT", "Montant de remboursement invalide", 422, "S5"),
    )
}


def error_message(code: str | None, provider_name: str) -> str | None:
    """French ``errorMessage`` for an ``errorCode`` (texts from S1 and S3)."""
    if code is None:
        return None
    if code == "invalid_recipient":  # the S3 failure example's own text
        return f"Le numéro de téléphone n'est pas associé à un compte {provider_name} actif"
    known = ERROR_CODES.get(code)
    return known.message if known else code


def status_message(kind: str, status: str) -> str:
    """The French ``message`` of a status response (payout texts from S3)."""
    if kind == "payout":
        return {
            "completed": "Payout effectué avec succès",
            "failed": "Payout échoué",
            "cancelled": "Payout annulé",
        }.get(status, "Payout en cours de traitement")
    return {
        "pending": "Paiement en attente",
        "processing": "Paiement en cours de traitement",
        "success": "Paiement réussi",
        "failed": "Paiement échoué",
        "cancelled": "Paiement annulé",
        "expired": "Paiement expiré",
    }.get(status, "Paiement en attente")


def payout_fees(amount: int) -> int:
    """1.5 % of ``amount`` rounded half up, in integers only (S4: 750 on 50,000)."""
    return (amount * 15 + 500) // 1000


_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def validate_phone(value: Any, field: str, errors: list[str]) -> str | None:
    """Append a message unless ``value`` is an E.164 number; return it when valid."""
    if not isinstance(value, str) or not _E164.match(value):
        errors.append(f"{field} doit être un numéro de téléphone valide au format E.164")
        return None
    return value


def validate_amount(value: Any, currency: str, errors: list[str]) -> int | None:
    """Append messages unless ``value`` is an integer within the global limits."""
    # JSON numbers are JavaScript numbers on a NestJS backend: 5000.0 is the integer 5000.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append("amount doit être un nombre entier")
        return None
    if value < MIN_AMOUNT:
        errors.append(f"Le montant doit être supérieur à {MIN_AMOUNT} {currency}")  # S1 text
        return None
    if value > MAX_AMOUNT:
        errors.append(f"Le montant ne doit pas dépasser {MAX_AMOUNT} {currency}")
        return None
    return value


def validate_text(value: Any, field: str, errors: list[str], *, required: bool) -> str | None:
    """Append a message unless ``value`` is a non-empty string (or absent and optional)."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{field} ne doit pas être vide")
        return None
    if len(value) > 255:
        errors.append(f"{field} ne doit pas dépasser 255 caractères")
        return None
    return value


def validate_choice(
    value: Any, field: str, choices: tuple[str, ...], errors: list[str]
) -> str | None:
    """Append a message unless ``value`` is one of ``choices``."""
    if value not in choices:
        errors.append(f"{field} doit être l'une des valeurs suivantes : {', '.join(choices)}")
        return None
    assert isinstance(value, str)
    return value


def validate_url(value: Any, field: str, errors: list[str]) -> str | None:
    """Append a message unless ``value`` is absent or an http(s) URL."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        errors.append(f"{field} doit être une URL valide")
        return None
    return value
