"""Reconciliation: what the sweep, the daily report and the operator's tools exchange, and
the pure rules that compare momoflow's outcomes with a provider's.

Nothing here does I/O; :mod:`momoflow.reconciliation.operations` talks to Temporal, the
activities in ``activities/reconcile.py`` talk to Temporal and the providers, and the
workflows in ``workflows/reconcile.py`` decide.

Two jobs close what the transaction workflows cannot close alone:

* the **sweep** (every ``sweep_interval_s``): every ``reconciling`` transaction is asked to
  read its status now (signal ``recheck``); the sweep reports which ones the provider's
  answer resolved and which ones still need a human, and why;
* the **daily report** (one per provider and day): the provider's transaction list (or,
  where the provider has none, a status read per transaction) against momoflow's outcomes,
  every mismatch flagged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from momoflow.contract import REFUND_WORKFLOW
from momoflow.models import (
    Direction,
    Failure,
    ListedTransaction,
    PaymentStatus,
    ProviderBalance,
    ProviderName,
    ProviderTransaction,
    TransactionStatus,
)
from momoflow.providers.catalog import capabilities_of
from momoflow.providers.markers import reference_marker

#: Mismatches listed by name in one report (the counts are always complete).
MAX_LISTED_MISMATCHES = 2000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def sweep_schedule_id(prefix: str) -> str:
    """The sweep's schedule: ``momoflow-reconcile-sweep`` for the default prefix."""
    return f"{prefix}-reconcile-sweep"


def report_schedule_id(prefix: str) -> str:
    """The daily report's schedule: ``momoflow-reconcile-report``."""
    return f"{prefix}-reconcile-report"


def report_workflow_id(prefix: str, provider: ProviderName, day: date) -> str:
    """One report per provider and day: ``momoflow-reconcile-report-mobilepay-2026-11-22``."""
    return f"{prefix}-reconcile-report-{provider.value}-{day.isoformat()}"


def kind_of(workflow_type: str) -> str:
    """``payout``, ``payin`` or ``refund`` for a transaction workflow type."""
    return workflow_type.removesuffix("Workflow").lower()


# --------------------------------------------------------------------------- the sweep


class SweepInput(_Model):
    """The sweep's bounds, fixed by the schedule (``momoflow reconcile schedule``)."""

    #: At most this many reconciling transactions are rechecked per run; the report says
    #: when more were left for the next run.
    max_transactions: int = Field(default=500, ge=1)
    #: Rechecks run in batches of this size, side by side.
    batch_size: int = Field(default=50, ge=1, le=500)
    #: How long a batch waits for its status reads to finish (a read gives up after 2 min).
    recheck_wait_s: int = Field(default=180, ge=1)


class ReconcilingTransaction(_Model):
    """One ``reconciling`` transaction as operators see it: what, where, since when, why."""

    workflow_id: str
    run_id: str | None = None
    workflow_type: str
    #: ``payout``, ``payin`` or ``refund``.
    kind: str
    merchant: str | None = None
    reference: str | None = None
    provider: ProviderName | None = None
    amount: int | None = None
    currency: str | None = None
    phone_masked: str | None = None
    status: TransactionStatus = TransactionStatus.RECONCILING
    #: False once the workflow has closed (a refund past its horizon): no update can reach it.
    running: bool = True
    failure: Failure | None = None
    provider_transaction_id: str | None = None
    provider_status: str | None = None
    reconciling_since: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    status_polls: int = 0
    #: Whether a status read can tell anything; ``not_readable_reason`` says why not.
    readable: bool = True
    not_readable_reason: str | None = None
    #: Set when the workflow did not answer the ``state`` query (no worker?).
    state_error: str | None = None

    def age(self, now: datetime) -> timedelta | None:
        """How long it has been reconciling (from its start when that is unknown)."""
        since = self.reconciling_since or self.started_at
        return None if since is None else now - since


class FindReconcilingInput(_Model):
    """Which reconciling transactions to list (one deployment: its workflow task queue)."""

    task_queue: str
    limit: int = Field(default=500, ge=1)
    page_size: int = Field(default=100, ge=1, le=1000)
    provider: ProviderName | None = None
    #: Also closed workflows that ended ``reconciling`` (they cannot be resolved here).
    include_closed: bool = False


class FoundReconciling(_Model):
    """A bounded listing: ``truncated`` when more matched than ``limit``."""

    transactions: list[ReconcilingTransaction] = Field(default_factory=list)
    total: int = 0
    truncated: bool = False


class RecheckInput(_Model):
    """Ask these transactions to read their status now and wait for the reads."""

    transactions: list[ReconcilingTransaction]
    wait_s: int = Field(default=180, ge=1)
    requested_by: str


class SweepOutcome(StrEnum):
    """What a recheck achieved for one transaction."""

    #: The provider's answer made it final.
    RESOLVED = "resolved"
    #: The read came back and the provider still has no final answer (or failed to answer).
    STILL_RECONCILING = "still_reconciling"
    #: Nothing to read: no provider id and no search by our reference, or no status endpoint.
    NOT_READABLE = "not_readable"
    #: The workflow did not answer in time (worker down, provider queue throttled).
    NO_ANSWER = "no_answer"


class SweepItem(_Model):
    """One transaction's line in a sweep report."""

    transaction: ReconcilingTransaction
    outcome: SweepOutcome
    status: TransactionStatus
    detail: str


class SweepReport(_Model):
    """What one sweep resolved, and what it leaves for operators (with the reason)."""

    started_at: datetime
    finished_at: datetime | None = None
    total_reconciling: int = 0
    examined: int = 0
    truncated: bool = False
    max_transactions: int = 0
    resolved: list[SweepItem] = Field(default_factory=list)
    unresolved: list[SweepItem] = Field(default_factory=list)

    def markdown(self) -> str:
        """A short summary for the Temporal UI (the run's current details)."""
        lines = [
            f"**Reconciliation sweep**: {self.examined} of {self.total_reconciling} "
            f"reconciling transactions examined, {len(self.resolved)} resolved, "
            f"{len(self.unresolved)} left for operators"
            + (f" (capped at {self.max_transactions}: the rest next run)" if self.truncated else "")
        ]
        for item in self.resolved[:20]:
            lines.append(f"- resolved `{item.transaction.workflow_id}`: {item.status.value}")
        for item in self.unresolved[:50]:
            lines.append(f"- **needs a human** `{item.transaction.workflow_id}`: {item.detail}")
        hidden = max(0, len(self.resolved) - 20) + max(0, len(self.unresolved) - 50)
        if hidden:
            lines.append(f"- … and {hidden} more in the result")
        return "\n".join(lines)


def not_readable_reason(
    *,
    workflow_type: str,
    provider: ProviderName | None,
    provider_transaction_id: str | None,
    status_by_reference: bool,
) -> str | None:
    """Why a status read cannot tell anything about this transaction, or None."""
    if workflow_type == REFUND_WORKFLOW:
        name = provider.value if provider else "the provider"
        return (
            f"{name} has no refund status endpoint: only its webhook or an operator can "
            "settle a refund"
        )
    if provider_transaction_id is None and not status_by_reference:
        name = provider.value if provider else "the provider"
        return (
            f"the create call never returned an id and {name} cannot search by our "
            "reference: check its dashboard for the workflow id, then resolve by hand"
        )
    return None


def recheck_detail(
    before: ReconcilingTransaction,
    status: TransactionStatus,
    provider_status: str | None,
    new_notes: Sequence[str],
) -> str:
    """Human words for the outcome of one recheck."""
    if status is not TransactionStatus.RECONCILING:
        return f"{status.value}: {new_notes[-1]}" if new_notes else status.value
    if new_notes:
        return new_notes[-1]
    code = before.failure.code if before.failure else "unknown"
    return f"{code}: the provider still reports {provider_status or 'no final status'}"


# --------------------------------------------------------------------------- the daily report


class ReportMode(StrEnum):
    """How a provider's side is read."""

    #: The provider lists its transactions (MOBILE-PAY ``GET /transactions``).
    TRANSACTION_LIST = "transaction_list"
    #: No list endpoint: one status read per momoflow transaction.
    STATUS_READS = "status_reads"


class ReportInput(_Model):
    """One provider's reconciliation report for one UTC day (yesterday when ``day`` is
    None, as seen by the workflow when it starts)."""

    provider: ProviderName
    day: date | None = None
    #: How the provider's side is read, chosen by whoever starts the report
    #: (:func:`report_mode`), so that the capability table is never read while a workflow
    #: runs. None only in reports started before this field existed.
    mode: ReportMode | None = None
    #: Transactions compared per side; beyond, the report says it is incomplete.
    max_transactions: int = Field(default=20_000, ge=1)
    #: Status reads in flight at once (each on the provider's rate-limited queue).
    read_concurrency: int = Field(default=10, ge=1, le=100)
    #: momoflow transactions read per page in status-read mode.
    page_size: int = Field(default=500, ge=1, le=1000)
    #: A status-read report continues as new between pages once its history is this long
    #: (Temporal's limit is 51,200 events).
    events_per_run: int = Field(default=10_000, ge=1)
    #: Set when a status-read report continues as new: the summary so far, and where the
    #: listing of momoflow's transactions stopped.
    carry: ReportSummary | None = None
    next_page_token: bytes | None = None


class DailyReportInput(_Model):
    """The daily schedule's input: one report per provider, for yesterday."""

    providers: list[ProviderName]
    day: date | None = None
    #: Each provider's :class:`ReportMode`, chosen when the schedule is written
    #: (:func:`report_modes`). Empty only in schedules written before this field existed.
    modes: dict[ProviderName, ReportMode] = Field(default_factory=dict)
    max_transactions: int = Field(default=20_000, ge=1)
    read_concurrency: int = Field(default=10, ge=1, le=100)


class MomoflowOutcome(_Model):
    """One momoflow transaction as visibility records it (no phone number, no name)."""

    workflow_id: str
    workflow_type: str
    status: TransactionStatus | None = None
    amount: int | None = None
    currency: str | None = None
    provider_transaction_id: str | None = None
    started_at: datetime | None = None
    running: bool = True

    @property
    def kind(self) -> str:
        """``payout``, ``payin`` or ``refund``."""
        return kind_of(self.workflow_type)

    @property
    def direction(self) -> Direction | None:
        """Which way the money moved at the provider (a refund's is not listed)."""
        match self.kind:
            case "payout":
                return Direction.PAYOUT
            case "payin":
                return Direction.PAYIN
            case _:
                return None


class OutcomePageInput(_Model):
    """One page of momoflow's transactions at a provider, started in ``[start, end)``."""

    task_queue: str
    provider: ProviderName
    start: datetime
    end: datetime
    page_size: int = Field(default=1000, ge=1, le=1000)
    next_page_token: bytes | None = None


class OutcomePage(_Model):
    """A page of :class:`MomoflowOutcome`; ``next_page_token`` is None on the last."""

    outcomes: list[MomoflowOutcome] = Field(default_factory=list)
    next_page_token: bytes | None = None


class ReportReadInput(_Model):
    """Read one momoflow transaction's status at its provider, for the report."""

    outcome: MomoflowOutcome
    provider: ProviderName


class ReadVerdict(StrEnum):
    """What a report's status read found."""

    FOUND = "found"
    #: The provider answered that it holds no such transaction (HTTP 404).
    NOT_FOUND = "not_found"
    #: Nothing can be read (no id and no search by reference, no refund status, refused).
    UNCHECKED = "unchecked"


class ReportRead(_Model):
    """The answer of one report status read."""

    verdict: ReadVerdict
    transaction: ProviderTransaction | None = None
    detail: str = ""


class MismatchKind(StrEnum):
    """Every way momoflow and a provider can disagree."""

    #: Money moved at the provider; momoflow (and so the merchant) says it failed.
    PROVIDER_SUCCEEDED_MOMOFLOW_FAILED = "provider_succeeded_momoflow_failed"
    PROVIDER_SUCCEEDED_MOMOFLOW_RECONCILING = "provider_succeeded_momoflow_reconciling"
    PROVIDER_SUCCEEDED_MOMOFLOW_NOT_FINAL = "provider_succeeded_momoflow_not_final"
    #: Money moved at the provider for a transaction momoflow does not know.
    UNKNOWN_AT_MOMOFLOW = "unknown_at_momoflow"
    #: The provider holds more than one live transaction for one momoflow transaction:
    #: someone may have been paid twice.
    DUPLICATE_AT_PROVIDER = "duplicate_at_provider"
    #: momoflow says it succeeded; the provider says it failed.
    MOMOFLOW_SUCCEEDED_PROVIDER_FAILED = "momoflow_succeeded_provider_failed"
    MOMOFLOW_SUCCEEDED_PROVIDER_NOT_FINAL = "momoflow_succeeded_provider_not_final"
    #: A payout momoflow reports failed is still in progress at the provider: it may yet pay.
    MOMOFLOW_FAILED_PROVIDER_NOT_FINAL = "momoflow_failed_provider_not_final"
    #: momoflow says it succeeded; the provider has no record of it.
    MOMOFLOW_SUCCEEDED_PROVIDER_NO_RECORD = "momoflow_succeeded_provider_no_record"
    #: The provider failed it; momoflow is still reconciling (the sweep should close it).
    PROVIDER_FAILED_MOMOFLOW_RECONCILING = "provider_failed_momoflow_reconciling"
    #: momoflow is reconciling and the provider has no record: it was likely never created.
    MOMOFLOW_RECONCILING_PROVIDER_NO_RECORD = "momoflow_reconciling_provider_no_record"
    AMOUNT_DIFFERS = "amount_differs"


class Mismatch(_Model):
    """One flagged disagreement, with what each side says."""

    kind: MismatchKind
    workflow_id: str | None = None
    provider_transaction_id: str | None = None
    momoflow_status: str | None = None
    provider_status: str | None = None
    momoflow_amount: int | None = None
    provider_amount: int | None = None
    currency: str | None = None
    detail: str = ""


class ReportSummary(_Model):
    """A provider's reconciliation report for one day: the workflow's result."""

    provider: ProviderName
    day: date
    mode: ReportMode
    #: How the provider's side was read, in plain words.
    method: str
    generated_at: datetime
    #: momoflow transactions started that day at this provider.
    momoflow_transactions: int = 0
    #: Provider transactions created that day (transaction-list mode only).
    provider_transactions: int = 0
    #: momoflow transactions the provider holds, and those it has no record of; with
    #: ``unchecked`` they add up to ``momoflow_transactions``.
    matched: int = 0
    not_at_provider: int = 0
    #: Transactions that could not be compared, and why (counted by reason).
    unchecked: int = 0
    unchecked_reasons: dict[str, int] = Field(default_factory=dict)
    #: Provider items that failed and that momoflow does not know (not money; counted only).
    unknown_failed_at_provider: int = 0
    mismatch_counts: dict[str, int] = Field(default_factory=dict)
    mismatches: list[Mismatch] = Field(default_factory=list)
    #: More transactions than ``max_transactions`` on a side: the comparison is incomplete.
    incomplete: bool = False
    files: list[str] = Field(default_factory=list)
    #: The balance line: momoflow's account at the provider, per currency, as the journal
    #: expects it beside what the provider reported (:class:`BalanceLine`). Filled in the
    #: report's files; empty in the workflow's own result.
    balances: list[BalanceLine] = Field(default_factory=list)
    #: Why the balance line is missing or the provider's balance is not this report's own
    #: reading (empty when the report read and recorded it).
    balance_note: str = ""

    @property
    def total_mismatches(self) -> int:
        """Every mismatch, listed or not."""
        return sum(self.mismatch_counts.values())

    def add(self, mismatch: Mismatch) -> None:
        """Count ``mismatch`` and list it while the list has room."""
        self.mismatch_counts[mismatch.kind.value] = (
            self.mismatch_counts.get(mismatch.kind.value, 0) + 1
        )
        if len(self.mismatches) < MAX_LISTED_MISMATCHES:
            self.mismatches.append(mismatch)

    def skip(self, reason: str) -> None:
        """Count a transaction that could not be compared."""
        self.unchecked += 1
        self.unchecked_reasons[reason] = self.unchecked_reasons.get(reason, 0) + 1


class BalanceLine(_Model):
    """momoflow's account at the report's provider in one currency (minor units).

    ``expected`` is the journal's provider float: every settled payin in (less its fee),
    every settled payout and refund out (with its fee), all merchants together.
    ``reported`` is the balance the provider last reported (``reported_at``, ``source``),
    and ``difference`` is ``reported - expected`` (None until one was reported). Money put
    in or taken out of the account outside momoflow (top-ups, withdrawals) is not in the
    journal, so a steady difference is normal; a change of it from one day to the next is
    what to look at."""

    currency: str
    expected: int
    reported: int | None = None
    reported_at: datetime | None = None
    source: str | None = None
    difference: int | None = None


#: ``source`` of the balances the daily report records.
BALANCE_SOURCE = "daily report"


class WriteReportInput(_Model):
    """Write a finished report to the reports directory.

    ``provider_balances`` are the provider's balances the report read (at
    ``balances_read_at``), recorded in the record store before the balance line is built;
    None when the report did not read them (``balance_error`` then says why, if it tried).
    """

    summary: ReportSummary
    provider_balances: list[ProviderBalance] | None = None
    balances_read_at: datetime | None = None
    balance_error: str | None = None


def report_mode(provider: ProviderName) -> ReportMode:
    """How ``provider``'s side of a report is read, from the capability table. Called by the
    code that starts a report, never by workflow code: a change to the table then changes
    reports started after it, and never the replay of one already running."""
    if capabilities_of(provider).lists_transactions:
        return ReportMode.TRANSACTION_LIST
    return ReportMode.STATUS_READS


def report_modes(providers: Iterable[ProviderName]) -> dict[ProviderName, ReportMode]:
    """:func:`report_mode` of each provider."""
    return {provider: report_mode(provider) for provider in providers}


def report_method(provider: ProviderName, mode: ReportMode) -> str:
    """The plain sentence a report opens with."""
    if mode is ReportMode.TRANSACTION_LIST:
        return (
            f"{provider.value}'s transaction list for the day compared with momoflow's outcomes "
            "(each side read a day wider, so that transactions near midnight still match)"
        )
    return (
        f"{provider.value} has no transaction list endpoint: each momoflow transaction of the "
        "day was compared with its status read at the provider; transactions the provider "
        "holds but momoflow does not know cannot be detected this way"
    )


def day_window(day: date) -> tuple[datetime, datetime]:
    """``[00:00, 24:00)`` UTC of ``day``."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


_FAILED = frozenset(
    {
        TransactionStatus.FAILED,
        TransactionStatus.DECLINED,
        TransactionStatus.EXPIRED,
        TransactionStatus.CANCELLED,
    }
)
_SUCCEEDED = frozenset({TransactionStatus.SUCCEEDED, TransactionStatus.LATE_SUCCEEDED})


def compare(
    outcome: MomoflowOutcome,
    *,
    provider_status: PaymentStatus | None,
    raw_status: str | None = None,
    provider_amount: int | None = None,
    provider_currency: str | None = None,
    provider_transaction_id: str | None = None,
) -> list[Mismatch]:
    """How ``outcome`` disagrees with the provider's record (``provider_status`` None: the
    provider has no record of it). In-flight transactions the provider has not finished
    either are not mismatches."""
    status = outcome.status
    found: list[Mismatch] = []

    def flag(kind: MismatchKind, detail: str) -> None:
        found.append(
            Mismatch(
                kind=kind,
                workflow_id=outcome.workflow_id,
                provider_transaction_id=provider_transaction_id or outcome.provider_transaction_id,
                momoflow_status=status.value if status else None,
                provider_status=raw_status
                or (provider_status.value if provider_status else "no record"),
                momoflow_amount=outcome.amount,
                provider_amount=provider_amount,
                currency=outcome.currency,
                detail=detail,
            )
        )

    if provider_status is None:
        if status in _SUCCEEDED:
            flag(
                MismatchKind.MOMOFLOW_SUCCEEDED_PROVIDER_NO_RECORD,
                "momoflow says it succeeded but the provider has no record of it",
            )
        elif status is TransactionStatus.RECONCILING:
            flag(
                MismatchKind.MOMOFLOW_RECONCILING_PROVIDER_NO_RECORD,
                "the provider has no record: the transaction was most likely never created; "
                "check, then resolve it as failed",
            )
        return found
    if provider_status is PaymentStatus.SUCCEEDED:
        if status in _FAILED:
            flag(
                MismatchKind.PROVIDER_SUCCEEDED_MOMOFLOW_FAILED,
                "money moved at the provider but momoflow reports it failed",
            )
        elif status is TransactionStatus.RECONCILING:
            flag(
                MismatchKind.PROVIDER_SUCCEEDED_MOMOFLOW_RECONCILING,
                "the provider says it succeeded: the sweep or an operator can close it",
            )
        elif status is not None and not status.is_final:
            flag(
                MismatchKind.PROVIDER_SUCCEEDED_MOMOFLOW_NOT_FINAL,
                f"the provider says it succeeded; momoflow still says {status.value}",
            )
    elif provider_status.is_final:
        if status in _SUCCEEDED:
            flag(
                MismatchKind.MOMOFLOW_SUCCEEDED_PROVIDER_FAILED,
                f"momoflow says it succeeded; the provider says {raw_status or 'failed'}",
            )
        elif status is TransactionStatus.RECONCILING:
            flag(
                MismatchKind.PROVIDER_FAILED_MOMOFLOW_RECONCILING,
                f"the provider says {raw_status or 'failed'}: the sweep or an operator can "
                "close it",
            )
    elif status in _SUCCEEDED:
        flag(
            MismatchKind.MOMOFLOW_SUCCEEDED_PROVIDER_NOT_FINAL,
            f"momoflow says it succeeded; the provider still says {raw_status or 'pending'}",
        )
    elif status in _FAILED and outcome.direction is Direction.PAYOUT:
        flag(
            MismatchKind.MOMOFLOW_FAILED_PROVIDER_NOT_FINAL,
            f"momoflow reports the payout {status.value}; the provider still says "
            f"{raw_status or 'pending'}, so it may yet pay",
        )
    if provider_amount is not None and outcome.amount is not None:
        same_currency = (
            provider_currency is None
            or outcome.currency is None
            or provider_currency == outcome.currency
        )
        if provider_amount != outcome.amount or not same_currency:
            flag(
                MismatchKind.AMOUNT_DIFFERS,
                f"momoflow {outcome.amount} {outcome.currency}, provider {provider_amount} "
                f"{provider_currency or outcome.currency}",
            )
    return found


def compare_read(outcome: MomoflowOutcome, read: ReportRead) -> list[Mismatch]:
    """:func:`compare` for a status read."""
    if read.verdict is ReadVerdict.NOT_FOUND:
        return compare(outcome, provider_status=None)
    transaction = read.transaction
    assert transaction is not None
    return compare(
        outcome,
        provider_status=transaction.status,
        raw_status=transaction.raw_status,
        provider_amount=transaction.amount,
        provider_currency=transaction.currency.value if transaction.currency else None,
        provider_transaction_id=transaction.provider_transaction_id,
    )


def compare_lists(
    summary: ReportSummary,
    *,
    momoflow: Iterable[MomoflowOutcome],
    provider: Iterable[ListedTransaction],
) -> None:
    """Compare a provider's list with momoflow's outcomes into ``summary``.

    ``momoflow`` may include the day before (an item created today can belong to a
    transaction started just before midnight) and ``provider`` the day after (a transaction
    started today can be created just after); only momoflow transactions started on
    ``summary.day`` and provider items created on it are counted and flagged. A provider
    item matches by its id (``ProviderTransactionId``), by the reference it echoes (our
    workflow id), or by the fingerprint of that reference it kept
    (:func:`~momoflow.providers.markers.reference_marker`).
    """
    start, end = day_window(summary.day)
    outcomes = list(momoflow)
    by_id = {o.provider_transaction_id: o for o in outcomes if o.provider_transaction_id}
    by_workflow = {o.workflow_id: o for o in outcomes}
    by_marker = {
        mark: o
        for o in outcomes
        if (mark := reference_marker(summary.provider, o.workflow_id)) is not None
    }
    matched: set[str] = set()
    for item in provider:
        outcome = (
            by_id.get(item.provider_transaction_id)
            or (by_workflow.get(item.external_reference) if item.external_reference else None)
            or (by_marker.get(item.marker) if item.marker else None)
        )
        if outcome is not None and outcome.direction not in (None, item.direction):
            outcome = None
        in_day = item.created_at is None or start <= _utc(item.created_at) < end
        if outcome is None:
            if not in_day:
                continue
            summary.provider_transactions += 1
            if _failed(item.status):
                summary.unknown_failed_at_provider += 1
                continue
            summary.add(
                Mismatch(
                    kind=MismatchKind.UNKNOWN_AT_MOMOFLOW,
                    provider_transaction_id=item.provider_transaction_id,
                    provider_status=item.raw_status,
                    provider_amount=item.amount,
                    currency=item.currency.value if item.currency else None,
                    detail=(
                        f"the provider holds this {_what(item.direction)} "
                        f"({item.raw_status}, reference {item.external_reference or 'none'}) "
                        "and momoflow has no transaction for it"
                    ),
                )
            )
            continue
        if in_day:
            summary.provider_transactions += 1
        if outcome.workflow_id in matched:
            if _in_window(outcome, start, end) and not _failed(item.status):
                summary.add(
                    Mismatch(
                        kind=MismatchKind.DUPLICATE_AT_PROVIDER,
                        workflow_id=outcome.workflow_id,
                        provider_transaction_id=item.provider_transaction_id,
                        momoflow_status=outcome.status.value if outcome.status else None,
                        provider_status=item.raw_status,
                        momoflow_amount=outcome.amount,
                        provider_amount=item.amount,
                        currency=outcome.currency,
                        detail=(
                            f"the provider holds another {_what(item.direction)} "
                            f"({item.raw_status}) for this transaction: the money may have "
                            "moved twice"
                        ),
                    )
                )
            continue
        matched.add(outcome.workflow_id)
        if not _in_window(outcome, start, end):
            continue
        summary.matched += 1
        for mismatch in compare(
            outcome,
            provider_status=item.status,
            raw_status=item.raw_status,
            provider_amount=item.amount,
            provider_currency=item.currency.value if item.currency else None,
            provider_transaction_id=item.provider_transaction_id,
        ):
            summary.add(mismatch)
    for outcome in outcomes:
        if not _in_window(outcome, start, end):
            continue
        summary.momoflow_transactions += 1
        if outcome.workflow_id in matched:
            continue
        if outcome.direction is None:
            summary.skip(f"{outcome.kind}s are not in the provider's list")
            continue
        summary.not_at_provider += 1
        for mismatch in compare(outcome, provider_status=None):
            summary.add(mismatch)


def _failed(status: PaymentStatus) -> bool:
    """Final and not a success: no money moved."""
    return status.is_final and status is not PaymentStatus.SUCCEEDED


def _what(direction: Direction | None) -> str:
    match direction:
        case Direction.PAYOUT:
            return "transfer"
        case Direction.PAYIN:
            return "payment"
        case _:
            return "transaction"


def _in_window(outcome: MomoflowOutcome, start: datetime, end: datetime) -> bool:
    return outcome.started_at is not None and start <= _utc(outcome.started_at) < end


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


#: Columns of the CSV report.
CSV_COLUMNS = (
    "kind",
    "workflow_id",
    "provider_transaction_id",
    "momoflow_status",
    "provider_status",
    "momoflow_amount",
    "provider_amount",
    "currency",
    "detail",
)


def mismatches_csv(summary: ReportSummary) -> str:
    """The report's mismatches as CSV (one row each, the columns of :data:`CSV_COLUMNS`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for mismatch in summary.mismatches:
        row = mismatch.model_dump(mode="json")
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def report_markdown(summary: ReportSummary) -> str:
    """A short summary for the Temporal UI."""
    lines = [
        f"**Reconciliation report {summary.provider.value} {summary.day.isoformat()}**: "
        f"{summary.total_mismatches} mismatch(es), {summary.momoflow_transactions} momoflow "
        f"transaction(s), {summary.matched} matched, {summary.unchecked} not checked"
        + (" — INCOMPLETE (too many transactions)" if summary.incomplete else ""),
        "",
        summary.method,
    ]
    for kind, count in sorted(summary.mismatch_counts.items()):
        lines.append(f"- {kind}: {count}")
    lines.extend(f"- {line}" for line in balance_lines_text(summary.balances))
    if summary.balance_note:
        lines.append(f"- balance: {summary.balance_note}")
    return "\n".join(lines)


def balance_lines_text(balances: Iterable[BalanceLine]) -> list[str]:
    """One sentence per balance line: expected, reported, difference."""
    out: list[str] = []
    for line in balances:
        if line.reported is None:
            reported = "never reported"
        else:
            when = line.reported_at.isoformat() if line.reported_at else "?"
            reported = f"reported {line.reported} ({line.source or '?'}, {when})"
        difference = "" if line.difference is None else f", difference {line.difference:+d}"
        out.append(
            f"balance {line.currency}: expected {line.expected} (journal), {reported}{difference}"
        )
    return out
