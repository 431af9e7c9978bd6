"""Merchant notifications: the body we POST, how we sign it, and how to verify it.

This module is pure (no I/O) and is the reference for merchants' developers. Each
notification is an HTTP ``POST`` of a compact JSON body to the merchant's URL::

    {"created_at":"2026-03-01T09:30:12.345Z","data":{...},
     "id":"payin-demo-ORDER-42:payin.succeeded:1","type":"payin.succeeded"}

(``data`` is the transaction's state; ``docs/notifications.md`` shows a whole event)

with these headers:

* ``Content-Type: application/json``
* ``Momoflow-Event-Id``: the event's id, the same on every delivery of that event;
* ``Momoflow-Event-Type``: the event's type, for example ``payin.succeeded``;
* ``Momoflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``;
* ``User-Agent: momoflow-notifications/0.1``.

The signature is Stripe-style: ``v1`` is the lowercase hex HMAC-SHA256, keyed with the
merchant's notification secret, of the timestamp, a ``.`` and the *raw* body bytes::

    v1 = hmac_sha256(secret, f"{t}.".encode() + raw_body).hexdigest()

To verify a delivery, recompute ``v1`` over the raw body as received (never over a
re-serialised copy of the parsed JSON), compare it in constant time with every ``v1`` in the
header, and refuse a timestamp more than five minutes away from your clock: :func:`verify`
does exactly that, and :func:`construct_event` verifies and returns the typed event.
Deliveries are at least once: de-duplicate on the event id.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from momoflow.models import MerchantNotification, PayinState, PayoutState, RefundState

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "InvalidNotification",
    "NotificationEvent",
    "construct_event",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "MAX_RETRY_AFTER_S",
    "SIGNATURE_HEADER",
    "SIGNATURE_SCHEME",
    "USER_AGENT",
    "NotificationSignatureError",
    "SignatureFailure",
    "notification_body",
    "notification_headers",
    "retry_after_s",
    "sign",
    "verify",
]

#: The header that carries ``t=<timestamp>,v1=<signature>``.
SIGNATURE_HEADER = "Momoflow-Signature"
#: The header that carries the event's id (the de-duplication key).
EVENT_ID_HEADER = "Momoflow-Event-Id"
#: The header that carries the event's type.
EVENT_TYPE_HEADER = "Momoflow-Event-Type"
#: The ``User-Agent`` of every delivery.
USER_AGENT = "momoflow-notifications/0.1"
#: The signature scheme momoflow sends (HMAC-SHA256); other schemes in a header are ignored.
SIGNATURE_SCHEME = "v1"
#: How far (seconds, either way) a signature's timestamp may be from the verifier's clock.
DEFAULT_TOLERANCE_S = 300
#: The longest ``Retry-After`` momoflow honours; a longer one is cut to this.
MAX_RETRY_AFTER_S = 3600

#: Why a signature was refused.
SignatureFailure = Literal["missing", "malformed", "stale", "mismatch"]


class NotificationSignatureError(Exception):
    """A notification's signature was refused; ``reason`` says why.

    * ``missing``: no ``Momoflow-Signature`` header;
    * ``malformed``: the header has no integer ``t=`` or no ``v1=``;
    * ``mismatch``: no ``v1`` matches the body with the given secret(s);
    * ``stale``: the signature matches, but its timestamp is outside the tolerance (a replay,
      or a clock that is off).
    """

    def __init__(self, reason: SignatureFailure) -> None:
        super().__init__(f"notification signature refused: {reason}")
        self.reason: SignatureFailure = reason


class InvalidNotification(Exception):
    """An authentic notification this version cannot read (not JSON, an unknown event type,
    or ``data`` that is not a transaction)."""


#: The transaction model of each event type's first half.
EVENT_MODELS: dict[str, type[PayoutState] | type[PayinState] | type[RefundState]] = {
    "payout": PayoutState,
    "payin": PayinState,
    "refund": RefundState,
}


@dataclass(frozen=True)
class NotificationEvent:
    """A verified notification: ``data`` is the transaction as it was at ``created_at``
    (without its timeline and notification list)."""

    id: str
    type: str
    created_at: datetime
    data: PayoutState | PayinState | RefundState


def construct_event(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | Iterable[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> NotificationEvent:
    """Verify a delivery and return its typed event.

    ``body`` is the raw request body, ``headers`` the request's headers (any case), and
    ``secret`` the merchant's notification secret (several while one is rotated). Raises
    :class:`NotificationSignatureError` when the delivery is not authentic (checked first:
    nothing of an unsigned body is parsed), :class:`InvalidNotification` when it is
    authentic but not readable by this version. Fields this version does not know are
    ignored, so a newer momoflow's notifications still read.
    """
    header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
    verify(secret, body, header, now=time.time() if now is None else now, tolerance_s=tolerance_s)
    try:
        document = json.loads(body)
        kind = str(document["type"]).split(".", 1)[0]
        model = EVENT_MODELS[kind]
        data: dict[str, Any] = document["data"]
        return NotificationEvent(
            id=str(document["id"]),
            type=str(document["type"]),
            created_at=datetime.fromisoformat(str(document["created_at"])),
            data=model.model_validate(_known_fields(model, data)),
        )
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise InvalidNotification(f"unreadable notification: {exc}") from None


def _known_fields(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in data.items() if name in model.model_fields}


def notification_body(n: MerchantNotification) -> bytes:
    """The exact bytes POSTed for ``n``: compact JSON with sorted keys, ASCII only.

    The same notification always gives the same bytes, so every delivery of an event carries
    an identical body. ``created_at`` is ``n.occurred_at`` in UTC with millisecond precision
    and a ``Z`` suffix; a naive ``occurred_at`` is taken as UTC.
    """
    document = {
        "id": n.event_id,
        "type": n.event_type,
        "created_at": _iso_utc(n.occurred_at),
        # Dates, enums and decimals become their JSON forms here, so a ``data`` built from a
        # model dump serialises the same whether or not it went through Temporal first.
        "data": to_jsonable_python(n.data),
    }
    # ASCII-only bytes cannot be changed by a receiver that decodes and re-encodes the body
    # with the wrong charset, which would break the signature.
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Momoflow-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds).

    ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``.
    """
    return f"t={timestamp},{SIGNATURE_SCHEME}={_digest(secret, body, timestamp)}"


def verify(
    secret: str | Iterable[str],
    body: bytes,
    header: str | None,
    *,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a ``Momoflow-Signature`` header against the raw ``body``; return or raise.

    ``secret`` may be several secrets (while a secret is being rotated, accept the old and
    the new one); the header may carry several ``v1`` values. The delivery is authentic when
    any ``v1`` matches any secret (compared in constant time). ``now`` is the verifier's
    clock in unix seconds, normally ``time.time()``.

    Raises :class:`NotificationSignatureError` with the reason ``missing``, ``malformed``,
    ``mismatch`` or ``stale``.
    """
    if header is None or not header.strip():
        raise NotificationSignatureError("missing")
    timestamp, signatures = _parse_header(header)
    secrets = [secret] if isinstance(secret, str) else list(secret)
    candidates = [s.encode("utf-8") for s in signatures]
    # Every comparison is made even after a match, so timing reveals nothing about which.
    matched = False
    for key in secrets:
        expected = _digest(key, body, timestamp).encode("ascii")
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise NotificationSignatureError("mismatch")
    # Checked after the signature, so "stale" only ever describes an authentic delivery.
    if abs(now - timestamp) > tolerance_s:
        raise NotificationSignatureError("stale")


def notification_headers(n: MerchantNotification, *, signature: str) -> dict[str, str]:
    """The HTTP headers of a delivery of ``n`` signed with ``signature`` (from :func:`sign`)."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature,
        EVENT_ID_HEADER: n.event_id,
        EVENT_TYPE_HEADER: n.event_type,
        "User-Agent": USER_AGENT,
    }


def retry_after_s(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date), at most
    :data:`MAX_RETRY_AFTER_S`; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), float(MAX_RETRY_AFTER_S))


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise NotificationSignatureError("malformed")
        if key == "t":
            value = value.strip()
            if timestamp is not None or not value.isascii() or not value.isdigit():
                raise NotificationSignatureError("malformed")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value.strip())
    if timestamp is None or not signatures:
        raise NotificationSignatureError("malformed")
    return timestamp, signatures


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
