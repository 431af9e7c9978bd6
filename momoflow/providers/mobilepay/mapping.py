"""Pure MOBILE-PAY mapping: request building, answer parsing, matching, errors, webhooks.

Nothing here does I/O. Section numbers refer to ``shared/providers.md`` §3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from momoflow.masking import mask_phone
from momoflow.models import (
    Direction,
    InitiatePayinInput,
    InitiatePayoutInput,
    ListedTransaction,
    ListTransactionsInput,
    PayinCreated,
    PaymentStatus,
    ProviderEvent,
    ProviderName,
    ProviderTransaction,
    SharedLookup,
    TransactionListPage,
)
from momoflow.money import Country, Currency
from momoflow.providers import errors
from momoflow.providers.http import json_body, retry_after_seconds
from momoflow.providers.mobilepay.wire import (
    MobilePayBalance,
    MobilePayInternationalTransferRequest,
    MobilePayLocalTransferRequest,
    MobilePayMetadata,
    MobilePayQrPayment,
    MobilePayQrPaymentRequest,
    MobilePayTransactionItem,
    MobilePayTransactionPage,
    MobilePayTransfer,
    MobilePayTransferRequest,
    MobilePayWebhook,
)

PROVIDER = ProviderName.MOBILEPAY.value

#: Longest description sent (assumed: no limit is documented, 3.3); the marker is kept.
DESCRIPTION_MAX = 140

#: Our marker opens every description: ``[mf:`` + :data:`MARKER_CODE_LENGTH` characters
#: + ``]`` (:func:`marker`).
MARKER_OPEN = "[mf:"
MARKER_CODE_LENGTH = 12
#: Characters of the description MOBILE-PAY must keep for the marker to be read whole.
MARKER_LENGTH = len(MARKER_OPEN) + MARKER_CODE_LENGTH + 1
#: Changing the salt would change every marker: transfers in flight would no longer match.
_MARKER_SALT = b"momoflow/mobilepay/marker/v1:"

#: Header the gateway fills with the secret token of ``/webhooks/mobilepay/<token>``.
WEBHOOK_TOKEN_HEADER = "x-momoflow-webhook-token"


class TransactionKind(StrEnum):
    """The two things MOBILE-PAY's history lists (``type``, 3.4.2)."""

    TRANSFER = "transfer"
    PAYMENT = "payment"


# --------------------------------------------------------------------------- statuses


def map_transfer_status(raw: str) -> PaymentStatus:
    """Transfer statuses (3.4.3); anything unknown is PENDING, never a failure."""
    match raw.strip().lower():
        case "completed":
            return PaymentStatus.SUCCEEDED
        case "failed":
            return PaymentStatus.FAILED
        case "pending" | "processing":
            return PaymentStatus.PENDING
        case _:
            return PaymentStatus.PENDING


def map_payment_status(raw: str) -> PaymentStatus:
    """QR payment statuses (3.4.3); anything unknown is PENDING, never a failure."""
    match raw.strip().lower():
        case "received":
            return PaymentStatus.SUCCEEDED
        case "failed":
            return PaymentStatus.FAILED
        case "expired":
            return PaymentStatus.EXPIRED
        case "pending":
            return PaymentStatus.PENDING
        case _:
            return PaymentStatus.PENDING


def map_status(raw: str, kind: TransactionKind) -> PaymentStatus:
    """Normalise a status word of a transfer or a QR payment."""
    if kind is TransactionKind.PAYMENT:
        return map_payment_status(raw)
    return map_transfer_status(raw)


def item_kind(item: MobilePayTransactionItem, default: TransactionKind) -> TransactionKind:
    """The item's own ``type`` when it says, else what the caller looked for."""
    match (item.type or "").strip().lower():
        case "transfer":
            return TransactionKind.TRANSFER
        case "payment":
            return TransactionKind.PAYMENT
        case _:
            return default


def normalise_currency(code: str | None) -> Currency | None:
    """``FCFA`` (what MOBILE-PAY writes, 3.2) is XOF for CI-issued accounts (3.4.8)."""
    if code is None:
        return None
    cleaned = code.strip().upper().replace(" ", "")
    if cleaned in ("FCFA", "CFA", "XOF"):
        return Currency.XOF
    return Currency(cleaned) if cleaned in Currency.__members__ else None


# --------------------------------------------------------------------------- requests


def marker(reference: str) -> str:
    """``[mf:<12 base32 characters>]``, derived from our reference (never random): what
    identifies our transfer in MOBILE-PAY's list.

    It opens the description because MOBILE-PAY may keep only the start of it (3.4.5): a
    stored description of :data:`MARKER_LENGTH` characters or more still carries it whole.
    60 bits of SHA-256 make two references sharing a marker negligible, and a match also
    needs the amount and the number.
    """
    digest = hashlib.sha256(_MARKER_SALT + reference.encode()).digest()
    code = base64.b32encode(digest).decode("ascii").lower()[:MARKER_CODE_LENGTH]
    return f"{MARKER_OPEN}{code}]"


def reference_tag(reference: str) -> str:
    """``[ref <reference>]``, at the end of the description: the whole reference, for people
    reading MOBILE-PAY's back office and the daily report. Matching never needs it."""
    return f"[ref {reference}]"


def build_description(description: str, reference: str, *, limit: int = DESCRIPTION_MAX) -> str:
    """``"[mf:…] <description> [ref <reference>]"`` within ``limit`` characters.

    The marker is never cut; the free text is trimmed first, then the reference tag is
    dropped if even it does not fit.
    """
    head = marker(reference)
    tail = reference_tag(reference)
    if len(head) + 1 + len(tail) > limit:
        tail = ""
    text = " ".join(description.split())
    room = limit - len(head) - 1 - (len(tail) + 1 if tail else 0)
    text = text[: max(room, 0)].rstrip()
    return " ".join(part for part in (head, text, tail) if part)


def _xof_only(currency: Currency, operation: str) -> None:
    # Accounts are CI-issued and hold XOF only (3.4.8).
    if currency is not Currency.XOF:
        raise errors.UnsupportedOperation(
            f"MOBILE-PAY moves XOF only, not {currency.value}",
            provider=PROVIDER,
            operation=operation,
        )


def build_transfer_request(request: InitiatePayoutInput) -> MobilePayTransferRequest:
    """``/transfers/local`` body for CI, ``/transfers/international`` for other countries."""
    _xof_only(request.currency, "initiate_payout")
    metadata = MobilePayMetadata(reference=request.external_reference)
    description = build_description(request.description, request.external_reference)
    if request.country is Country.CI:
        return MobilePayLocalTransferRequest(
            recipient_phone=request.recipient_phone,
            amount=request.amount,
            description=description,
            metadata=metadata,
        )
    return MobilePayInternationalTransferRequest(
        recipient_country=request.country.value,
        recipient_phone=request.recipient_phone,
        amount=request.amount,
        description=description,
        metadata=metadata,
    )


def transfer_path(body: MobilePayTransferRequest) -> str:
    """The endpoint a transfer body goes to."""
    if isinstance(body, MobilePayLocalTransferRequest):
        return "/transfers/local"
    return "/transfers/international"


def build_qr_payment_request(
    request: InitiatePayinInput, *, merchant_id: str
) -> MobilePayQrPaymentRequest:
    """``POST /payments/qr`` body."""
    _xof_only(request.currency, "initiate_payin")
    return MobilePayQrPaymentRequest(
        amount=request.amount,
        description=build_description(request.description, request.external_reference),
        merchant_id=merchant_id,
        metadata=MobilePayMetadata(reference=request.external_reference),
    )


# --------------------------------------------------------------------------- answers

_WireT = TypeVar("_WireT", bound=BaseModel)
_ENVELOPE_KEYS = frozenset({"data", "success", "status", "message"})


def unwrap_object(payload: Any) -> Any:
    """``data`` of a ``{success|status, data: {...}}`` envelope, else the payload (the
    assumed answers are bare objects, 3.4.2; an envelope is tolerated)."""
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("data"), dict)
        and set(payload) <= _ENVELOPE_KEYS
    ):
        return payload["data"]
    return payload


def validate(model: type[_WireT], payload: Any, *, operation: str, status: int) -> _WireT:
    """Read ``payload`` as ``model``, or raise :class:`ProviderProtocolError`."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        # ``from None``: pydantic's message quotes the input (phone numbers), and Temporal
        # would copy the cause chain into the workflow history.
        raise errors.ProviderProtocolError(
            f"unexpected answer shape (fields: {fields})",
            provider=PROVIDER,
            operation=operation,
            http_status=status,
        ) from None


def _parse(model: type[_WireT], status: int, body: bytes, *, operation: str) -> _WireT:
    payload = json_body(body, provider=PROVIDER, operation=operation, http_status=status)
    return validate(model, unwrap_object(payload), operation=operation, status=status)


def parse_transfer_created(
    status: int, body: bytes, *, request: InitiatePayoutInput
) -> ProviderTransaction:
    """A 2xx transfer create answer."""
    wire = _parse(MobilePayTransfer, status, body, operation="initiate_payout")
    return ProviderTransaction(
        provider=ProviderName.MOBILEPAY,
        provider_transaction_id=wire.transfer_id,
        external_reference=request.external_reference,
        status=map_transfer_status(wire.status),
        raw_status=wire.status,
        amount=wire.amount if wire.amount is not None else request.amount,
        currency=normalise_currency(wire.currency) or request.currency,
    )


def parse_qr_created(status: int, body: bytes, *, request: InitiatePayinInput) -> PayinCreated:
    """A 2xx QR payment create answer."""
    wire = _parse(MobilePayQrPayment, status, body, operation="initiate_payin")
    transaction = ProviderTransaction(
        provider=ProviderName.MOBILEPAY,
        provider_transaction_id=wire.payment_id,
        external_reference=request.external_reference,
        status=map_payment_status(wire.status),
        raw_status=wire.status,
        amount=wire.amount if wire.amount is not None else request.amount,
        currency=normalise_currency(wire.currency) or request.currency,
    )
    return PayinCreated(transaction=transaction, qr_code=wire.qr_code, expires_at=wire.expires_at)


def parse_transaction_page(status: int, body: bytes, *, operation: str) -> MobilePayTransactionPage:
    """One page of ``GET /transactions``; a bare list is accepted as a page."""
    payload = json_body(body, provider=PROVIDER, operation=operation, http_status=status)
    if isinstance(payload, list):
        payload = {"data": payload}
    return validate(MobilePayTransactionPage, payload, operation=operation, status=status)


def parse_balance(status: int, body: bytes) -> tuple[int, Currency]:
    """``GET /balance`` as (balance, currency); a missing currency is XOF (3.4.8)."""
    wire = _parse(MobilePayBalance, status, body, operation="balances")
    currency = normalise_currency(wire.currency) if wire.currency else Currency.XOF
    if currency is None:
        raise errors.ProviderProtocolError(
            f"unknown balance currency {wire.currency!r}",
            provider=PROVIDER,
            operation="balances",
            http_status=status,
        )
    return wire.balance, currency


def to_transaction(
    item: MobilePayTransactionItem, *, kind: TransactionKind, external_reference: str | None
) -> ProviderTransaction:
    """Normalise a history item; ``kind`` is used when the item has no ``type``."""
    ids = item.ids()
    return ProviderTransaction(
        provider=ProviderName.MOBILEPAY,
        provider_transaction_id=ids[0],
        external_reference=external_reference,
        status=map_status(item.status, item_kind(item, kind)),
        raw_status=item.status,
        amount=item.amount,
        currency=normalise_currency(item.currency),
        failure_code=item.error_code,
        failure_message=scrub(item.error_message),
        updated_at=item.updated_at or item.created_at,
    )


# --------------------------------------------------------------------------- the list


def build_list_params(request: ListTransactionsInput) -> dict[str, str | int]:
    """Query of ``GET /transactions`` [M1 parameters]: whole days, bounds inclusive (3.4.2)."""
    return {
        "limit": request.limit,
        "offset": request.offset,
        "start_date": request.start.isoformat(),
        "end_date": request.end.isoformat(),
    }


_REFERENCE_TAG = re.compile(r"\[ref ([^\]\s]+)\]")


def listed_reference(item: MobilePayTransactionItem) -> str | None:
    """The reference momoflow sent with the item (``metadata.reference``, ``reference`` or
    the ``[ref …]`` marker of the description), or None."""
    if item.metadata and isinstance(item.metadata.get("reference"), str):
        return str(item.metadata["reference"])
    if item.reference:
        return item.reference
    found = _REFERENCE_TAG.search(item.description or "")
    return found.group(1) if found else None


def listed_marker(item: MobilePayTransactionItem) -> str | None:
    """The whole marker that opens the item's description (lowercase), or None: what
    still names our reference when MOBILE-PAY kept only the start of the description."""
    head = (item.description or "").lstrip().lower()[:MARKER_LENGTH]
    if len(head) == MARKER_LENGTH and head.startswith(MARKER_OPEN) and head.endswith("]"):
        return head
    return None


def listed_status(item: MobilePayTransactionItem) -> PaymentStatus:
    """The item's status; an item that does not say its type is read with whichever
    vocabulary calls its word final (``completed`` is a transfer's, ``received`` a
    payment's), else PENDING."""
    if (item.type or "").strip().lower() in ("transfer", "payment"):
        return map_status(item.status, item_kind(item, TransactionKind.TRANSFER))
    transfer = map_transfer_status(item.status)
    return transfer if transfer.is_final else map_payment_status(item.status)


def to_listed_transaction(item: MobilePayTransactionItem) -> ListedTransaction | None:
    """A history item for the reconciliation report; None when it carries no id (nothing
    could ever match it). No phone number is kept."""
    ids = item.ids()
    if not ids:
        return None
    match (item.type or "").strip().lower():
        case "transfer":
            direction: Direction | None = Direction.PAYOUT
        case "payment":
            direction = Direction.PAYIN
        case _:
            direction = None
    return ListedTransaction(
        provider=ProviderName.MOBILEPAY,
        provider_transaction_id=ids[0],
        external_reference=listed_reference(item),
        marker=listed_marker(item),
        direction=direction,
        status=listed_status(item),
        raw_status=item.status,
        amount=item.amount,
        currency=normalise_currency(item.currency),
        created_at=as_utc(item.created_at) if item.created_at else None,
    )


def parse_transaction_list(
    status: int, body: bytes, *, request: ListTransactionsInput
) -> TransactionListPage:
    """One page of ``GET /transactions`` for the report. The last page is an empty one, the
    one that reaches ``total``, or a page shorter than the ``limit`` the answer echoes."""
    page = parse_transaction_page(status, body, operation="list_transactions")
    items = [listed for item in page.data if (listed := to_listed_transaction(item))]
    seen = request.offset + len(page.data)
    finished = not page.data
    if page.total is not None:
        finished = finished or seen >= page.total
    elif page.limit is not None:
        finished = finished or len(page.data) < page.limit
    return TransactionListPage(
        items=items, total=page.total, next_offset=None if finished else seen
    )


# --------------------------------------------------------------------------- matching


class Attribution(StrEnum):
    """Whose a history item is, as far as its fields tell."""

    #: Ours: our reference in ``metadata`` or ``reference``, our marker, or our full tag.
    OURS = "ours"
    #: Someone else's: another reference, or a marker that cannot be the start of ours.
    OTHER = "other"
    #: Nothing readable says: no description, a description cut inside a marker that could
    #: be ours, or one that does not start with a marker at all.
    UNREADABLE = "unreadable"


def read_marker(description: str | None, reference: str) -> Attribution:
    """Attribute a description by the marker at its start (case and leading blanks are
    ignored). A description cut inside a marker is UNREADABLE while it could be the start
    of ours, OTHER once it cannot; one that opens with no marker is UNREADABLE."""
    text = (description or "").lstrip().lower()
    ours = marker(reference)
    head = text[:MARKER_LENGTH]
    if len(head) == MARKER_LENGTH and head.startswith(MARKER_OPEN) and head.endswith("]"):
        return Attribution.OURS if head == ours else Attribution.OTHER
    if len(text) < MARKER_LENGTH and text.startswith(MARKER_OPEN) and not ours.startswith(text):
        return Attribution.OTHER
    return Attribution.UNREADABLE


def attribute(item: MobilePayTransactionItem, reference: str) -> Attribution:
    """Whose ``item`` is, from ``metadata.reference``, ``reference``, the marker at the
    start of the description and a whole ``[ref …]`` tag (older descriptions).

    ``reference`` only ever says "ours": it may be MOBILE-PAY's own (3.4.2). Fields that
    contradict each other say nothing (UNREADABLE), so such an item is never taken as ours.
    """
    said: set[Attribution] = set()
    listed = item.metadata.get("reference") if item.metadata else None
    if isinstance(listed, str) and listed:
        said.add(Attribution.OURS if listed == reference else Attribution.OTHER)
    if item.reference == reference:
        said.add(Attribution.OURS)
    said.add(read_marker(item.description, reference))
    tag = _REFERENCE_TAG.search(item.description or "")
    if tag:
        said.add(Attribution.OURS if tag.group(1) == reference else Attribution.OTHER)
    said.discard(Attribution.UNREADABLE)
    return said.pop() if len(said) == 1 else Attribution.UNREADABLE


def matches_reference(item: MobilePayTransactionItem, reference: str) -> bool:
    """The item is ours by its fields (:func:`attribute`)."""
    return attribute(item, reference) is Attribution.OURS


def matches_id(item: MobilePayTransactionItem, provider_transaction_id: str) -> bool:
    """The id under ``id``, ``transfer_id``, ``payment_id`` or ``transaction_id``."""
    return provider_transaction_id in item.ids()


def kind_of(direction: Direction) -> TransactionKind:
    """What a payout or a payin is in MOBILE-PAY's history."""
    return TransactionKind.TRANSFER if direction is Direction.PAYOUT else TransactionKind.PAYMENT


def claims(item: MobilePayTransactionItem, lookup: SharedLookup) -> bool:
    """The history item answers ``lookup``: by MOBILE-PAY's id when the lookup has one,
    else by kind and our marker or reference (:func:`matches_reference`)."""
    tx_id = lookup.lookup.provider_transaction_id
    if tx_id:
        return matches_id(item, tx_id)
    return is_kind(item, kind_of(lookup.direction)) and matches_reference(
        item, lookup.lookup.external_reference
    )


def same_phone(listed: str | None, sent: str) -> bool:
    """Compare phone numbers by digits; a masked listing (``+225****4567``) is compared on
    its visible trailing digits. An absent phone does not contradict."""
    if not listed:
        return True
    sent_digits = re.sub(r"\D", "", sent)
    if "*" in listed:
        tail = re.sub(r"\D", "", listed.rsplit("*", 1)[-1])
        return len(tail) >= 4 and sent_digits.endswith(tail)
    return re.sub(r"\D", "", listed) == sent_digits


def is_kind(item: MobilePayTransactionItem, kind: TransactionKind) -> bool:
    """The item is of ``kind`` (or says nothing about its type)."""
    return item_kind(item, kind) is kind


def in_window(item: MobilePayTransactionItem, since: datetime, until: datetime | None) -> bool:
    """True unless the item's creation time is known and outside ``[since, until]``."""
    if item.created_at is None:
        return True
    created = as_utc(item.created_at)
    return created >= since and (until is None or created <= until)


def past_window(page: MobilePayTransactionPage, since: datetime) -> bool:
    """True when a newest-first page has reached items older than the window, so later
    pages cannot hold a match. The order is not documented (3.3), so an unsorted page or
    an undated item never ends the search early."""
    dates = [item.created_at for item in page.data]
    if not dates or any(d is None for d in dates):
        return False
    stamps = [as_utc(d) for d in dates if d is not None]
    newest_first = all(a >= b for a, b in zip(stamps, stamps[1:], strict=False))
    return newest_first and stamps[-1] < since


class Verdict(StrEnum):
    """What one history item means for a create call whose earlier attempt may have
    reached MOBILE-PAY (3.4.5)."""

    #: Not ours: another type, outside the time window, someone else's marker or
    #: reference, or another amount or number without any marker.
    NONE = "none"
    #: Ours: our marker (or reference), same amount and number.
    MATCH = "match"
    #: Our marker with another amount or number: reconcile, never create.
    CONFLICT = "conflict"
    #: Same amount and number in the window, but nothing readable says whose it is.
    UNATTRIBUTABLE = "unattributable"


def judge_existing(
    item: MobilePayTransactionItem,
    *,
    kind: TransactionKind,
    reference: str,
    amount: int,
    phone: str | None,
    since: datetime,
    until: datetime | None = None,
) -> Verdict:
    """Whether ``item`` is the transaction an earlier attempt may have created.

    The checks: the type, the creation time within ``[since, until]``, whose the item is
    (:func:`attribute`), the amount and the number (:func:`same_phone`). The history's
    item shape is assumed (3.4.2); a field it lacks never contradicts, so an item of the
    same amount and number that carries no readable marker is UNATTRIBUTABLE, never NONE.
    """
    if not is_kind(item, kind) or not in_window(item, since, until):
        return Verdict.NONE
    whose = attribute(item, reference)
    if whose is Attribution.OTHER:
        return Verdict.NONE
    same = (item.amount is None or item.amount == amount) and (
        phone is None or same_phone(item.recipient_phone, phone)
    )
    if whose is Attribution.OURS:
        return Verdict.MATCH if same else Verdict.CONFLICT
    return Verdict.UNATTRIBUTABLE if same else Verdict.NONE


def search_finished(page: MobilePayTransactionPage, *, seen: int, since: datetime) -> bool:
    """True when no later page of ``GET /transactions`` can hold a match: the list is
    exhausted or has left the window.

    Exhausted means an empty page, ``seen >= total``, or a page shorter than the ``limit``
    the answer echoes. A short page that echoes neither proves nothing (a server may cap
    the page size below what was asked), so the search reads on to an empty page.
    """
    if not page.data:
        return True
    if page.total is not None:
        if seen >= page.total:
            return True
    elif page.limit is not None and len(page.data) < page.limit:
        return True
    return past_window(page, since)


def as_utc(moment: datetime) -> datetime:
    """A naive datetime is read as UTC (Côte d'Ivoire's time zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- errors

#: 8 to 15 digits, single spaces allowed: phone numbers, not amounts (at most 7 digits).
_PHONE_LIKE = re.compile(r"\+?\d(?: ?\d){7,14}")


def scrub(text: str | None, *, limit: int = 300) -> str | None:
    """Mask phone-like numbers in a provider message and cap its length: MOBILE-PAY's
    messages are free French text that may echo the number."""
    if text is None:
        return None
    masked = _PHONE_LIKE.sub(lambda m: mask_phone(m.group(0).replace(" ", "")), text)
    return masked[:limit]


#: Business codes (3.4.6, partly assumed) and the final decline each means.
_REJECTION_CODES: dict[str, type[errors.ProviderRejected]] = {
    "INSUFFICIENT_FUNDS": errors.InsufficientBalance,
    "INSUFFICIENT_BALANCE": errors.InsufficientBalance,
    "INVALID_PHONE": errors.InvalidRecipient,
    "RECIPIENT_NOT_FOUND": errors.InvalidRecipient,
    "INVALID_AMOUNT": errors.InvalidAmount,
    "INVALID_COUNTRY": errors.OperatorUnavailable,
}


def read_error_body(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) from ``{error: {code, message}}`` (3.4.6), a flat ``{code, message}``,
    ``{error: "..."}`` or plain text."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        text = body.decode("utf-8", errors="replace").strip()
        return None, text or None
    if not isinstance(payload, dict):
        return None, None
    inner = payload.get("error")
    if isinstance(inner, dict):
        return _text(inner.get("code")), _text(inner.get("message"))
    code, message = _text(payload.get("code")), _text(payload.get("message"))
    return code, message or _text(inner)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def classify_error(
    operation: str, status: int, body: bytes, headers: Mapping[str, str], *, now: float
) -> errors.ProviderError:
    """The error a non-2xx MOBILE-PAY answer means (design rule 6)."""
    code, message = read_error_body(body)
    code = (code or "").strip().upper() or None
    text = scrub(message) or f"HTTP {status}"
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "operation": operation,
        "http_status": status,
        "provider_code": code,
    }
    if status == 429 or code == "RATE_LIMITED":
        # No rate-limit headers are documented (3.2): Retry-After is honoured if sent.
        return errors.ProviderRateLimited(
            text, retry_after=retry_after_seconds(headers, now=now), **common
        )
    if status >= 500 or status == 408:
        return errors.ProviderUnavailable(text, **common)
    if status in (401, 403) or code == "UNAUTHORIZED":
        return errors.ProviderAuthError(text, **common)
    if status == 409:
        # No idempotency exists (3.4.5): a conflict can only mean "this may already exist",
        # which must be reconciled, never read as a decline.
        return errors.DuplicateReference(text, **common)
    if code in _REJECTION_CODES:
        return _REJECTION_CODES[code](text, **common)
    return errors.InvalidRequest(text, **common)


# --------------------------------------------------------------------------- webhooks


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower())


def verify_webhook_token(headers: Mapping[str, str], *, expected: str) -> None:
    """Check the secret URL token the gateway copied into ``x-momoflow-webhook-token``:
    MOBILE-PAY signs nothing, so the URL is the only secret (3.4.7)."""
    token = (_header(headers, WEBHOOK_TOKEN_HEADER) or "").strip()
    if not token:
        raise errors.WebhookVerificationError("missing webhook token", reason="missing")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise errors.WebhookVerificationError("webhook token does not match", reason="mismatch")


def parse_webhook_event(body: bytes) -> ProviderEvent:
    """Normalise a webhook whose token was checked. ``verified`` is always False: nothing
    proves MOBILE-PAY sent it, so the workflow only reads the status (design rule 3)."""
    try:
        wire = MobilePayWebhook.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):
        # ``from None``: the parse error quotes the body, and ``payer`` is a phone number.
        raise errors.WebhookVerificationError(
            "body is not a MOBILE-PAY webhook", reason="bad_body"
        ) from None
    data = wire.data
    status, raw_status, transaction_id = PaymentStatus.PENDING, wire.event, None
    match wire.event:
        case "transfer.completed":
            status, raw_status = PaymentStatus.SUCCEEDED, data.status or "completed"
            transaction_id = data.transfer_id
        case "payment.received":
            status, raw_status = PaymentStatus.SUCCEEDED, data.status or "received"
            transaction_id = data.payment_id
        case "transaction.failed":
            status, raw_status = PaymentStatus.FAILED, data.status or "failed"
            transaction_id = data.transaction_id or data.transfer_id or data.payment_id
        case _:
            transaction_id = data.transaction_id or data.transfer_id or data.payment_id
    if transaction_id is None and status is not PaymentStatus.PENDING:
        raise errors.WebhookVerificationError(
            f"{wire.event} without a transaction id", reason="bad_body"
        )
    return ProviderEvent(
        provider=ProviderName.MOBILEPAY,
        event_id=hashlib.sha256(body).hexdigest(),
        event_type=wire.event,
        external_reference=None,
        provider_transaction_id=transaction_id,
        status=status,
        raw_status=raw_status,
        amount=data.amount,
        currency=normalise_currency(data.currency),
        failure_code=data.error_code,
        failure_message=scrub(data.error_message),
        verified=False,
    )
