"""Static knowledge of the MOBILE-PAY simulator: countries, limits, fees, test numbers, texts.

The only source is ``providers.md`` section 3 (page M1). Almost everything here is
*simulator-defined*: section 3.4 lists the assumptions, and ``docs/sandbox-mobilepay.md``
gives the section number of each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "DEFAULT_OUTCOME",
    "DEFAULT_OUTCOMES",
    "DOMESTIC",
    "INTERNATIONAL",
    "MAX_AMOUNT",
    "MIN_AMOUNT",
    "PAYMENT_FINAL",
    "TRANSFER_FINAL",
    "Country",
    "ScriptedOutcome",
    "error_message",
    "outcome_for",
    "transfer_fee",
]

#: Per-transfer limits in XOF (3.4.9: orchestrator defaults, assumed; none documented).
MIN_AMOUNT = 100
MAX_AMOUNT = 1_500_000

#: Statuses (3.4.3, assumed): ``completed`` and ``received`` are the only documented words.
TRANSFER_FINAL = ("completed", "failed")
PAYMENT_FINAL = ("received", "failed", "expired")


@dataclass(frozen=True)
class Country:
    """A destination country and its E.164 dialling code."""

    code: str
    name: str
    dial_code: str


#: CI-issued accounts only (3.4.8): ``/transfers/local`` pays +225 numbers.
DOMESTIC = Country("CI", "Côte d'Ivoire", "225")

#: Destinations of ``/transfers/international``. Only SN is documented (M1 example); the
#: other WAEMU neighbours are simulator-defined (3.3: "no country list").
INTERNATIONAL: dict[str, Country] = {
    c.code: c
    for c in (
        Country("SN", "Sénégal", "221"),
        Country("ML", "Mali", "223"),
        Country("BF", "Burkina Faso", "226"),
        Country("TG", "Togo", "228"),
        Country("BJ", "Bénin", "229"),
        Country("NE", "Niger", "227"),
    )
}


def transfer_fee(amount: int, *, international: bool) -> int:
    """Fee in XOF, rounded up: 1 % local, 2 % international (simulator-defined, 3.3)."""
    percent = 2 if international else 1
    return (amount * percent + 99) // 100


class ScriptedOutcome(BaseModel):
    """What happens to a transfer whose recipient phone ends with the table key.

    ``status`` None: the transfer never settles on its own (stays ``processing``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["completed", "failed"] | None = "completed"
    error_code: str | None = None
    description: str = ""


# simulator-defined test numbers (3.3: "no test numbers"), keyed by the last four digits.
DEFAULT_OUTCOMES: dict[str, ScriptedOutcome] = {
    "0000": ScriptedOutcome(
        status="failed", error_code="RECIPIENT_NOT_FOUND", description="no wallet on this number"
    ),
    "0001": ScriptedOutcome(description="completed"),
    "0002": ScriptedOutcome(
        status="failed",
        error_code="INSUFFICIENT_FUNDS",
        description="provider-side insufficient funds (the M1 webhook example)",
    ),
    "0003": ScriptedOutcome(status=None, description="stays processing forever"),
    "0004": ScriptedOutcome(
        status="failed", error_code="OPERATOR_ERROR", description="operator-side failure"
    ),
}
DEFAULT_OUTCOME = ScriptedOutcome(description="completed after settle_delay")

_MESSAGES = {
    "INSUFFICIENT_FUNDS": "Solde insuffisant",  # [DOC M1] webhook example
    "RECIPIENT_NOT_FOUND": "Destinataire introuvable",
    "OPERATOR_ERROR": "Erreur de l'opérateur mobile",
    "INVALID_PHONE": "Numéro de téléphone invalide",
    "INVALID_AMOUNT": "Montant invalide",
    "INVALID_COUNTRY": "Pays non pris en charge",
    "PAYMENT_FAILED": "Le paiement a échoué",
}


def error_message(code: str) -> str:
    """French message of an error code (the code itself when unknown)."""
    return _MESSAGES.get(code, code)


def outcome_for(phone: str, table: dict[str, ScriptedOutcome]) -> ScriptedOutcome:
    """The scripted outcome of a recipient number (default: completed)."""
    return table.get(phone[-4:], DEFAULT_OUTCOME)
