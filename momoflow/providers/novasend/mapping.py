"""Pure NovaSend mapping: request building, status normalisation, errors, webhooks.

Nothing here does I/O; :mod:`momoflow.providers.novasend.client` calls these functions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from momoflow.models import (
    InitiatePayinInput,
    InitiatePayoutInput,
    Operator,
    PayinCreated,
    PayinMode,
    PaymentStatus,
    ProviderBalance,
    ProviderEvent,
    ProviderName,
    ProviderTransaction,
    RefundInput,
    StatusLookup,
)
from momoflow.money import MINOR_UNIT_EXPONENT, Currency
from momoflow.providers import errors
from momoflow.providers.http import json_body, retry_after_seconds
from momoflow.providers.novasend.wire import (
    PROVIDER,
    NovaSendAction,
    NovaSendBalance,
    NovaSendDirectPayinDetails,
    NovaSendDirectPayinRequest,
    NovaSendDirectPayoutDetails,
    NovaSendDirectPayoutRequest,
    NovaSendErrorBody,
    NovaSendRefundRequest,
    NovaSendSessionRequest,
    NovaSendTransaction,
)

#: Operator codes of the Direct API [N5, N6]. Free Money is not offered.
OPERATOR_CODES: dict[Operator, str] = {
    Operator.WAVE: "WAVE",
    Operator.ORANGE_MONEY: "ORANGE",
    Operator.MTN_MOMO: "MOMO",
    Operator.MOOV_MONEY: "MOOV",
}

SIGNATURE_HEADER = "X-Signature-Value"

# --------------------------------------------------------------------------- requests


def operator_code(operator: Operator | None, *, operation: str) -> str:
    """The Direct API ``provider`` code of ``operator``, or UnsupportedOperation."""
    if operator is None:
        raise errors.InvalidRequest(
            "NovaSend direct calls need an operator", provider=PROVIDER, operation=operation
        )
    try:
        return OPERATOR_CODES[operator]
    except KeyError:
        raise errors.UnsupportedOperation(
            f"NovaSend does not offer {operator.value}", provider=PROVIDER, operation=operation
        ) from None


def build_payout_request(request: InitiatePayoutInput) -> NovaSendDirectPayoutRequest:
    """Body of ``POST /v1/direct/payout`` [N6]."""
    return NovaSendDirectPayoutRequest(
        reference=request.external_reference,
        customer_name=request.recipient_name,
        payout=NovaSendDirectPayoutDetails(
            amount=request.amount,
            msisdn=request.recipient_phone,
            provider=operator_code(request.operator, operation="initiate_payout"),
            country=request.country.value,
        ),
    )


def build_action(request: InitiatePayinInput) -> NovaSendAction:
    """``action{successUrl, failureUrl}``, required by both payin calls [N4, N5].

    momoflow's ``callback_url`` (our webhook URL) is only a last resort for the redirect.
    """
    success = request.return_url or request.callback_url
    failure = request.cancel_url or request.return_url or request.callback_url
    if not success or not failure:
        raise errors.InvalidRequest(
            "NovaSend payins need return_url (and cancel_url) or callback_url: "
            "action.successUrl and action.failureUrl are required",
            provider=PROVIDER,
            operation="initiate_payin",
        )
    return NovaSendAction(success_url=success, failure_url=failure)


def build_payin_request(
    request: InitiatePayinInput, *, account_id: str | None = None
) -> NovaSendSessionRequest | NovaSendDirectPayinRequest:
    """Body of ``POST /v1/payin/sessions`` (checkout) or ``POST /v1/direct/payin`` (direct).

    A session carries what both documented versions need (2.11.1): ``accountId`` when it is
    configured and ``customerName`` (required by the older page, seed 004), and ``action{}``
    (required by the newer one, N4). The gateway makes ``customer.name`` required for
    NovaSend checkout payins; a payin started without one still goes out without it, and an
    account on the older API refuses it before creating anything. Direct payins have one
    documented version [N5], without ``accountId``.
    """
    op = "initiate_payin"
    if request.mode is PayinMode.QR:
        raise errors.UnsupportedOperation(
            "NovaSend has no QR payins", provider=PROVIDER, operation=op
        )
    if not request.customer_phone:
        raise errors.InvalidRequest(
            "NovaSend payins need the customer's phone number", provider=PROVIDER, operation=op
        )
    if request.mode is PayinMode.CHECKOUT:
        return NovaSendSessionRequest(
            reference=request.external_reference,
            account_id=account_id,
            amount=request.amount,
            msisdn=request.customer_phone,
            country=request.country.value,
            customer_name=request.customer_name,
            action=build_action(request),
        )
    code = operator_code(request.operator, operation=op)
    if request.operator is Operator.ORANGE_MONEY and not request.otp:
        # Orange Money pushes need the code the customer gets by dialling #144*82# [N5].
        raise errors.OtpRequired(
            "Orange Money direct payins need the customer's OTP",
            provider=PROVIDER,
            operation=op,
            provider_code="transaction_otp_required",
        )
    return NovaSendDirectPayinRequest(
        reference=request.external_reference,
        customer_name=request.customer_name,
        payin=NovaSendDirectPayinDetails(
            amount=request.amount,
            msisdn=request.customer_phone,
            provider=code,
            country=request.country.value,
            otp=request.otp,
        ),
        action=build_action(request),
    )


def build_refund_request(request: RefundInput) -> NovaSendRefundRequest:
    """Body of ``POST /v1/payin/{reference}/refund`` (always a full refund) [N8]."""
    return NovaSendRefundRequest(
        reason=request.reason, external_reference=request.external_reference
    )


# --------------------------------------------------------------------------- statuses


def map_status(
    *,
    status: str | None,
    confirmation_status: str | None,
    settlement_status: str | None,
    kind: str | None = None,
) -> PaymentStatus:
    """Normalise NovaSend's three status layers (2.4, 2.11.2); unknown words are PENDING.

    ``transaction.status`` (settlement) is the source of truth [N3]; only when it is absent
    do the confirmation and session statuses count. ``processed`` alone is not final.
    A refund (``kind="refund"``) has its own status word [N8].
    """
    top = (status or "").strip().lower()
    if (kind or "").strip().lower() == "refund":
        return _REFUND_STATUS.get(top, PaymentStatus.PENDING)
    settlement = (settlement_status or "").strip().lower()
    if settlement:
        return _SETTLEMENT_STATUS.get(settlement, PaymentStatus.PENDING)
    match (confirmation_status or "").strip().lower():
        case "declined":
            return PaymentStatus.FAILED
        case "expired":
            return PaymentStatus.EXPIRED
    return PaymentStatus.EXPIRED if top == "expired" else PaymentStatus.PENDING


_SETTLEMENT_STATUS = {"completed": PaymentStatus.SUCCEEDED, "failed": PaymentStatus.FAILED}
_REFUND_STATUS = {"completed": PaymentStatus.SUCCEEDED, "failed": PaymentStatus.FAILED}


def describe_status(
    status: str | None, confirmation_status: str | None, settlement_status: str | None
) -> str:
    """``session/confirmation/settlement``, e.g. ``processed/accepted/completed``."""
    return "/".join(p or "-" for p in (status, confirmation_status, settlement_status))


# --------------------------------------------------------------------------- amounts


def parse_amount(value: Decimal | int | str, currency: Currency | None, *, operation: str) -> int:
    """An exact amount as integer minor units; a fraction of the minor unit is refused.

    ``currency`` None means francs CFA (exponent 0): NovaSend serves only CI and CM.
    """
    if isinstance(value, bool):
        raise _protocol(f"amount {value!r} is not a number", operation)
    try:
        exact = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise _protocol(f"amount {value!r} is not a number", operation) from None
    exponent = MINOR_UNIT_EXPONENT[currency] if currency is not None else 0
    minor = exact.scaleb(exponent) if exact.is_finite() else exact
    if not minor.is_finite() or minor != minor.to_integral_value():
        raise _protocol(f"amount {value} is not a whole number of minor units", operation)
    return int(minor)


def _currency(code: str | None, operation: str) -> Currency | None:
    if code is None:
        return None
    if code.upper() not in Currency.__members__:
        raise _protocol(f"currency {code!r} is not one momoflow moves", operation)
    return Currency(code.upper())


def _protocol(message: str, operation: str, status: int | None = None) -> errors.ProviderError:
    return errors.ProviderProtocolError(
        message, provider=PROVIDER, operation=operation, http_status=status
    )


def _minor(value: Decimal | None, currency: Currency | None, operation: str) -> int | None:
    return None if value is None else parse_amount(value, currency, operation=operation)


def _timestamp(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- answers

_WireT = TypeVar("_WireT", bound=BaseModel)


def _validate(model: type[_WireT], payload: Any, *, operation: str, status: int) -> _WireT:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise _protocol(f"unexpected answer shape (fields: {fields})", operation, status) from exc


def parse_transaction_wire(status: int, body: bytes, *, operation: str) -> NovaSendTransaction:
    """A 2xx payin, payout or session answer as its wire model."""
    payload = json_body(body, provider=PROVIDER, operation=operation, http_status=status)
    if not isinstance(payload, dict):
        raise _protocol("answer is not a JSON object", operation, status)
    return _validate(NovaSendTransaction, payload, operation=operation, status=status)


def _first(*values: Decimal | None) -> Decimal | None:
    return next((v for v in values if v is not None), None)


def is_older_payin_answer(wire: NovaSendTransaction) -> bool:
    """Whether ``wire`` has the older payin answer's shape (seed 004, 2.3): no ``id``, and
    our reference in ``customerReference`` (``reference`` is then NovaSend's system id)."""
    return wire.id is None and bool(wire.customer_reference)


def to_transaction(
    wire: NovaSendTransaction, *, operation: str, kind: str | None = None
) -> ProviderTransaction:
    """Normalise a payin session, a payout or a refund (also a webhook body).

    Both documented answer versions are read (2.11.1), and both references kept:
    ``provider_transaction_id`` is NovaSend's id (``id``, or in the older shape the system
    ``reference``, which is what its status path takes), ``external_reference`` ours, and
    ``provider_reference`` the core system's ``transaction.reference``.

    ``amount`` is what the core system processed (``transaction.amount``, "montant
    effectivement traité", seed 004) once there is a ``transaction``, else the session's
    amount; it can differ from the amount asked for. Every amount present is checked,
    including the ones not returned, so that a unit misreading (a fraction of a franc) is a
    protocol error rather than silently rounded.
    """
    kind = (kind or wire.type or "").strip().lower()
    core = wire.transaction
    if kind == "refund":
        # A refund has no id: its own reference is ``rf_…`` and ours is externalReference [N8].
        provider_id, external = wire.id or wire.reference, wire.external_reference
    elif is_older_payin_answer(wire):
        if not wire.reference:
            raise _protocol("answer has neither id nor reference", operation)
        provider_id, external = wire.reference, wire.customer_reference
    else:
        provider_id, external = wire.id, wire.customer_reference or wire.reference
    provider_id = provider_id or (core.reference if core else None)
    if not provider_id:
        raise _protocol("answer has neither id nor transaction.reference", operation)
    currency = _currency(wire.currency or (core.currency if core else None), operation)
    core_values = (core.amount, core.fees, core.charged_amount) if core else (None, None, None)
    for value in (wire.amount, wire.fee, wire.fees, wire.charged_amount, *core_values):
        _minor(value, currency, operation)
    settlement = core.status if core else None
    status = map_status(
        status=wire.status,
        confirmation_status=wire.confirmation_status,
        settlement_status=settlement,
        kind=kind,
    )
    raw_status = (
        wire.status or "-"
        if kind == "refund"
        else describe_status(wire.status, wire.confirmation_status, settlement)
    )
    failure = wire.failure
    return ProviderTransaction(
        provider=ProviderName.NOVASEND,
        provider_transaction_id=provider_id,
        external_reference=external,
        status=status,
        raw_status=raw_status,
        amount=_minor(_first(core_values[0], wire.amount), currency, operation),
        currency=currency,
        fees=_minor(_first(core_values[1], wire.fee, wire.fees), currency, operation),
        provider_reference=core.reference if core else None,
        failure_code=failure.code if failure else None,
        failure_message=failure.message if failure else None,
        updated_at=_timestamp(core.processed_at if core else None),
    )


def parse_transaction_response(status: int, body: bytes, *, operation: str) -> ProviderTransaction:
    """A 2xx payout creation or payin/payout status answer, normalised."""
    return to_transaction(
        parse_transaction_wire(status, body, operation=operation), operation=operation
    )


def to_payin_created(wire: NovaSendTransaction) -> PayinCreated:
    """A payin session or direct payin as what the customer needs to pay [N4, N5]."""
    return PayinCreated(
        transaction=to_transaction(wire, operation="initiate_payin"),
        payment_url=wire.payment_url,
        confirmation_required=wire.confirmation_required,
    )


#: Prefix of the newer version's session ids (``id: "pr_…"``, N4). Such an answer echoes
#: our reference, so its status is read by ours first; any other NovaSend id (seed 004's
#: system reference ``tr_…``) is what the older status path takes.
NEWER_SESSION_ID_PREFIX = "pr_"


def payin_status_keys(lookup: StatusLookup) -> tuple[str, ...]:
    """The references ``GET /v1/payin/{reference}`` is tried with, in order (2.11.1).

    First the one the create answer designates: NovaSend's id when it was the older shape
    (seed 004: "l'identifiant unique du paiement (généré lors du POST)"), ours when it was
    the newer one [N4, N14]; then the other one, in case the guess from the id's form is
    wrong. Without NovaSend's id (the create answer was lost) only ours can be tried.
    """
    ours, theirs = lookup.external_reference, lookup.provider_transaction_id
    if not theirs or theirs == ours:
        return (ours,)
    if theirs.startswith(NEWER_SESSION_ID_PREFIX):
        return (ours, theirs)
    return (theirs, ours)


def ensure_about(tx: ProviderTransaction, lookup: StatusLookup, *, operation: str) -> None:
    """A status answer must be about the transaction asked for: our reference, or NovaSend's
    id as we learned it when the answer names no reference of ours. Reading another
    transaction's status could settle ours wrongly."""
    if tx.external_reference is not None:
        if tx.external_reference == lookup.external_reference:
            return
    elif tx.provider_transaction_id == lookup.provider_transaction_id:
        return
    raise _protocol(
        f"status answer is about {tx.external_reference or tx.provider_transaction_id}, "
        f"not {lookup.external_reference}",
        operation,
    )


def _digits(msisdn: str | None) -> str:
    return "".join(c for c in msisdn or "" if c.isdigit())


def matches_request(
    wire: NovaSendTransaction, *, kind: str, amount: int, msisdn: str, operation: str
) -> bool:
    """Whether an existing transaction found under our reference is the one we asked for.

    Compares the type (when sent), the amount and the phone number (digits only, so
    ``+225…`` and ``225…`` agree); a missing amount or number does not match.
    """
    if wire.type and wire.type.strip().lower() != kind:
        return False
    existing = to_transaction(wire, operation=operation)
    core = wire.transaction
    candidates = (
        wire.msisdn,
        wire.phone_number,
        wire.customer.phone_number if wire.customer else None,
        core.phone_number if core else None,
    )
    numbers = {_digits(n) for n in candidates if n}
    return existing.amount == amount and _digits(msisdn) in numbers


def parse_refund_response(status: int, body: bytes, *, request: RefundInput) -> ProviderTransaction:
    """A 2xx refund answer [N8]: ``processing``/``pending`` then ``completed`` or ``failed``."""
    wire = parse_transaction_wire(status, body, operation="refund_payin")
    tx = to_transaction(wire, operation="refund_payin", kind="refund")
    if tx.external_reference is None:
        tx = tx.model_copy(update={"external_reference": request.external_reference})
    return tx


def parse_balances_response(status: int, body: bytes) -> list[ProviderBalance]:
    """``GET /v1/balance`` [N12]; currencies momoflow does not move (USD, EUR) are skipped."""
    operation = "balances"
    payload = json_body(body, provider=PROVIDER, operation=operation, http_status=status)
    if not isinstance(payload, list):
        raise _protocol("balance answer is not a JSON array", operation, status)
    balances = []
    for entry in payload:
        wire = _validate(NovaSendBalance, entry, operation=operation, status=status)
        if wire.currency.upper() not in Currency.__members__:
            continue
        currency = Currency(wire.currency.upper())
        balances.append(
            ProviderBalance(
                provider=ProviderName.NOVASEND,
                currency=currency,
                balance=parse_amount(wire.balance, currency, operation=operation),
                available=parse_amount(wire.available_balance, currency, operation=operation),
            )
        )
    return balances


# --------------------------------------------------------------------------- errors

_STATUS_READS = frozenset({"payout_status", "payin_status"})

#: Error codes [N1, N11] (and the docs' plain-text entries, snake-cased) and what each means.
#: Business errors all come back as 403 in the docs (2.11.9), so the code decides.
_ERROR_CODES: dict[str, type[errors.ProviderError]] = {
    "unauthorized": errors.ProviderAuthError,
    "api_token_invalid": errors.ProviderAuthError,
    "api_token_not_found": errors.ProviderAuthError,
    "too_many_requests": errors.ProviderRateLimited,
    "wallet_not_enough_cash": errors.InsufficientBalance,
    # On a payin this is the customer's wallet that is short; still a final decline.
    "client_not_enough_cash": errors.InsufficientBalance,
    "transaction_otp_required": errors.OtpRequired,
    "client_kyc_not_approved": errors.InvalidRecipient,
    "client_not_found": errors.InvalidRecipient,
    "wallet_not_found": errors.InvalidRecipient,
    "country_not_found": errors.OperatorUnavailable,
    "provider_not_found": errors.OperatorUnavailable,
    "invalid_amount": errors.InvalidAmount,
    "transaction_greater_than_zero": errors.InvalidAmount,
    "transaction_is_already_processed": errors.DuplicateReference,
    # A refund already exists: perhaps ours, whose answer was lost. Not a final "no".
    "transaction_already_refunded": errors.DuplicateReference,
    "duplicate_refund": errors.DuplicateReference,
    "transaction_not_refundable": errors.InvalidRequest,
    "transaction_not_processed": errors.InvalidRequest,
    "refund_not_allowed": errors.InvalidRequest,
    "idempotency_key_invalid": errors.InvalidRequest,
}

#: "Not found" codes: on a status read the transaction may not be visible yet.
_NOT_FOUND_CODES = frozenset({"transaction_does_not_exist", "payment_not_found"})
_KNOWN_CODES = frozenset(_ERROR_CODES) | _NOT_FOUND_CODES


def _token(text: str | None) -> str:
    return "_".join((text or "").strip().lower().split())


def classify_error(
    operation: str, status: int, body: bytes, headers: Mapping[str, str], *, now: float
) -> errors.ProviderError:
    """The error a non-2xx NovaSend answer means, decided by ``code`` first (2.11.9)."""
    try:
        parsed = NovaSendErrorBody.model_validate(json.loads(body))
        message, code = parsed.text()[:300] or f"HTTP {status}", (parsed.code or "").strip()
    except (ValueError, ValidationError):
        message, code = f"HTTP {status} with an unreadable body", ""
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "operation": operation,
        "http_status": status,
        "provider_code": code or None,
    }
    # Some entries of the docs' table are plain text ("Invalid amount"), not codes [N11].
    key = _token(code) if _token(code) in _KNOWN_CODES else _token(message)
    error_type = _ERROR_CODES.get(key)
    if status == 429 or error_type is errors.ProviderRateLimited:
        return errors.ProviderRateLimited(
            message, retry_after=retry_after_seconds(headers, now=now), **common
        )
    if status >= 500 or status == 408:
        return errors.ProviderUnavailable(message, **common)
    if error_type is not None:
        return error_type(message, **common)
    if status == 401:
        return errors.ProviderAuthError(message, **common)
    if key in _NOT_FOUND_CODES and operation in _STATUS_READS:
        # We created it (or a create is in doubt): not visible yet, read again later.
        return errors.ProviderUnavailable(message, **common)
    return errors.InvalidRequest(message, **common)


# --------------------------------------------------------------------------- webhooks


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def verify_webhook_signature(headers: Mapping[str, str], body: bytes, *, secret: str) -> None:
    """Check ``X-Signature-Value``: hex HMAC-SHA256 of the body with the webhook secret [N9].

    The docs' Node sample hashes ``JSON.stringify(JSON.parse(body))`` while the SDK hashes
    the raw bytes [N9, N14], so either form is accepted. NovaSend sends no timestamp: there
    is no replay window to check, and replays are harmless because events are idempotent.
    """
    signature = (_header(headers, SIGNATURE_HEADER) or "").strip().lower()
    if not signature:
        raise errors.WebhookVerificationError("missing X-Signature-Value", reason="missing")
    given = signature.encode("utf-8", "replace")
    key = secret.encode()
    if hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest().encode(), given):
        return
    try:
        compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        # Too deeply nested to re-serialise: only the raw-body HMAC above could match.
        compact = None
    if compact is not None:
        expected = hmac.new(key, compact.encode(), hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, given):
            return
    raise errors.WebhookVerificationError("signature does not match", reason="mismatch")


def parse_webhook_event(body: bytes) -> ProviderEvent:
    """Normalise a verified webhook: a flat transaction object, no envelope [N9].

    The status comes from the same rules as a GET (``type`` and the status fields), never
    from an event name, which NovaSend does not document (2.11.5).
    """
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("not an object")
        wire = NovaSendTransaction.model_validate(payload)
        tx = to_transaction(wire, operation="webhook")
        kind = (wire.type or "transaction").strip().lower()
    except (ValueError, ValidationError, errors.ProviderProtocolError, RecursionError) as exc:
        raise errors.WebhookVerificationError(
            "body is not a NovaSend transaction", reason="bad_body"
        ) from exc
    return ProviderEvent(
        provider=ProviderName.NOVASEND,
        event_id=wire.event_id or hashlib.sha256(body).hexdigest(),
        event_type=wire.event or f"{kind}.{(wire.status or 'unknown').strip().lower()}",
        external_reference=tx.external_reference,
        provider_transaction_id=tx.provider_transaction_id,
        status=tx.status,
        raw_status=tx.raw_status,
        amount=tx.amount,
        currency=tx.currency,
        fees=tx.fees,
        provider_reference=tx.provider_reference,
        failure_code=tx.failure_code,
        failure_message=tx.failure_message,
    )
