"""Shared status reads: one list read answers every pending transaction of a provider.

MOBILE-PAY has no per-transaction status endpoint: a status is read by walking
``GET /transactions`` (providers.md 3.3), up to 10 pages and a login, and its plan counts
HTTP requests (100 or 1,000 an hour, seed 003). Reading each transaction on its own would
cost requests in proportion to the number pending, and a task-queue rate limit, which
counts activities, cannot hold a budget of requests.

So a MOBILE-PAY payout or payin does not read its status itself. It asks the provider's
reader workflow (``STATUS_READER_WORKFLOW``, one per provider,
:func:`momoflow.ids.status_reader_workflow_id`) with the ``READ_SIGNAL``, through the
``REQUEST_STATUS_READ_ACTIVITY`` (signal-with-start, so the reader is started on first use
and after any end). The reader gathers the requests, walks the list once for all of them
(``SWEEP_STATUS_READS_ACTIVITY``), and the sweep answers each transaction with the
``ANSWER_SIGNAL``: the transaction as listed, or "not visible" (the names are in
:mod:`momoflow.contract`).
The reader then waits, before its next walk, as long as the requests it just spent buy at
the budget (:func:`next_sweep_delay`): the cost in requests per hour stays under the budget
whatever the number of pending transactions.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from momoflow.models import ProviderName, ProviderTransaction, SharedLookup

#: Default history length past which the reader continues as new.
DEFAULT_MAX_HISTORY_EVENTS = 2_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadBudget(_Model):
    """What a provider's shared reads may spend: requests an hour, and the shortest wait
    between two list reads (the worker's settings)."""

    per_hour: float = Field(gt=0)
    min_interval_s: float = Field(ge=0)


class ReadRequest(_Model):
    """One transaction asks for its status. ``request_id`` grows with each of its asks;
    the answer echoes it."""

    workflow_id: str
    request_id: int = Field(ge=1)
    lookup: SharedLookup


class ReadAnswer(_Model):
    """The answer to a :class:`ReadRequest`: the transaction as the provider lists it, or
    None with ``detail`` saying why (not visible yet, or the read failed)."""

    request_id: int
    transaction: ProviderTransaction | None = None
    detail: str = ""
    read_at: datetime


class SweepRequest(_Model):
    """One list read for every request gathered since the last one."""

    provider: ProviderName
    requests: list[ReadRequest]


class SweepResult(_Model):
    """What a list read cost and what the worker's settings allow."""

    requests_spent: int = Field(ge=0)
    #: Requests an hour the shared reads may spend (the worker's settings).
    budget_per_hour: float = Field(gt=0)
    #: The shortest wait between two list reads (the worker's settings).
    min_interval_s: float = Field(ge=0)
    found: int = 0
    missing: int = 0
    #: Transactions that could not be told (their workflow ended or is gone).
    unanswered: int = 0
    error: str | None = None


class Spent(_Model):
    """Requests one list read cost, and when it started."""

    at: datetime
    requests: int = Field(ge=0)


class ReaderInput(_Model):
    """Start (or continue-as-new) of a reader: the requests not read yet."""

    provider: ProviderName
    pending: list[ReadRequest] = Field(default_factory=list)
    next_sweep_at: datetime | None = None
    #: The list reads of the last hour (what the budget has already paid for).
    spent: list[Spent] = Field(default_factory=list)
    #: The last sweep's budget and interval, used until the next sweep reports them.
    budget_per_hour: float | None = None
    min_interval_s: float | None = None
    max_history_events: int = Field(default=DEFAULT_MAX_HISTORY_EVENTS, ge=100)


class ReaderState(_Model):
    """What the reader's ``state`` query shows."""

    provider: ProviderName
    pending: int
    sweeps: int
    requests_last_hour: int
    next_sweep_at: datetime | None
    budget_per_hour: float | None
    last_outcome: str


#: The most requests one list read may cost: its pages and a login.
MAX_READ_COST = 11
#: A list read heartbeats this often (seconds) ...
SWEEP_HEARTBEAT_EVERY_S = 5.0
#: ... and is given up after this long without one (seconds): when its worker dies, the
#: reader reads again soon, not at the end of the read's whole timeout (five minutes during
#: which every MOBILE-PAY transaction would wait for its status).
SWEEP_HEARTBEAT_TIMEOUT_S = 30


def next_sweep_delay(
    requests_spent: int, *, budget_per_hour: float, min_interval_s: float
) -> float:
    """Seconds to wait after a list read that cost ``requests_spent`` requests, so that
    list reads never spend more than ``budget_per_hour`` requests an hour."""
    return max(min_interval_s, requests_spent * 3600.0 / budget_per_hour)


def wait_for_budget(spent: list[Spent], *, now: datetime, budget_per_hour: float) -> float:
    """Seconds until a list read that may cost :data:`MAX_READ_COST` requests fits in the
    budget of every hour: the reads of the last hour plus that cost stay within
    ``budget_per_hour``. 0 when it fits now."""
    window = [s for s in spent if (now - s.at).total_seconds() < 3600]
    total = sum(s.requests for s in window) + MAX_READ_COST
    wait = 0.0
    for entry in sorted(window, key=lambda s: s.at):
        if total <= budget_per_hour:
            break
        total -= entry.requests
        wait = 3600.0 - (now - entry.at).total_seconds()
    return max(0.0, wait)
