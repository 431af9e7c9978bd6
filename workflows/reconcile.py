"""Reconciliation workflows, run by two Temporal Schedules (``momoflow reconcile schedule``).

``ReconcileSweepWorkflow`` (every ``sweep_interval_s``, overlapping runs skipped)::

    find reconciling transactions (bounded) ─► recheck them in batches, side by side
        ─► report: resolved | left for operators (with the reason)

Each run examines at most ``max_transactions`` (the report says when more were left for
the next run), so no run continues as new. The result and the run's current details (the
Temporal UI) list what needs a human.

``ReconcileReportWorkflow`` (one provider, one UTC day; id
``<prefix>-reconcile-report-<provider>-<day>``)::

    transaction list (MOBILE-PAY) ─► compare with momoflow's outcomes ─► flag mismatches
    no list (CaurisFlux, NovaSend) ─► one status read per momoflow transaction ─► flag
        ─► write <reports_dir>/<provider>/<provider>-<day>.json and .csv

Every provider request is an activity on the provider's rate-limited queue. In status-read
mode the workflow continues as new between pages once its history grows, carrying the
summary so far, so a day of any size fits.

``ReconcileDailyReportWorkflow`` (daily) runs one report per configured provider, for the
previous UTC day, as child workflows.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.providers import ProviderActivities
    from activities.reconcile import ReconcileActivities, ReportProviderActivities
    from momoflow.contract import (
        DAILY_REPORT_WORKFLOW,
        REPORT_QUERY,
        REPORT_WORKFLOW,
        SUMMARY_QUERY,
        SWEEP_WORKFLOW,
    )
    from momoflow.ids import task_queue_prefix
    from momoflow.models import (
        ListedTransaction,
        ListTransactionsInput,
        ProviderBalance,
        ProviderName,
    )
    from momoflow.providers.catalog import spec_for
    from momoflow.reconciliation.rules import (
        DailyReportInput,
        FindReconcilingInput,
        MomoflowOutcome,
        OutcomePage,
        OutcomePageInput,
        ReadVerdict,
        RecheckInput,
        ReconcilingTransaction,
        ReportInput,
        ReportMode,
        ReportRead,
        ReportReadInput,
        ReportSummary,
        SweepInput,
        SweepItem,
        SweepOutcome,
        SweepReport,
        WriteReportInput,
        compare_lists,
        compare_read,
        day_window,
        report_markdown,
        report_method,
        report_workflow_id,
    )
    from workflows.common import PROVIDER_RETRY, failure_from, provider_queue

#: Patch: the daily report reads the provider's balances, records them in the record store
#: and adds a balance line (the journal's expectation against the provider's figure).
PATCH_REPORT_BALANCE_LINE = "report-balance-line"

#: Temporal-side activities (visibility, queries, signals): a few quick attempts.
TEMPORAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30)
)


@workflow.defn(name=SWEEP_WORKFLOW)
class ReconcileSweepWorkflow:
    """Recheck every reconciling transaction now; report what is left (module docstring).

    Query ``report``: the report so far.
    """

    def __init__(self) -> None:
        self._report: SweepReport | None = None

    @workflow.query(name=REPORT_QUERY)
    def report(self) -> SweepReport | None:
        """The sweep's report so far (None before it has listed anything)."""
        return self._report

    @workflow.run
    async def run(self, input: SweepInput) -> SweepReport:
        """List, recheck in batches, report."""
        report = SweepReport(started_at=workflow.now(), max_transactions=input.max_transactions)
        self._report = report
        found = await workflow.execute_activity_method(
            ReconcileActivities.find_reconciling,
            FindReconcilingInput(
                task_queue=workflow.info().task_queue, limit=input.max_transactions
            ),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=TEMPORAL_RETRY,
            summary=f"find reconciling transactions (at most {input.max_transactions})",
        )
        report.total_reconciling = found.total
        report.truncated = found.truncated
        report.examined = len(found.transactions)
        rows = found.transactions
        batches = [rows[i : i + input.batch_size] for i in range(0, len(rows), input.batch_size)]
        outcomes = await asyncio.gather(*(self._recheck(batch, input) for batch in batches))
        for items in outcomes:
            for item in items:
                if item.outcome is SweepOutcome.RESOLVED:
                    report.resolved.append(item)
                else:
                    report.unresolved.append(item)
        report.finished_at = workflow.now()
        workflow.set_current_details(report.markdown())
        workflow.logger.info(
            "sweep: %d examined, %d resolved, %d left for operators",
            report.examined,
            len(report.resolved),
            len(report.unresolved),
        )
        return report

    async def _recheck(
        self, batch: list[ReconcilingTransaction], input: SweepInput
    ) -> list[SweepItem]:
        try:
            return await workflow.execute_activity_method(
                ReconcileActivities.recheck_transactions,
                RecheckInput(
                    transactions=batch,
                    wait_s=input.recheck_wait_s,
                    requested_by=f"sweep {workflow.info().workflow_id}",
                ),
                start_to_close_timeout=timedelta(seconds=input.recheck_wait_s + 120),
                heartbeat_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_attempts=2),
                summary=f"recheck {len(batch)} transaction(s)",
            )
        except ActivityError as err:
            why = failure_from(err, default_code="recheck_failed").message
            return [
                SweepItem(
                    transaction=row,
                    outcome=SweepOutcome.NO_ANSWER,
                    status=row.status,
                    detail=f"the recheck could not run: {why}",
                )
                for row in batch
            ]


@workflow.defn(name=REPORT_WORKFLOW)
class ReconcileReportWorkflow:
    """One provider's reconciliation report for one day (module docstring).

    Query ``summary``: the summary so far.
    """

    def __init__(self) -> None:
        self._summary: ReportSummary | None = None

    @workflow.query(name=SUMMARY_QUERY)
    def summary(self) -> ReportSummary | None:
        """The report so far."""
        return self._summary

    @workflow.run
    async def run(self, input: ReportInput) -> ReportSummary:
        """Read both sides, compare, write the files; returns the summary."""
        day = input.day or workflow.now().date() - timedelta(days=1)
        provider = input.provider
        summary = input.carry
        if summary is None:
            mode = input.mode or _mode_of_an_older_start(provider)
            summary = ReportSummary(
                provider=provider,
                day=day,
                mode=mode,
                method=report_method(provider, mode),
                generated_at=workflow.now(),
            )
        self._summary = summary
        if summary.mode is ReportMode.TRANSACTION_LIST:
            await self._compare_lists(input, summary)
        elif not await self._compare_reads(input, summary):
            return summary  # continued as new
        summary.generated_at = workflow.now()
        balances, read_at, balance_error = await self._read_balances(provider)
        summary.files = await workflow.execute_activity_method(
            ReconcileActivities.write_report,
            WriteReportInput(
                summary=summary,
                provider_balances=balances,
                balances_read_at=read_at,
                balance_error=balance_error,
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=TEMPORAL_RETRY,
            summary=f"write the {provider.value} report of {day.isoformat()}",
        )
        workflow.set_current_details(report_markdown(summary))
        return summary

    async def _read_balances(
        self, provider: ProviderName
    ) -> tuple[list[ProviderBalance] | None, datetime | None, str | None]:
        """The provider's balances for the report's balance line (expected against
        reported); reports from before that line read none."""
        if not workflow.patched(PATCH_REPORT_BALANCE_LINE):
            return None, None, None
        try:
            balances = await workflow.execute_activity_method(
                ProviderActivities.provider_balances,
                provider,
                task_queue=provider_queue(provider),
                start_to_close_timeout=timedelta(minutes=1),
                schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=PROVIDER_RETRY,
                summary=f"{provider.value} balances",
            )
        except ActivityError as err:
            return None, None, failure_from(err, default_code="balance_unknown").message
        return balances, workflow.now(), None

    # ------------------------------------------------------------------ transaction list

    async def _compare_lists(self, input: ReportInput, summary: ReportSummary) -> None:
        """Both sides in full (bounded by ``max_transactions``), then one comparison.

        momoflow's side covers the day before too (a provider item created today may
        belong to a transaction started just before midnight); the provider's side covers
        the day after too (a transaction started today may be created just after)."""
        start, end = day_window(summary.day)
        outcomes = await self._outcomes(input, start - timedelta(days=1), end, summary)
        items: list[ListedTransaction] = []
        offset: int | None = 0
        while offset is not None:
            if len(items) >= input.max_transactions:
                summary.incomplete = True
                break
            page = await workflow.execute_activity_method(
                ReportProviderActivities.list_provider_transactions,
                ListTransactionsInput(
                    provider=input.provider,
                    start=summary.day,
                    end=summary.day + timedelta(days=1),
                    offset=offset,
                ),
                task_queue=provider_queue(input.provider),
                start_to_close_timeout=timedelta(minutes=1),
                schedule_to_close_timeout=timedelta(hours=1),
                retry_policy=PROVIDER_RETRY,
                summary=f"{input.provider.value} transactions, offset {offset}",
            )
            items.extend(page.items)
            offset = page.next_offset
        compare_lists(summary, momoflow=outcomes, provider=items)

    async def _outcomes(
        self, input: ReportInput, start: datetime, end: datetime, summary: ReportSummary
    ) -> list[MomoflowOutcome]:
        outcomes: list[MomoflowOutcome] = []
        token: bytes | None = None
        while True:
            page = await self._outcome_page(input.provider, start, end, token)
            outcomes.extend(page.outcomes)
            token = page.next_page_token
            if token is None:
                return outcomes
            if len(outcomes) >= input.max_transactions:
                summary.incomplete = True
                return outcomes

    async def _outcome_page(
        self,
        provider: ProviderName,
        start: datetime,
        end: datetime,
        token: bytes | None,
        *,
        page_size: int = 1000,
    ) -> OutcomePage:
        """One page of this deployment's transactions at ``provider``, started in
        ``[start, end)``."""
        return await workflow.execute_activity_method(
            ReconcileActivities.list_momoflow_outcomes,
            OutcomePageInput(
                task_queue=workflow.info().task_queue,
                provider=provider,
                start=start,
                end=end,
                page_size=page_size,
                next_page_token=token,
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=TEMPORAL_RETRY,
            summary=f"momoflow's {provider.value} transactions",
        )

    # ------------------------------------------------------------------ status reads

    async def _compare_reads(self, input: ReportInput, summary: ReportSummary) -> bool:
        """Page through the day's momoflow transactions, reading each one's status; False
        when the run continued as new (the next run carries the summary on)."""
        start, end = day_window(summary.day)
        token = input.next_page_token
        gate = asyncio.Semaphore(input.read_concurrency)
        while True:
            page = await self._outcome_page(
                input.provider, start, end, token, page_size=input.page_size
            )
            reads = await asyncio.gather(
                *(self._read(outcome, input.provider, gate) for outcome in page.outcomes)
            )
            for outcome, read in zip(page.outcomes, reads, strict=True):
                summary.momoflow_transactions += 1
                if read.verdict is ReadVerdict.UNCHECKED:
                    summary.skip(read.detail)
                    continue
                if read.verdict is ReadVerdict.FOUND:
                    summary.matched += 1
                else:
                    summary.not_at_provider += 1
                for mismatch in compare_read(outcome, read):
                    summary.add(mismatch)
            token = page.next_page_token
            if token is None:
                return True
            if summary.momoflow_transactions >= input.max_transactions:
                summary.incomplete = True
                return True
            if workflow.info().get_current_history_length() > input.events_per_run:
                workflow.continue_as_new(
                    input.model_copy(
                        update={"day": summary.day, "carry": summary, "next_page_token": token}
                    )
                )

    async def _read(
        self, outcome: MomoflowOutcome, provider: ProviderName, gate: asyncio.Semaphore
    ) -> ReportRead:
        async with gate:
            try:
                return await workflow.execute_activity_method(
                    ReportProviderActivities.read_status_for_report,
                    ReportReadInput(outcome=outcome, provider=provider),
                    task_queue=provider_queue(provider),
                    start_to_close_timeout=timedelta(minutes=1),
                    schedule_to_close_timeout=timedelta(minutes=10),
                    retry_policy=PROVIDER_RETRY,
                    summary=f"status of {outcome.workflow_id}",
                )
            except ActivityError as err:
                why = failure_from(err, default_code="status_unknown").message
                return ReportRead(verdict=ReadVerdict.UNCHECKED, detail=f"read failed: {why}")


def _mode_of_an_older_start(provider: ProviderName) -> ReportMode:
    """A report started before its input carried the mode (an older schedule, or a history
    recorded then) reads the table as it did then. Nothing newer comes here."""
    return (
        ReportMode.TRANSACTION_LIST
        if spec_for(provider).capabilities.lists_transactions
        else ReportMode.STATUS_READS
    )


@workflow.defn(name=DAILY_REPORT_WORKFLOW)
class ReconcileDailyReportWorkflow:
    """One :class:`ReconcileReportWorkflow` per provider for the previous UTC day."""

    @workflow.run
    async def run(self, input: DailyReportInput) -> list[ReportSummary]:
        """Run the reports side by side; a provider whose report failed is logged and left
        out (its child workflow's failure is in the UI)."""
        day: date = input.day or workflow.now().date() - timedelta(days=1)
        prefix = task_queue_prefix(workflow.info().task_queue)
        runs = [
            workflow.execute_child_workflow(
                ReconcileReportWorkflow.run,
                ReportInput(
                    provider=provider,
                    day=day,
                    mode=input.modes.get(provider),
                    max_transactions=input.max_transactions,
                    read_concurrency=input.read_concurrency,
                ),
                id=report_workflow_id(prefix, provider, day),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
            for provider in input.providers
        ]
        results = await asyncio.gather(*runs, return_exceptions=True)
        summaries: list[ReportSummary] = []
        for provider, result in zip(input.providers, results, strict=True):
            if isinstance(result, ReportSummary):
                summaries.append(result)
            elif isinstance(result, FailureError):
                # A failed run, or one already running (started by hand): its own history
                # says why.
                workflow.logger.warning("report %s %s: %s", provider.value, day, result)
            elif isinstance(result, BaseException):
                raise result
        return summaries
