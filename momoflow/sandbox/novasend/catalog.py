"""Static knowledge of the NovaSend simulator: countries, operators, limits, fees, test
numbers and the bilingual error messages.

Sources are the keys of ``providers.md`` section 2 (N1..N14, 2.11.x). Everything marked
*simulator-defined* is an assumption the public documentation leaves open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "COUNTRIES",
    "DEFAULT_OUTCOMES",
    "OPERATORS",
    "SCENARIOS",
    "Country",
    "Language",
    "ScriptedOutcome",
    "decimal_string",
    "limits_for",
    "message",
    "outcome_for",
    "payin_fee",
    "payout_fee",
    "static_message",
]

Language = Literal["en", "fr"]
Direction = Literal["payin", "payout"]


@dataclass(frozen=True)
class Country:
    """A supported country: ISO code, currency, E.164 dialling code and its operators."""

    code: str
    currency: str
    dial_code: str
    operators: tuple[str, ...]


#: [DOC N4–N7] CI and CM; CM in XAF is implied by the CM support (2.9). The operator matrix
#: per country is simulator-defined: the CI table of N1 is cut off, CM has no Wave or Moov here.
COUNTRIES: dict[str, Country] = {
    "CI": Country("CI", "XOF", "225", ("WAVE", "ORANGE", "MOMO", "MOOV")),
    "CM": Country("CM", "XAF", "237", ("ORANGE", "MOMO")),
}

#: Operator codes of the Direct API [DOC N5, N6].
OPERATORS = ("WAVE", "ORANGE", "MOMO", "MOOV")

#: (min, max) per currency and direction [DOC N1 for XOF; CODE N14 for XAF].
_LIMITS: dict[tuple[str, Direction], tuple[int, int]] = {
    ("XOF", "payin"): (100, 2_000_000),
    ("XOF", "payout"): (200, 1_500_000),
    ("XAF", "payin"): (200, 500_000),
    ("XAF", "payout"): (200, 500_000),
}


def limits_for(currency: str, direction: Direction) -> tuple[int, int]:
    """Inclusive amount limits of ``direction`` in ``currency``."""
    return _LIMITS[(currency, direction)]


def payin_fee(amount: int) -> int:
    """3.5 % rounded up, integers only (simulator-defined; N4 shows 200 → 7)."""
    return -(-amount * 35 // 1000)


def payout_fee(amount: int) -> int:
    """2 % rounded up, integers only (simulator-defined; N7 shows 200 → 4)."""
    return -(-amount * 2 // 100)


def decimal_string(amount: int) -> str:
    """Integer francs as the two-decimal string of the ``transaction`` object ("300.00")."""
    return f"{amount}.00"


class ScriptedOutcome(BaseModel):
    """What happens to a transfer, per direction (simulator-defined, 2.11.4).

    ``payin``: ``completed``, ``failed``, ``declined`` (the customer refuses), ``expired``
    (never confirmed), ``pending`` (confirmed, settlement never ends) or ``late_reversal``
    (fails, then flips to completed after ``late_reversal_delay``).
    ``payout``: ``completed``, ``failed`` or ``pending`` (stays processing forever).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    payin: Literal["completed", "failed", "declined", "expired", "pending", "late_reversal"] = (
        "completed"
    )
    payin_error: str | None = None
    payout: Literal["completed", "failed", "pending"] = "completed"
    payout_error: str | None = None
    description: str = ""


#: Test numbers by the last four digits of the msisdn (simulator-defined, 2.11.4).
DEFAULT_OUTCOMES: dict[str, ScriptedOutcome] = {
    "0000": ScriptedOutcome(description="completed"),
    "0001": ScriptedOutcome(
        payin="failed",
        payin_error="client_not_enough_cash",
        payout="failed",
        payout_error="wallet_not_found",
        description="payin: customer short of funds; payout: no wallet on this number",
    ),
    "0002": ScriptedOutcome(
        payin="declined",
        payin_error="transaction_declined",
        payout="failed",
        payout_error="client_kyc_not_approved",
        description="payin: customer declines; payout: recipient KYC not approved",
    ),
    "0003": ScriptedOutcome(
        payin="expired",
        payout="pending",
        description="payin: never confirmed, expires; payout: stays processing forever",
    ),
    "0004": ScriptedOutcome(
        payin="late_reversal",
        payin_error="transaction_error",
        description="payin: fails, then flips to completed (late reversal); payout: completed",
    ),
    "0005": ScriptedOutcome(
        payin="failed",
        payin_error="transaction_error",
        payout="failed",
        payout_error="transaction_error",
        description="operator-side failure",
    ),
}
DEFAULT_OUTCOME = ScriptedOutcome(description="completed")

#: ``sandboxScenario`` values [CODE N14] and what they force.
SCENARIOS: dict[str, ScriptedOutcome] = {
    "completed": DEFAULT_OUTCOME,
    "failed": ScriptedOutcome(
        payin="failed",
        payin_error="transaction_error",
        payout="failed",
        payout_error="transaction_error",
        description="sandboxScenario=failed",
    ),
    "pending": ScriptedOutcome(
        payin="pending", payout="pending", description="sandboxScenario=pending"
    ),
}


def outcome_for(
    msisdn: str, scenario: str | None, table: dict[str, ScriptedOutcome]
) -> ScriptedOutcome:
    """``sandboxScenario`` when given, else the msisdn suffix table (default: completed)."""
    if scenario is not None:
        return SCENARIOS[scenario]
    return table.get(msisdn[-4:], DEFAULT_OUTCOME)


# Messages: the N1 example for country_not_found; the rest are simulator-defined wording.
_MESSAGES: dict[str, tuple[str, str]] = {
    "api_token_invalid": ("Unauthorized", "Non autorisé"),
    "idempotency_key_invalid": (
        "The X-Idempotency-Key header is required and must be a UUID",
        "L'en-tête X-Idempotency-Key est obligatoire et doit être un UUID",
    ),
    "validation_error": ("Validation failed: {detail}", "Validation échouée : {detail}"),
    "invalid_amount": ("Invalid amount", "Montant invalide"),
    "country_not_found": (
        "The country with code {country} does not exist",
        "Le pays avec le code {country} n'existe pas",
    ),
    "provider_not_found": (
        "The provider {provider} does not exist in {country}",
        "Le fournisseur {provider} n'existe pas pour {country}",
    ),
    "transaction_does_not_exist": (
        "The transaction {reference} does not exist",
        "La transaction {reference} n'existe pas",
    ),
    "wallet_not_found": ("Wallet not found", "Portefeuille introuvable"),
    "client_not_enough_cash": (
        "The customer does not have enough funds",
        "Le client n'a pas assez de fonds",
    ),
    "wallet_not_enough_cash": (
        "Your wallet does not have enough funds",
        "Votre portefeuille n'a pas assez de fonds",
    ),
    "transaction_otp_required": (
        "An OTP is required for this provider",
        "Un OTP est requis pour ce fournisseur",
    ),
    "transaction_greater_than_zero": (
        "The amount must be greater than zero",
        "Le montant doit être supérieur à zéro",
    ),
    "client_kyc_not_approved": (
        "The customer's KYC is not approved",
        "Le KYC du client n'est pas approuvé",
    ),
    "transaction_not_refundable": (
        "Refund not allowed: the transaction is not successful",
        "Remboursement non autorisé : la transaction n'est pas réussie",
    ),
    "transaction_not_processed": (
        "The transaction is not processed yet",
        "La transaction n'est pas encore traitée",
    ),
    "transaction_error": ("The transaction failed", "La transaction a échoué"),
    "transaction_declined": (
        "The customer declined the payment",
        "Le client a refusé le paiement",
    ),
    "transaction_is_already_processed": (
        "The transaction is already processed",
        "La transaction est déjà traitée",
    ),
    "transaction_already_refunded": ("Duplicate refund", "Remboursement déjà effectué"),
    "too_many_requests": ("Too many requests", "Trop de requêtes"),
    "not_found": ("Cannot {method} {path}", "Cannot {method} {path}"),
    "internal_error": ("Internal Server Error", "Erreur interne du serveur"),
}


def message(code: str, language: Language = "en", **params: object) -> str:
    """The message of ``code`` in ``language`` (the code itself when unknown)."""
    texts = _MESSAGES.get(code)
    if texts is None:
        return code
    template = texts[0] if language == "en" else texts[1]
    return template.format(**params) if params else template


def static_message(code: str, language: Language = "en") -> str | None:
    """The message of ``code`` when it needs no parameters; None otherwise."""
    texts = _MESSAGES.get(code)
    if texts is None:
        return None
    text = texts[0] if language == "en" else texts[1]
    return None if "{" in text else text
