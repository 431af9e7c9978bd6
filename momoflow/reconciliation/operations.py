"""Reconciliation over a Temporal client: the library behind ``momoflow reconcile`` and the
reconciliation activities.

It lists the ``reconciling`` transactions of one deployment (its workflow task queue), reads
their state, asks them to recheck and waits for the reads (the sweep's activities), resolves
one by hand through the audited ``resolve`` update, pages momoflow's outcomes for the daily
report, runs a sweep or a report now, and writes both Temporal Schedules. The command line
is :mod:`momoflow.reconciliation.cli`; the pure rules are :mod:`momoflow.reconciliation.rules`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, TemporalError
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow.contract import (
    DAILY_REPORT_WORKFLOW,
    RECHECK_SIGNAL,
    REPORT_WORKFLOW,
    RESOLVE_UPDATE,
    STATE_QUERY,
    SWEEP_WORKFLOW,
    TRANSACTION_WORKFLOWS,
)
from momoflow.ids import workflow_task_queue
from momoflow.models import (
    Failure,
    ManualResolution,
    ProviderName,
    RecheckRequest,
    Resolution,
    TimelineEntry,
    TransactionStatus,
)
from momoflow.providers.catalog import capabilities_of
from momoflow.reconciliation.rules import (
    DailyReportInput,
    FindReconcilingInput,
    FoundReconciling,
    MomoflowOutcome,
    OutcomePage,
    OutcomePageInput,
    RecheckInput,
    ReconcilingTransaction,
    ReportInput,
    ReportSummary,
    SweepInput,
    SweepItem,
    SweepOutcome,
    SweepReport,
    kind_of,
    not_readable_reason,
    recheck_detail,
    report_mode,
    report_modes,
    report_schedule_id,
    report_workflow_id,
    sweep_schedule_id,
)
from momoflow.settings import Settings

#: How long one ``state`` query may take before the workflow counts as not answering.
QUERY_TIMEOUT_S = 5.0
#: State queries in flight at once while listing or waiting for rechecks.
QUERY_CONCURRENCY = 10
#: Longest a sweep run or a report run may take before Temporal stops it.
SWEEP_RUN_TIMEOUT = timedelta(hours=1)
REPORT_RUN_TIMEOUT = timedelta(hours=12)


_E = TypeVar("_E", bound=StrEnum)


class StateView(BaseModel):
    """The fields of a transaction's ``state`` that reconciliation reads (any of
    PayoutState, PayinState, RefundState)."""

    model_config = ConfigDict(extra="ignore")

    workflow_id: str
    merchant: str | None = None
    reference: str | None = None
    provider: ProviderName | None = None
    amount: int | None = None
    currency: str | None = None
    status: TransactionStatus
    failure: Failure | None = None
    provider_transaction_id: str | None = None
    provider_status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    reconciling_since: datetime | None = None
    status_polls: int = 0
    recipient_phone_masked: str | None = None
    customer_phone_masked: str | None = None
    resolution: Resolution | None = None
    timeline: list[TimelineEntry] = []

    @property
    def phone_masked(self) -> str | None:
        """The recipient's (payout) or customer's (payin) masked number."""
        return self.recipient_phone_masked or self.customer_phone_masked

    def notes_after(self, moment: datetime | None) -> list[str]:
        """Timeline notes written after ``moment``."""
        return [e.note for e in self.timeline if moment is None or e.at > moment]


class ResolveRefused(Exception):
    """The workflow refused the resolution (not reconciling, no reason, closed, unknown)."""


# --------------------------------------------------------------------------- reading


def reconciling_query(
    task_queue: str, *, provider: ProviderName | None = None, include_closed: bool = False
) -> str:
    """The visibility query of one deployment's reconciling transactions."""
    types = ", ".join(f"'{name}'" for name in TRANSACTION_WORKFLOWS)
    parts = [
        f"{sa.STATUS.name} = 'reconciling'",
        f"TaskQueue = '{task_queue}'",
        f"WorkflowType IN ({types})",
    ]
    if provider is not None:
        parts.append(f"{sa.PROVIDER.name} = '{provider.value}'")
    if not include_closed:
        parts.append("ExecutionStatus = 'Running'")
    return " AND ".join(parts)


async def read_state(
    client: Client,
    workflow_id: str,
    *,
    run_id: str | None = None,
    status: WorkflowExecutionStatus | None = None,
    timeout: float = QUERY_TIMEOUT_S,
) -> StateView:
    """The transaction's state: its result once completed, else the ``state`` query (which
    a worker answers for closed workflows too). ``status`` saves a describe call.

    Raises ``TimeoutError`` when no worker answers, ``RPCError`` when it does not exist.
    """
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    if status is None:
        status = (await handle.describe()).status
    if status == WorkflowExecutionStatus.COMPLETED:
        raw = await asyncio.wait_for(handle.result(), timeout=timeout)
    else:
        raw = await asyncio.wait_for(handle.query(STATE_QUERY), timeout=timeout)
    return StateView.model_validate(raw)


def _attribute(execution: WorkflowExecution, key: Any) -> Any:
    return execution.typed_search_attributes.get(key)


def _enum(kind: type[_E], value: object) -> _E | None:
    """``value`` as a member of ``kind``, or None (an attribute missing or unknown)."""
    try:
        return kind(str(value))
    except ValueError:
        return None


def _row(
    execution: WorkflowExecution, view: StateView | None, error: str | None
) -> ReconcilingTransaction:
    """One operator row from visibility, and from the state when the workflow answered."""
    provider = view.provider if view is not None else None
    if provider is None:
        provider = _enum(ProviderName, _attribute(execution, sa.PROVIDER))
    transaction_id = (
        view.provider_transaction_id if view else _attribute(execution, sa.PROVIDER_TRANSACTION)
    )
    workflow_type = execution.workflow_type or ""
    by_reference = capabilities_of(provider).status_by_reference if provider else False
    reason = not_readable_reason(
        workflow_type=workflow_type,
        provider=provider,
        provider_transaction_id=transaction_id,
        status_by_reference=by_reference,
    )
    running = execution.status == WorkflowExecutionStatus.RUNNING
    if not running and reason is None:
        reason = "the workflow has closed: settle it with the provider and the merchant directly"
    return ReconcilingTransaction(
        workflow_id=execution.id,
        run_id=execution.run_id,
        workflow_type=workflow_type,
        kind=kind_of(workflow_type),
        merchant=view.merchant if view else _attribute(execution, sa.MERCHANT),
        reference=view.reference if view else _attribute(execution, sa.REFERENCE),
        provider=provider,
        amount=view.amount if view else _attribute(execution, sa.AMOUNT),
        currency=view.currency if view else _attribute(execution, sa.CURRENCY),
        phone_masked=view.phone_masked if view else None,
        status=view.status if view else TransactionStatus.RECONCILING,
        running=running,
        failure=view.failure if view else None,
        provider_transaction_id=transaction_id,
        provider_status=view.provider_status if view else None,
        reconciling_since=view.reconciling_since if view else None,
        started_at=execution.start_time,
        updated_at=view.updated_at if view else None,
        status_polls=view.status_polls if view else 0,
        readable=reason is None,
        not_readable_reason=reason,
        state_error=error,
    )


async def _snapshot(
    client: Client, execution: WorkflowExecution, gate: asyncio.Semaphore
) -> ReconcilingTransaction:
    async with gate:
        try:
            view = await read_state(
                client, execution.id, run_id=execution.run_id, status=execution.status
            )
        except TimeoutError:
            return _row(execution, None, f"no worker answered within {QUERY_TIMEOUT_S:g} s")
        except (TemporalError, ValidationError) as exc:
            return _row(execution, None, f"state unreadable: {type(exc).__name__}")
    return _row(execution, view, None)


async def find_reconciling(client: Client, request: FindReconcilingInput) -> FoundReconciling:
    """Up to ``request.limit`` reconciling transactions, page by page, each with its state."""
    query = reconciling_query(
        request.task_queue, provider=request.provider, include_closed=request.include_closed
    )
    total = (await client.count_workflows(query)).count
    executions: list[WorkflowExecution] = []
    token: bytes | None = None
    while len(executions) < request.limit:
        page = client.list_workflows(query, page_size=request.page_size, next_page_token=token)
        await page.fetch_next_page()
        executions.extend(page.current_page or [])
        token = page.next_page_token
        if not token:
            break
    truncated = len(executions) > request.limit or bool(token) or total > request.limit
    executions = executions[: request.limit]
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)
    rows = await asyncio.gather(*(_snapshot(client, e, gate) for e in executions))
    return FoundReconciling(
        transactions=list(rows), total=max(total, len(rows)), truncated=truncated
    )


# --------------------------------------------------------------------------- rechecks


def _done(before: ReconcilingTransaction, view: StateView) -> SweepItem | None:
    """The outcome once the workflow has answered the recheck, else None."""
    new_notes = view.notes_after(before.updated_at)
    detail = recheck_detail(before, view.status, view.provider_status, new_notes)
    row = before.model_copy(
        update={
            "status": view.status,
            "provider_status": view.provider_status,
            "provider_transaction_id": view.provider_transaction_id,
            "updated_at": view.updated_at,
            "status_polls": view.status_polls,
            "failure": view.failure,
        }
    )
    if view.status is not TransactionStatus.RECONCILING:
        return SweepItem(
            transaction=row, outcome=SweepOutcome.RESOLVED, status=view.status, detail=detail
        )
    moved = (
        before.updated_at is not None
        and view.updated_at is not None
        and view.updated_at > before.updated_at
    )
    if moved:
        return SweepItem(
            transaction=row,
            outcome=SweepOutcome.STILL_RECONCILING,
            status=view.status,
            detail=detail,
        )
    return None


async def recheck_and_wait(
    client: Client,
    request: RecheckInput,
    *,
    heartbeat: Callable[[], None] = lambda: None,
    poll_every_s: float = 1.0,
) -> list[SweepItem]:
    """Signal ``recheck`` to every readable transaction of ``request``, then wait (up to
    ``wait_s``) until each has read its status; one item per transaction."""
    items: list[SweepItem] = []
    pending: dict[str, ReconcilingTransaction] = {}
    for row in request.transactions:
        if not row.readable:
            items.append(_item(row, SweepOutcome.NOT_READABLE, row.not_readable_reason or ""))
        elif row.state_error is not None or row.updated_at is None:
            items.append(_item(row, SweepOutcome.NO_ANSWER, row.state_error or "no state"))
        else:
            pending[row.workflow_id] = row
    signal = RecheckRequest(requested_by=request.requested_by)
    for workflow_id, row in list(pending.items()):
        try:
            await client.get_workflow_handle(workflow_id, run_id=row.run_id).signal(
                RECHECK_SIGNAL, signal
            )
        except RPCError as exc:
            del pending[workflow_id]
            items.append(_item(row, SweepOutcome.NO_ANSWER, f"recheck not delivered: {exc}"))
    deadline = time.monotonic() + request.wait_s
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def look(row: ReconcilingTransaction) -> SweepItem | None:
        async with gate:
            try:
                # The query: a worker answers it even once the workflow has closed.
                view = await read_state(
                    client,
                    row.workflow_id,
                    run_id=row.run_id,
                    status=WorkflowExecutionStatus.RUNNING,
                )
            except (TimeoutError, TemporalError, ValidationError):
                return None
        return _done(row, view)

    while pending and time.monotonic() < deadline:
        await asyncio.sleep(poll_every_s)
        heartbeat()
        answers = await asyncio.gather(*(look(row) for row in pending.values()))
        for workflow_id, answer in zip(list(pending), answers, strict=True):
            if answer is not None:
                items.append(answer)
                del pending[workflow_id]
    for row in pending.values():
        items.append(
            _item(
                row,
                SweepOutcome.NO_ANSWER,
                f"no status read finished within {request.wait_s} s (provider queue throttled "
                "or worker down); the workflow still applies the answer when it comes",
            )
        )
    return items


def _item(row: ReconcilingTransaction, outcome: SweepOutcome, detail: str) -> SweepItem:
    return SweepItem(transaction=row, outcome=outcome, status=row.status, detail=detail)


# --------------------------------------------------------------------------- resolving


async def resolve(client: Client, workflow_id: str, resolution: ManualResolution) -> dict[str, Any]:
    """Run the ``resolve`` update; returns the final state, or raises :class:`ResolveRefused`
    with the workflow's reason."""
    if not resolution.reason.strip():
        raise ResolveRefused("a reason is required: say what proves the outcome")
    if not resolution.operator.strip():
        raise ResolveRefused("an operator name is required: say who resolves it")
    handle = client.get_workflow_handle(workflow_id)
    try:
        state: dict[str, Any] = await handle.execute_update(RESOLVE_UPDATE, resolution)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
        raise ResolveRefused(message) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise ResolveRefused(await _why_not_running(client, workflow_id)) from None
    return state


async def _why_not_running(client: Client, workflow_id: str) -> str:
    """Why an update found no running workflow: unknown id, or closed (and how it ended)."""
    try:
        view = await read_state(client, workflow_id)
    except RPCError:
        return f"{workflow_id}: no such transaction"
    except (TimeoutError, TemporalError, ValidationError):
        return f"{workflow_id} has closed: nothing to resolve"
    return (
        f"{workflow_id} is {view.status.value}, not reconciling (its workflow has closed): "
        "nothing to resolve"
    )


# --------------------------------------------------------------------------- reports


def outcomes_query(request: OutcomePageInput) -> str:
    """Visibility query of one deployment's transactions at a provider, by start time."""
    types = ", ".join(f"'{name}'" for name in TRANSACTION_WORKFLOWS)
    return (
        f"TaskQueue = '{request.task_queue}' AND WorkflowType IN ({types}) AND "
        f"{sa.PROVIDER.name} = '{request.provider.value}' AND "
        f"StartTime >= '{_rfc3339(request.start)}' AND StartTime < '{_rfc3339(request.end)}'"
    )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def outcome_page(client: Client, request: OutcomePageInput) -> OutcomePage:
    """One page of momoflow outcomes, from visibility only (no query, no payload)."""
    page = client.list_workflows(
        outcomes_query(request),
        page_size=request.page_size,
        next_page_token=request.next_page_token,
    )
    await page.fetch_next_page()
    outcomes = []
    for execution in page.current_page or []:
        status = _attribute(execution, sa.STATUS)
        outcomes.append(
            MomoflowOutcome(
                workflow_id=execution.id,
                workflow_type=execution.workflow_type or "",
                status=_enum(TransactionStatus, status),
                amount=_attribute(execution, sa.AMOUNT),
                currency=_attribute(execution, sa.CURRENCY),
                provider_transaction_id=_attribute(execution, sa.PROVIDER_TRANSACTION),
                started_at=execution.start_time,
                running=execution.status == WorkflowExecutionStatus.RUNNING,
            )
        )
    return OutcomePage(outcomes=outcomes, next_page_token=page.next_page_token or None)


async def run_report(
    client: Client, settings: Settings, provider: ProviderName, day: date
) -> ReportSummary:
    """Run one provider's report for ``day`` now and wait for it (a report of the same
    provider and day already running is joined, not doubled)."""
    prefix = settings.task_queue_prefix
    handle = await client.start_workflow(
        REPORT_WORKFLOW,
        ReportInput(
            provider=provider,
            day=day,
            mode=report_mode(provider),
            max_transactions=settings.reconcile.report_max_transactions,
            read_concurrency=settings.reconcile.report_read_concurrency,
        ),
        id=report_workflow_id(prefix, provider, day),
        task_queue=workflow_task_queue(prefix),
        execution_timeout=REPORT_RUN_TIMEOUT,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        result_type=ReportSummary,
    )
    summary: ReportSummary = await handle.result()
    return summary


async def run_sweep(client: Client, settings: Settings) -> SweepReport:
    """Run one sweep now (what the schedule does) and wait for its report."""
    prefix = settings.task_queue_prefix
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: SweepReport = await client.execute_workflow(
        SWEEP_WORKFLOW,
        sweep_input(settings),
        id=f"{sweep_schedule_id(prefix)}-manual-{stamp}",
        task_queue=workflow_task_queue(prefix),
        execution_timeout=SWEEP_RUN_TIMEOUT,
        result_type=SweepReport,
    )
    return report


# --------------------------------------------------------------------------- schedules


def sweep_input(settings: Settings) -> SweepInput:
    """The sweep's bounds from the settings."""
    rc = settings.reconcile
    return SweepInput(max_transactions=rc.sweep_max_transactions, recheck_wait_s=rc.recheck_wait_s)


def schedules(settings: Settings) -> dict[str, Schedule]:
    """The sweep (every ``sweep_interval_s``) and the daily report (at
    ``report_hour_utc:report_minute_utc``), overlapping runs skipped."""
    prefix = settings.task_queue_prefix
    rc = settings.reconcile
    queue = workflow_task_queue(prefix)
    skip = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP)
    sweep = Schedule(
        action=ScheduleActionStartWorkflow(
            SWEEP_WORKFLOW,
            sweep_input(settings),
            id=sweep_schedule_id(prefix),
            task_queue=queue,
            execution_timeout=SWEEP_RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=rc.sweep_interval_s))]
        ),
        policy=skip,
        state=ScheduleState(
            note="momoflow: asks every reconciling transaction to read its status now "
            "(momoflow reconcile schedule)"
        ),
    )
    report = Schedule(
        action=ScheduleActionStartWorkflow(
            DAILY_REPORT_WORKFLOW,
            DailyReportInput(
                providers=list(settings.providers),
                modes=report_modes(settings.providers),
                max_transactions=rc.report_max_transactions,
                read_concurrency=rc.report_read_concurrency,
            ),
            id=report_schedule_id(prefix),
            task_queue=queue,
            execution_timeout=REPORT_RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(rc.report_hour_utc)],
                    minute=[ScheduleRange(rc.report_minute_utc)],
                    comment="the previous UTC day, one report per provider",
                )
            ]
        ),
        policy=skip,
        state=ScheduleState(
            note="momoflow: daily reconciliation report per provider (momoflow reconcile schedule)"
        ),
    )
    return {sweep_schedule_id(prefix): sweep, report_schedule_id(prefix): report}


async def ensure_schedules(client: Client, settings: Settings) -> dict[str, str]:
    """Create both schedules, or update them to the current settings: ``{id: "created" |
    "updated"}``. Safe to run any number of times."""
    done: dict[str, str] = {}
    for schedule_id, schedule in schedules(settings).items():
        try:
            await client.create_schedule(schedule_id, schedule)
            done[schedule_id] = "created"
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(replace)
            done[schedule_id] = "updated"
    return done


# --------------------------------------------------------------------------- the CLI
