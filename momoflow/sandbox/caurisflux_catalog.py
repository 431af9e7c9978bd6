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
}
DEFAULT_OUTCOME = ScriptedOutcome(description="success")

PAYOUT_FINAL = ("completed", "failed", "cancelled")  # [DOC S3]
PAYIN_FINAL = ("success", "failed", "cancelled", "expired")  # [DOC S6, CODE S7]


def outcome_for(phone: str | None, table: dict[str, ScriptedOutcome]) -> ScriptedOutcome:
    """The scripted outcome of a phone number (default: success)."""
    if phone is None:
        return DEFAULT_OUTCOME
    return table.get(phone[-4:], DEFAULT_OUTCOME)


def error_message(code: str | None, provider_name: str) -> str | None:
    """French ``errorMessage`` for an ``errorCode`` (texts from S1 and S3)."""
    messages = {
        "invalid_recipient": (
            f"Le numéro de téléphone n'est pas associé à un compte {provider_name} actif"
        ),
        "account_blocked": "Compte bénéficiaire bloqué",
        "insufficient_funds": "Solde insuffisant",
        "insufficient_balance": "Solde insuffisant (votre compte)",
        "provider_error": "Erreur du provider",
        "limit_exceeded": "Limite dépassée",
        "invalid_phone": "Numéro de téléphone invalide",
    }
    if code is None:
        return None
    return messages.get(code, code)


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
