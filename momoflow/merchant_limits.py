"""Per-merchant limits on the business API, held in Temporal for every gateway replica.

Two limits, both per merchant:

* **Requests per window.** Each gateway replica answers from tokens it leased; when it has
  none left it leases more (update ``lease_requests``). The merchant's
  :data:`MERCHANT_LIMITS_WORKFLOW` grants at most the window's limit in total, whoever
  asks, so N replicas never admit more than the limit between them. Windows are fixed
  (``floor(now / window_s)``, on the workflow's clock), so a burst can reach twice the
  limit across a window boundary, never more.
* **Campaign pre-flights at once.** Pre-flight holds a file's lines in the worker's memory;
  ``acquire_preflight`` admits a new campaign only while fewer than the cap of the
  merchant's campaigns hold a slot. A slot is freed when the gateway finds its campaign no
  longer in pre-flight (ended, past pre-flight, or never started), so a campaign that dies
  without telling anyone cannot hold it for ever.

This module holds the models and the pure rules the workflow applies; the gateway's side
is :mod:`momoflow.gateway.limits`, the workflow :mod:`workflows.merchant_limits`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

#: A replica leases a twentieth of the window's limit at a time: few round trips to
#: Temporal, and little left unused in one replica while another is refused.
LEASE_FRACTION = 20


class LeaseRequest(BaseModel):
    """A replica asks for up to ``want`` requests of the current window. The limit travels
    with the request, so the workflow never reads configuration (a replay stays the same
    whatever the deployment's settings)."""

    want: int = Field(ge=1)
    limit: int = Field(ge=1)
    window_s: int = Field(ge=1)


class Lease(BaseModel):
    """Requests granted (0 when the window is spent) and when the window ends."""

    granted: int = Field(ge=0)
    window_ends_at: datetime


class SlotRequest(BaseModel):
    """A campaign asks to start pre-flight while at most ``cap`` do."""

    campaign_id: str
    cap: int = Field(ge=1)


class SlotAnswer(BaseModel):
    """Whether the campaign holds a slot, and which campaigns hold the slots (with when
    each took it)."""

    granted: bool
    holders: dict[str, datetime]


class LimitsCarry(BaseModel):
    """What the merchant's limits workflow knows, carried across continue-as-new."""

    window_index: int | None = None
    window_s: int | None = None
    granted: int = 0
    #: Campaign id → when it took its slot.
    preflights: dict[str, datetime] = Field(default_factory=dict)


class LimitsInput(BaseModel):
    """Input of one merchant's limits workflow."""

    merchant: str
    #: Continue as new past this many history events.
    max_history_events: int = Field(default=2_000, ge=100)
    carry: LimitsCarry | None = None


def lease_size(limit: int) -> int:
    """How many requests a replica leases at a time under ``limit`` per window."""
    return max(1, limit // LEASE_FRACTION)


def window_end(now: datetime, window_s: int) -> datetime:
    """The end of the fixed window of ``window_s`` seconds that holds ``now``."""
    index = math.floor(now.timestamp() / window_s)
    return datetime.fromtimestamp((index + 1) * window_s, UTC)


def grant_requests(carry: LimitsCarry, now: datetime, request: LeaseRequest) -> Lease:
    """Grant what the window has left, at most ``request.want`` (updates ``carry``)."""
    index = math.floor(now.timestamp() / request.window_s)
    if carry.window_index != index or carry.window_s != request.window_s:
        carry.window_index, carry.window_s, carry.granted = index, request.window_s, 0
    granted = max(0, min(request.want, request.limit - carry.granted))
    carry.granted += granted
    return Lease(granted=granted, window_ends_at=window_end(now, request.window_s))


def take_slot(carry: LimitsCarry, now: datetime, request: SlotRequest) -> SlotAnswer:
    """Give ``request.campaign_id`` a pre-flight slot if it has one or one is free."""
    held = request.campaign_id in carry.preflights
    if not held and len(carry.preflights) < request.cap:
        carry.preflights[request.campaign_id] = now
        held = True
    return SlotAnswer(granted=held, holders=dict(sorted(carry.preflights.items())))


def free_slots(carry: LimitsCarry, campaign_ids: list[str]) -> None:
    """Free the slots of ``campaign_ids`` (ids without a slot are ignored)."""
    for campaign_id in campaign_ids:
        carry.preflights.pop(campaign_id, None)


def retry_after_s(window_ends_at: datetime, now: datetime) -> int:
    """Whole seconds until ``window_ends_at`` (at least 1), for ``Retry-After``."""
    return max(1, math.ceil((window_ends_at - now) / timedelta(seconds=1)))
