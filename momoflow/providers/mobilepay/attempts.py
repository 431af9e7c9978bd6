"""Whether an earlier attempt of a transfer may have reached MOBILE-PAY.

MOBILE-PAY has no idempotency (providers.md 3.3): every transfer it receives executes. A
transfer may therefore be sent again only when every earlier attempt **provably executed
nothing** (3.4.5). The proofs accepted (:func:`proves_not_executed`):

* the request never left: the connection was refused or could not be opened in time
  (``httpx.ConnectError``, ``ConnectTimeout``, ``PoolTimeout``), or the session login
  before it failed;
* MOBILE-PAY refused it before executing: 429 (M1: "wait before retrying"), 401/403
  (assumed: an unauthenticated request executes nothing), or a final decline
  (:class:`~momoflow.providers.errors.ProviderRejected`, which is never retried anyway).

A timeout after sending, a 5xx or an unreadable answer proves nothing: the transfer may
exist. The attempts after one of those never send again; they search the transaction list
(see :mod:`momoflow.providers.mobilepay.client`).

The proof has to outlive the attempt that saw it, since Temporal retries the activity,
maybe on another worker. :class:`HeartbeatJournal` keeps it in the activity's heartbeat
details, which the Temporal server stores with the activity and hands to the next attempt,
also when the attempt fails right after recording them. A missing record means "may have
executed": an attempt that dies (a worker crash, a start-to-close timeout) records nothing,
and the next one, finding no proof for it, only searches. Besides the proof, the record
keeps when an unknown outcome was first noticed, from which the consistency window counts;
a lost record only restarts that window later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio import activity

from momoflow.providers import errors

#: ``kind`` of a :class:`SendRecord` in heartbeat details.
RECORD_KIND = "momoflow.mobilepay.send"
#: Transport failures raised before any byte of the request was sent.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class SendRecord(BaseModel):
    """What the attempts of one create call have established so far."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    #: Tells this record from any other heartbeat detail.
    kind: Literal["momoflow.mobilepay.send"] = "momoflow.mobilepay.send"
    #: The create call's external reference: a record about another call proves nothing.
    reference: str
    #: Attempts 1 to ``unsent_through`` provably executed nothing.
    unsent_through: int = Field(default=0, ge=0)
    #: When an attempt whose outcome is unknown was first noticed (no earlier than the
    #: transfer it may have made): the consistency window counts from here.
    unknown_since: datetime | None = None

    def allows_send(self, attempt: int) -> bool:
        """True when every attempt before ``attempt`` provably executed nothing."""
        return self.unsent_through >= attempt - 1


class SendJournal(Protocol):
    """Where the proof of "never executed" survives from one attempt to the next."""

    def read(self, reference: str) -> SendRecord | None:
        """The latest record about ``reference``, or None."""

    def write(self, record: SendRecord) -> None:
        """Keep ``record`` for the next attempts."""


class HeartbeatJournal:
    """The current Temporal activity's heartbeat details. Outside an activity nothing is
    kept, so no attempt after the first has a proof and none sends again."""

    def read(self, reference: str) -> SendRecord | None:
        """The record in the heartbeat details an earlier attempt left, if any."""
        if not activity.in_activity():
            return None
        for detail in reversed(activity.info().heartbeat_details):
            if not isinstance(detail, dict) or detail.get("kind") != RECORD_KIND:
                continue
            try:
                record = SendRecord.model_validate(detail)
            except ValidationError:
                continue
            if record.reference == reference:
                return record
        return None

    def write(self, record: SendRecord) -> None:
        """Heartbeat ``record``; the SDK sends the latest details with the attempt's end."""
        if activity.in_activity():
            activity.heartbeat(record.model_dump(mode="json"))


class MemoryJournal:
    """Records kept in this object: for tests and for one-off use outside Temporal."""

    def __init__(self) -> None:
        self.records: dict[str, SendRecord] = {}

    def read(self, reference: str) -> SendRecord | None:
        """The latest record about ``reference``."""
        return self.records.get(reference)

    def write(self, record: SendRecord) -> None:
        """Replace the record about ``record.reference``."""
        self.records[record.reference] = record


def proves_not_executed(error: errors.ProviderError) -> bool:
    """True when ``error``, raised by a create call, proves MOBILE-PAY executed nothing
    (see the module docstring). Everything else leaves the outcome unknown."""
    if isinstance(error.__cause__, _NEVER_SENT) or isinstance(error, errors.ProviderRejected):
        return True
    if isinstance(error, errors.ProviderRateLimited) and error.http_status == 429:
        return True
    return isinstance(error, errors.ProviderAuthError) and error.http_status in (401, 403)


def record_after(
    previous: SendRecord | None,
    *,
    reference: str,
    attempt: int,
    executed_nothing: bool,
    now: datetime,
) -> SendRecord:
    """The record once ``attempt`` has ended: the proof extended to it, or the moment its
    unknown outcome was noticed (kept from an earlier attempt when already set)."""
    unsent = previous.unsent_through if previous else 0
    since = previous.unknown_since if previous else None
    if executed_nothing and unsent >= attempt - 1:
        return SendRecord(reference=reference, unsent_through=attempt, unknown_since=since)
    return SendRecord(reference=reference, unsent_through=unsent, unknown_since=since or now)
