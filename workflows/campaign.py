"""CampaignWorkflow: pay every valid line of a supplier file exactly once.

Phases (:class:`~momoflow.campaigns.models.CampaignPhase`)::

    preflight ─► awaiting_approval ─► running ⇄ paused ─► draining ─► completed
        │               │                 └──────────────► (cancel) ─► cancelled
        └─► rejected    └─► cancelled

    preflight, running, draining ─► blocked ─► (retry) ─► the same phase again
                                       └─────► (cancel) ─► cancelled (via draining)

* **Pre-flight** checks every line (activity ``prepare_campaign``: the file is read from the
  campaign store, never carried in history), prices the lines (quotes on each provider's
  rate-limited queue), reads balances and availability, and reports everything at once.
  Nothing moves before the ``approve`` update (or ``auto_approve`` with no blocking problem).
* **Execution** starts one child :class:`~workflows.payout.PayoutWorkflow` per line, with
  the line's reference as the payout's (``payout-{merchant}-{reference}``): a line can never
  be paid twice, even by two campaigns. At most ``max_in_flight_per_provider`` lines of a
  provider are in flight (by default sized from the provider's rate limit, so single
  payouts never queue behind more than about 30 s of campaign requests); each payout tells
  the campaign its settled outcome (signal ``line_settled``), so children are never
  awaited and survive continue-as-new (``ParentClosePolicy.ABANDON``).
* **History stays small**: the workflow continues as new after ``max_history_events`` or
  ``max_history_bytes`` (far below Temporal's 50,000-event and 50 MB limits),
  carrying counters, cursors and the lines in flight (:class:`CampaignCarry`); outcomes go
  to the store in numbered batches.
* **Outages**: ``outage_error_threshold`` consecutive provider errors on a provider's lines
  pause that provider only; its availability is probed every ``outage_probe_interval_s`` and
  its lines resume when it answers again (or when an operator resumes it).
* ``pause`` / ``resume`` / ``cancel`` updates; ``cancel`` stops new lines, and lines already
  sent finish and are reported. Query ``progress``.
* **Blocked**: a campaign store step (check the file, price the lines, read a page of lines,
  record outcomes, look up an existing payout) is retried a bounded while when its error may
  pass; when it fails in a way no retry cures (a configuration error, an unreadable or
  missing file, a bug: ``CampaignStepFailed``), the campaign goes ``blocked`` with the step
  and the error in ``phase_reason``, and waits. The ``retry`` update runs the step again and
  the campaign goes on from where it was; ``cancel`` gives the step up (guarded by
  :data:`PATCH_BLOCKED`). Lines in flight keep settling while the campaign is blocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.campaigns import CampaignActivities
    from activities.providers import ProviderActivities
    from momoflow import search_attributes as sa
    from momoflow import telemetry
    from momoflow.campaigns.models import (
        SKIPPED,
        ApproveRequest,
        CampaignCarry,
        CampaignInput,
        CampaignLine,
        CampaignPhase,
        CampaignProgress,
        CancelRequest,
        GroupQuote,
        InFlight,
        LineOutcome,
        OutcomeBatch,
        PauseRequest,
        Preflight,
        PreflightChecks,
        PreparedCampaign,
        ProviderRun,
        ReadLines,
        RetryRequest,
        StatusCount,
    )
    from momoflow.contract import (
        APPROVE_UPDATE,
        CAMPAIGN_FILE_REJECTED,
        CAMPAIGN_WORKFLOW,
        CANCEL_UPDATE,
        FINGERPRINT_MEMO,
        LINE_SETTLED_SIGNAL,
        PAUSE_UPDATE,
        PAYOUT_WORKFLOW,
        PROGRESS_QUERY,
        RESUME_UPDATE,
        RETRY_UPDATE,
    )
    from momoflow.ids import campaign_task_queue, payout_workflow_id, task_queue_prefix
    from momoflow.masking import mask_phone
    from momoflow.models import (
        PayoutQuoteInput,
        ProviderAvailability,
        ProviderBalance,
        ProviderName,
        TransactionStatus,
    )
    from momoflow.money import format_amount
    from workflows.common import application_error, failure_from, provider_queue

#: Failure codes of a line that say the provider, not the line, is in trouble.
OUTAGE_CODES = frozenset(
    {
        "provider_unavailable",
        "provider_rate_limited",
        "provider_protocol_error",
        "provider_auth_error",
        "create_outcome_unknown",
    }
)
#: Store work (the file, the outcomes) before :data:`PATCH_BLOCKED`: retried for ever.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
#: Store work with :data:`PATCH_BLOCKED`: an error that may pass is retried for about a
#: minute and a half (1 + 2 + 4 + 8 + 16 + 30 + 30 s between 8 attempts), then the campaign
#: goes ``blocked``; an error no retry cures blocks it at once (non-retryable).
STORE_RETRY_BOUNDED = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)
#: Checking the file: a few attempts (it reads the whole file).
PREPARE_RETRY = RetryPolicy(maximum_attempts=5)
#: A pre-flight provider call (quote, balance, availability) that fails is reported, not fatal.
PREFLIGHT_CALL = timedelta(seconds=60)
#: Buffered outcomes are written at least this often, so reports of a running campaign
#: rarely need to read payouts one by one.
FLUSH_EVERY = timedelta(seconds=20)
#: Patch: the loop's wake-up flag is cleared before each pass instead of before each wait.
#: Before it, lines settling while children were being started could leave the campaign
#: waiting with free slots and nothing in flight.
PATCH_NO_LOST_WAKEUP = "campaign-no-lost-wakeup"
#: Patch: store steps retry a bounded while (:data:`STORE_RETRY_BOUNDED`) and pre-flight
#: blocks instead of rejecting when it cannot read the stored file; ``read_campaign_lines``
#: is told the provider's total, so a missing page is an error. Before it, store steps
#: retried for ever and a file that could not be read rejected the campaign. (Blocking on a
#: failed store step needs no patch elsewhere: those steps could not fail before it.)
PATCH_BLOCKED = "campaign-blocked-retry"
#: Rate samples: one at most every 5 s, rate measured over the last minute.
RATE_SAMPLE_EVERY_S = 5.0
RATE_WINDOW_S = 60.0

T = TypeVar("T")


class _GivenUp(Exception):
    """The campaign was cancelled while a store step was blocked: the step is given up."""


@workflow.defn(name=CAMPAIGN_WORKFLOW)
class CampaignWorkflow:
    """A bulk payout campaign (see the module docstring)."""

    def __init__(self) -> None:
        self._input: CampaignInput | None = None
        self._carry: CampaignCarry | None = None
        self._early: list[LineOutcome] = []
        self._buffer: list[LineOutcome] = []
        self._queues: dict[ProviderName, list[CampaignLine]] = {}
        self._changed = False
        self._approved = False
        self._last_flush: datetime | None = None
        self._next_probe: datetime | None = None
        #: ``retry`` updates received; a blocked step waits for this to grow.
        self._retries = 0
        #: The phase a blocked campaign returns to on ``retry``.
        self._phase_before_block = CampaignPhase.PREFLIGHT

    # ------------------------------------------------------------------ messages

    @workflow.signal(name=LINE_SETTLED_SIGNAL)
    def line_settled(self, outcome: LineOutcome) -> None:
        """A line's payout reached a final state or ``reconciling``."""
        if self._carry is None:
            self._early.append(outcome)
            return
        self._settle(outcome)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> CampaignProgress:
        """Counts and amounts by status, rate, ETA."""
        return self._snapshot()

    @workflow.update(name=APPROVE_UPDATE)
    def approve(self, request: ApproveRequest) -> CampaignProgress:
        """Let the campaign pay its valid lines."""
        progress = self._campaign_carry.progress
        progress.approved_by = request.approved_by
        progress.approved_at = workflow.now()
        if request.override_blocking and progress.preflight and progress.preflight.blocking:
            progress.phase_reason = "approved over: " + "; ".join(progress.preflight.blocking)
        self._approved = True
        self._changed = True
        # The main loop records the phase change (and its search attribute) right after.
        snapshot = self._snapshot()
        snapshot.phase = CampaignPhase.RUNNING
        return snapshot

    @approve.validator
    def _check_approve(self, request: ApproveRequest) -> None:
        carry = self._carry
        if carry is None or carry.progress.phase is not CampaignPhase.AWAITING_APPROVAL:
            phase = carry.progress.phase.value if carry else "starting"
            raise ValueError(f"the campaign is {phase}, not awaiting approval")
        # Four-eyes: an operator never approves a campaign they uploaded. The input is
        # kept across continue-as-new (``_run_input``), unlike a progress from before
        # ``submitted_by`` was copied into it.
        submitted_by = self._input.submitted_by if self._input else carry.progress.submitted_by
        approver = request.approved_by.strip().lower()
        if submitted_by.startswith("operator:") and approver == submitted_by.lower():
            raise ValueError("four-eyes: the operator who uploaded the campaign cannot approve it")
        preflight = carry.progress.preflight
        if preflight and preflight.blocking and not request.override_blocking:
            raise ValueError(
                "pre-flight found blocking problems: "
                + "; ".join(preflight.blocking)
                + " (approve with override_blocking to pay anyway)"
            )

    @workflow.update(name=PAUSE_UPDATE)
    def pause(self, request: PauseRequest) -> CampaignProgress:
        """Stop starting lines (of one provider, or all); lines in flight finish."""
        carry = self._campaign_carry
        if request.provider is None:
            carry.paused_by_operator = True
            carry.progress.phase_reason = f"paused by {request.by}"
        else:
            run = self._run_of(request.provider)
            run.paused_reason = f"paused by {request.by}"
            run.outage = False
        self._changed = True
        return self._snapshot()

    @workflow.update(name=RESUME_UPDATE)
    def resume(self, request: PauseRequest) -> CampaignProgress:
        """Start lines again (one provider's, or the whole campaign's and every provider's)."""
        carry = self._campaign_carry
        runs = [self._run_of(request.provider)] if request.provider else carry.providers
        if request.provider is None:
            carry.paused_by_operator = False
            carry.progress.phase_reason = f"resumed by {request.by}"
        for run in runs:
            run.paused_reason = None
            run.outage = False
            run.consecutive_errors = 0
        self._changed = True
        return self._snapshot()

    @workflow.update(name=CANCEL_UPDATE)
    def cancel(self, request: CancelRequest) -> CampaignProgress:
        """Start no new line; the lines already sent finish and are reported."""
        carry = self._campaign_carry
        carry.cancel_requested = True
        carry.progress.cancelled_by = request.by
        carry.progress.phase_reason = f"cancelled by {request.by}" + (
            f": {request.reason}" if request.reason else ""
        )
        self._changed = True
        return self._snapshot()

    @workflow.update(name=RETRY_UPDATE)
    def retry(self, request: RetryRequest) -> CampaignProgress:
        """Run the step that blocked the campaign again (its cause fixed); the campaign goes
        on from where it was."""
        self._retries += 1
        self._campaign_carry.progress.phase_reason = f"retried by {request.by}"
        self._set_phase(self._phase_before_block)
        return self._snapshot()

    @pause.validator
    def _check_pause(self, request: PauseRequest) -> None:
        self._check_running("paused", request.provider)
        self._check_not_blocked("paused")

    @resume.validator
    def _check_resume(self, request: PauseRequest) -> None:
        self._check_running("resumed", request.provider)
        self._check_not_blocked("resumed")

    @cancel.validator
    def _check_cancel(self, request: CancelRequest) -> None:
        self._check_running("cancelled", None)

    @retry.validator
    def _check_retry(self, request: RetryRequest) -> None:
        carry = self._carry
        phase = carry.progress.phase.value if carry else "starting"
        if carry is None or carry.progress.phase is not CampaignPhase.BLOCKED:
            raise ValueError(f"the campaign is {phase}, not blocked: nothing to retry")

    def _check_running(self, verb: str, provider: ProviderName | None) -> None:
        carry = self._carry
        if carry is None:
            raise ValueError(f"the campaign is starting and cannot be {verb} yet")
        if carry.progress.phase.is_final or carry.cancel_requested:
            raise ValueError(f"the campaign is {carry.progress.phase.value}: nothing to {verb}")
        if provider is not None and provider not in {r.provider for r in carry.providers}:
            raise ValueError(f"the campaign has no line for {provider.value}")

    def _check_not_blocked(self, verb: str) -> None:
        # Pausing would hide why the campaign stopped; it waits for retry or cancel.
        progress = self._campaign_carry.progress
        if progress.phase is CampaignPhase.BLOCKED:
            raise ValueError(
                f"the campaign is blocked and cannot be {verb}: {progress.phase_reason}"
            )

    # ------------------------------------------------------------------ main line

    @workflow.run
    async def run(self, input: CampaignInput) -> CampaignProgress:
        """Pre-flight, approval, then execution (see the module docstring)."""
        carry, self._input = input.carry, input.model_copy(update={"carry": None})
        self._last_flush = self._next_probe = workflow.now()
        if carry is None:
            now = workflow.now()
            self._carry = CampaignCarry(
                progress=CampaignProgress(
                    campaign_id=input.campaign_id,
                    merchant=input.merchant,
                    reference=input.reference,
                    name=input.name,
                    file_format=input.file_format,
                    file_sha256=input.file_sha256,
                    phase=CampaignPhase.PREFLIGHT,
                    submitted_at=input.submitted_at,
                    submitted_by=input.submitted_by,
                    updated_at=now,
                )
            )
            self._publish()
            try:
                if not await self._preflight():
                    return self._end(CampaignPhase.REJECTED)
            except _GivenUp:
                return self._end(CampaignPhase.CANCELLED)
            await self._await_approval()
            if self._campaign_carry.cancel_requested:
                return self._end(CampaignPhase.CANCELLED)
            self._campaign_carry.progress.started_at = workflow.now()
            # The rate counts from the start of payment, not from submission.
            self._campaign_carry.rate_samples.clear()
        else:
            self._carry = carry
            carry.progress.runs += 1
            self._approved = True
        for outcome in self._early:
            self._settle(outcome)
        self._early.clear()
        return await self._execute()

    # ------------------------------------------------------------------ pre-flight

    async def _preflight(self) -> bool:
        progress = self._campaign_carry.progress
        blocking = self._blocking()

        def rejects(err: ActivityError) -> bool:
            if not blocking:
                return True
            app = application_error(err)
            return app is not None and app.type == CAMPAIGN_FILE_REJECTED

        try:
            prepared: PreparedCampaign = await self._store_step(
                "prepare_campaign",
                "check every line of the file",
                lambda _: workflow.execute_activity_method(
                    CampaignActivities.prepare_campaign,
                    self._run_input,
                    task_queue=self._campaign_queue,
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=timedelta(minutes=5),
                    retry_policy=PREPARE_RETRY,
                    summary="check every line of the file",
                ),
                gives_back=rejects,
            )
        except ActivityError as err:
            progress.phase_reason = failure_from(err, default_code="preflight_failed").message
            return False
        progress.lines = prepared.lines
        progress.valid_lines = prepared.valid_lines
        progress.invalid_lines = prepared.invalid_lines
        self._campaign_carry.providers = [
            ProviderRun(provider=provider, total=count)
            for provider, count in sorted(prepared.lines_by_provider.items())
        ]
        checks = PreflightChecks(campaign_id=self._run_input.campaign_id, prepared=prepared)
        await asyncio.gather(
            *(self._check_provider(run.provider, checks) for run in self._campaign_carry.providers),
            *(self._quote(i, checks) for i in range(len(prepared.quote_groups))),
        )
        preflight: Preflight = await self._store_step(
            "finish_campaign_preflight",
            "price the lines, compare balances",
            lambda policy: workflow.execute_activity_method(
                CampaignActivities.finish_preflight,
                checks,
                task_queue=self._campaign_queue,
                start_to_close_timeout=timedelta(minutes=30),
                retry_policy=policy,
                summary="price the lines, compare balances",
            ),
        )
        progress.preflight = preflight
        workflow.upsert_search_attributes(
            [sa.AMOUNT.value_set(sum(t.amount for t in preflight.totals))]
        )
        if prepared.valid_lines == 0:
            progress.phase_reason = (
                f"no payable line: {prepared.invalid_lines} of {prepared.lines} lines have "
                "problems (see the pre-flight report)"
            )
            return False
        return True

    async def _check_provider(self, provider: ProviderName, checks: PreflightChecks) -> None:
        errors = checks.errors.setdefault(provider, [])
        try:
            availability: ProviderAvailability = await workflow.execute_activity_method(
                ProviderActivities.provider_availability,
                provider,
                task_queue=provider_queue(provider),
                schedule_to_close_timeout=PREFLIGHT_CALL,
                summary=f"is {provider.value} available?",
            )
            checks.availability[provider] = availability
        except ActivityError as err:
            checks.availability[provider] = ProviderAvailability(
                provider=provider,
                available=False,
                detail=failure_from(err, default_code="provider_unavailable").message,
            )
        try:
            balances: list[ProviderBalance] = await workflow.execute_activity_method(
                ProviderActivities.provider_balances,
                provider,
                task_queue=provider_queue(provider),
                schedule_to_close_timeout=PREFLIGHT_CALL,
                summary=f"{provider.value} balance",
            )
            checks.balances[provider] = balances
        except ActivityError as err:
            message = failure_from(err, default_code="provider_unavailable").message
            errors.append(f"balance unknown: {message}")

    async def _quote(self, index: int, checks: PreflightChecks) -> None:
        group = checks.prepared.quote_groups[index]
        quote = GroupQuote(group=group)
        try:
            answer = await workflow.execute_activity_method(
                ProviderActivities.quote_payout,
                PayoutQuoteInput(
                    provider=group.provider,
                    amount=group.amount,
                    currency=group.currency,
                    country=group.country,
                    operator=group.operator,
                ),
                task_queue=provider_queue(group.provider),
                schedule_to_close_timeout=PREFLIGHT_CALL,
                summary=f"quote {format_amount(group.amount, group.currency)} "
                f"({group.lines} line(s))",
            )
            quote.fees = answer.fees
        except ActivityError as err:
            quote.error = failure_from(err, default_code="provider_unavailable").message
            checks.errors.setdefault(group.provider, []).append(
                f"quote of {format_amount(group.amount, group.currency)} failed: {quote.error}"
            )
        checks.quotes.append(quote)
        # Sorted so the activity input (in history) never depends on completion order.
        checks.quotes.sort(key=lambda q: checks.prepared.quote_groups.index(q.group))

    async def _await_approval(self) -> None:
        progress = self._campaign_carry.progress
        preflight = progress.preflight
        blocked = bool(preflight and preflight.blocking)
        if self._run_input.options.auto_approve and not blocked:
            progress.approved_by = "auto_approve"
            progress.approved_at = workflow.now()
            return
        self._set_phase(CampaignPhase.AWAITING_APPROVAL)
        if self._run_input.options.auto_approve:
            progress.phase_reason = "auto_approve held back by pre-flight: " + "; ".join(
                preflight.blocking if preflight else []
            )
        await workflow.wait_condition(
            lambda: self._approved or self._campaign_carry.cancel_requested
        )

    # ------------------------------------------------------------------ execution

    async def _execute(self) -> CampaignProgress:
        options = self._run_input.options
        while True:
            if workflow.patched(PATCH_NO_LOST_WAKEUP):
                # Cleared before the work, not before the wait: a line that settles while
                # children are being started must wake the next pass.
                self._changed = False
            self._set_phase(self._running_phase())
            if (
                not self._campaign_carry.cancel_requested
                and not self._campaign_carry.paused_by_operator
            ):
                await self._start_lines()
            if self._buffer and (
                len(self._buffer) >= options.outcome_batch_size
                or workflow.now() - (self._last_flush or workflow.now()) >= FLUSH_EVERY
            ):
                await self._flush()
            if self._done():
                break
            if self._history_full():
                await self._continue_as_new()
            await self._wait()
        await self._flush()
        final = (
            CampaignPhase.CANCELLED
            if self._campaign_carry.cancel_requested
            else CampaignPhase.COMPLETED
        )
        return self._end(final)

    async def _start_lines(self) -> None:
        options = self._run_input.options
        in_flight: dict[ProviderName, int] = {}
        for entry in self._campaign_carry.in_flight.values():
            in_flight[entry.provider] = in_flight.get(entry.provider, 0) + 1
        batch: list[CampaignLine] = []
        for run in self._campaign_carry.providers:
            if run.paused_reason is not None:
                continue
            window = options.max_in_flight_by_provider.get(
                run.provider, options.max_in_flight_per_provider
            )
            free = window - in_flight.get(run.provider, 0)
            if free > 0 and run.cursor < run.total:
                batch.extend(await self._take(run, free))
        if batch:
            await asyncio.gather(*(self._start_line(line) for line in batch))

    async def _take(self, run: ProviderRun, count: int) -> list[CampaignLine]:
        queue = self._queues.setdefault(run.provider, [])
        if len(queue) < count and run.cursor + len(queue) < run.total:
            request = ReadLines(
                campaign_id=self._run_input.campaign_id,
                provider=run.provider,
                start=run.cursor + len(queue),
                count=max(count - len(queue), self._run_input.options.page_size),
                total=run.total if self._blocking() else None,
            )
            summary = f"read {run.provider.value} lines from {request.start}"
            try:
                queue.extend(
                    await self._store_step(
                        "read_campaign_lines",
                        summary,
                        lambda policy: workflow.execute_activity_method(
                            CampaignActivities.read_lines,
                            request,
                            task_queue=self._campaign_queue,
                            start_to_close_timeout=timedelta(minutes=2),
                            retry_policy=policy,
                            summary=summary,
                        ),
                    )
                )
            except _GivenUp:
                return []
        taken, self._queues[run.provider] = queue[:count], queue[count:]
        run.cursor += len(taken)
        return taken

    async def _start_line(self, line: CampaignLine) -> None:
        carry, payout = self._campaign_carry, line.payout
        workflow_id = payout_workflow_id(payout.merchant, payout.reference)
        carry.in_flight[workflow_id] = InFlight(
            line=line.line, provider=payout.provider, amount=payout.amount
        )
        carry.progress.started_lines += 1
        attributes = sa.payout_attributes(payout)
        try:
            await workflow.start_child_workflow(
                PAYOUT_WORKFLOW,
                payout,
                id=workflow_id,
                task_queue=workflow.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                memo={FINGERPRINT_MEMO: payout.request_fingerprint},
                search_attributes=attributes.updated(
                    SearchAttributePair(sa.CAMPAIGN, self._run_input.campaign_id)
                ),
                static_summary=(
                    f"Payout {format_amount(payout.amount, payout.currency)} to "
                    f"{mask_phone(payout.recipient_phone)} via {payout.provider.value}/"
                    f"{payout.operator.value} "
                    f"(campaign {self._run_input.reference}, line {line.line})"
                ),
            )
        except WorkflowAlreadyStartedError:
            await self._adopt(workflow_id, line)

    async def _adopt(self, workflow_id: str, line: CampaignLine) -> None:
        """The line's payout exists: ours (a line we started, seen again) or another's."""
        payout = line.payout
        try:
            existing = await self._store_step(
                "existing_payout",
                f"who owns {workflow_id}?",
                lambda policy: workflow.execute_activity_method(
                    CampaignActivities.existing_payout,
                    workflow_id,
                    task_queue=self._campaign_queue,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=policy,
                    summary=f"who owns {workflow_id}?",
                ),
            )
        except _GivenUp:
            self._settle(
                LineOutcome(
                    workflow_id=workflow_id,
                    reference=payout.reference,
                    provider=payout.provider,
                    status=SKIPPED,
                    amount=payout.amount,
                    currency=payout.currency,
                    failure_code="owner_unknown",
                    failure_message=f"the campaign was cancelled before it could tell whether "
                    f"{workflow_id} was its own; that payout's own status says whether it "
                    "was paid",
                    at=workflow.now(),
                )
            )
            return
        if existing.campaign_workflow_id == self._run_input.campaign_id:
            if existing.outcome is not None:
                self._settle(existing.outcome)
            return
        self._settle(
            LineOutcome(
                workflow_id=workflow_id,
                reference=payout.reference,
                provider=payout.provider,
                status=SKIPPED,
                amount=payout.amount,
                currency=payout.currency,
                failure_code="duplicate_reference",
                failure_message=f"reference {payout.reference!r} was already used by "
                f"{workflow_id}"
                + (
                    f" (campaign {existing.campaign_workflow_id})"
                    if existing.campaign_workflow_id
                    else ""
                )
                + "; this line was not paid",
                at=workflow.now(),
            )
        )

    def _settle(self, outcome: LineOutcome) -> None:
        carry = self._campaign_carry
        workflow_id = outcome.workflow_id
        entry = carry.in_flight.pop(workflow_id, None)
        reconciling = TransactionStatus.RECONCILING.value
        if entry is None:
            entry = carry.reconciling.get(workflow_id)
            if entry is None or outcome.status == reconciling:
                return
            # A reconciling line got its final answer.
            del carry.reconciling[workflow_id]
            self._count(reconciling, -1, -entry.amount, outcome.currency.value)
            self._count(outcome.status, 1, entry.amount, outcome.currency.value)
            self._paid(outcome, entry.amount)
            self._buffer.append(outcome)
            self._changed = True
            return
        if outcome.status == reconciling:
            carry.reconciling[workflow_id] = entry
        self._count(outcome.status, 1, entry.amount, outcome.currency.value)
        self._paid(outcome, entry.amount)
        carry.progress.settled_lines += 1
        if outcome.status == SKIPPED:
            carry.progress.skipped_lines += 1
        self._watch_outage(entry.provider, outcome)
        self._buffer.append(outcome)
        self._changed = True

    def _count(self, status: str, lines: int, amount: int, currency: str) -> None:
        by_status = self._campaign_carry.progress.by_status
        count = by_status.setdefault(status, StatusCount())
        count.lines += lines
        count.amount += amount
        count.by_currency[currency] = count.by_currency.get(currency, 0) + amount
        # Replay-safe (Temporal's workflow meter records nothing while replaying).
        telemetry.workflow_metrics().campaign_lines(
            self._run_input.campaign_id, {name: c.lines for name, c in by_status.items()}
        )

    def _paid(self, outcome: LineOutcome, amount: int) -> None:
        if outcome.status == TransactionStatus.SUCCEEDED.value:
            paid = self._campaign_carry.progress.paid
            paid[outcome.currency.value] = paid.get(outcome.currency.value, 0) + amount

    def _watch_outage(self, provider: ProviderName, outcome: LineOutcome) -> None:
        run = self._run_of(provider)
        if outcome.failure_code in OUTAGE_CODES:
            run.consecutive_errors += 1
        elif outcome.status != SKIPPED:
            run.consecutive_errors = 0
        threshold = self._run_input.options.outage_error_threshold
        if run.consecutive_errors >= threshold and run.paused_reason is None:
            run.paused_reason = (
                f"{run.consecutive_errors} provider errors in a row "
                f"(last: {outcome.failure_code}); probing every "
                f"{self._run_input.options.outage_probe_interval_s} s"
            )
            run.outage = True
            self._next_probe = workflow.now() + timedelta(
                seconds=self._run_input.options.outage_probe_interval_s
            )
            workflow.logger.warning("campaign %s: %s paused", self._run_input.campaign_id, provider)

    async def _wait(self) -> None:
        if not workflow.patched(PATCH_NO_LOST_WAKEUP):
            self._changed = False
        outage = [r for r in self._campaign_carry.providers if r.outage and r.paused_reason]
        deadlines = [FLUSH_EVERY] if self._buffer else []
        if outage:
            next_probe = self._next_probe or workflow.now()
            deadlines.append(max(timedelta(0), next_probe - workflow.now()))
        timeout = min(deadlines) if deadlines else None
        try:
            await workflow.wait_condition(lambda: self._changed, timeout=timeout)
        except TimeoutError:
            pass  # time to flush buffered outcomes or probe a paused provider (below)
        if outage and workflow.now() >= (self._next_probe or workflow.now()):
            await self._probe(outage)

    async def _probe(self, runs: list[ProviderRun]) -> None:
        self._next_probe = workflow.now() + timedelta(
            seconds=self._run_input.options.outage_probe_interval_s
        )
        for run in runs:
            try:
                availability: ProviderAvailability = await workflow.execute_activity_method(
                    ProviderActivities.provider_availability,
                    run.provider,
                    task_queue=provider_queue(run.provider),
                    schedule_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_attempts=2),
                    summary=f"is {run.provider.value} back?",
                )
            except ActivityError:
                continue
            if availability.available and run.outage:
                run.paused_reason = None
                run.outage = False
                run.consecutive_errors = 0
                self._changed = True

    async def _flush(self) -> None:
        self._last_flush = workflow.now()
        if not self._buffer:
            return
        carry = self._campaign_carry
        batch, self._buffer = self._buffer, []
        outcomes = OutcomeBatch(
            campaign_id=self._run_input.campaign_id, batch=carry.outcome_batches, outcomes=batch
        )
        try:
            await self._store_step(
                "record_campaign_outcomes",
                f"record {len(batch)} outcomes",
                lambda policy: workflow.execute_activity_method(
                    CampaignActivities.record_outcomes,
                    outcomes,
                    task_queue=self._campaign_queue,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=policy,
                    summary=f"record {len(batch)} outcomes",
                ),
            )
        except _GivenUp:
            # Cancelled: the report reads these lines from their payouts instead.
            return
        carry.outcome_batches += 1

    # ------------------------------------------------------------------ blocked

    def _blocking(self) -> bool:
        """True with :data:`PATCH_BLOCKED` (memoized by the SDK: the first call decides)."""
        return workflow.patched(PATCH_BLOCKED)

    async def _store_step(
        self,
        step: str,
        summary: str,
        call: Callable[[RetryPolicy], Awaitable[T]],
        *,
        gives_back: Callable[[ActivityError], bool] = lambda _: False,
    ) -> T:
        """Run a store activity (``call`` with the retry policy to use) until it succeeds.

        A failure ``gives_back`` accepts is raised to the caller. Any other blocks the
        campaign until ``retry`` (the step runs again) or ``cancel`` (:class:`_GivenUp`);
        once the campaign is cancelled, a failing step is given up at once."""
        policy = STORE_RETRY_BOUNDED if self._blocking() else STORE_RETRY
        while True:
            try:
                return await call(policy)
            except ActivityError as err:
                if gives_back(err):
                    raise
                if self._campaign_carry.cancel_requested:
                    raise _GivenUp from None
                await self._block(step, summary, err)

    async def _block(self, step: str, summary: str, err: ActivityError) -> None:
        progress = self._campaign_carry.progress
        message = failure_from(err, default_code="step_failed").message
        if progress.phase is not CampaignPhase.BLOCKED:
            self._phase_before_block = progress.phase
        progress.phase_reason = (
            f"{step} ({summary}) failed: {message}; fix the cause, then retry the campaign"
        )
        self._set_phase(CampaignPhase.BLOCKED)
        workflow.logger.warning("campaign %s blocked: %s", self._run_input.campaign_id, message)
        seen = self._retries
        await workflow.wait_condition(
            lambda: self._retries > seen or self._campaign_carry.cancel_requested
        )
        if self._retries == seen:
            raise _GivenUp

    def _done(self) -> bool:
        carry = self._campaign_carry
        if carry.in_flight:
            return False
        if carry.cancel_requested:
            return True
        return all(run.cursor >= run.total for run in carry.providers)

    def _history_full(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= self._run_input.options.max_history_events
            or info.get_current_history_size() >= self._run_input.options.max_history_bytes
            or info.is_continue_as_new_suggested()
        )

    async def _continue_as_new(self) -> None:
        await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._sample_rate()
        workflow.continue_as_new(self._run_input.model_copy(update={"carry": self._campaign_carry}))

    # ------------------------------------------------------------------ bookkeeping

    def _running_phase(self) -> CampaignPhase:
        carry = self._campaign_carry
        if carry.cancel_requested:
            return CampaignPhase.DRAINING
        if carry.paused_by_operator:
            return CampaignPhase.PAUSED
        if all(run.cursor >= run.total for run in carry.providers):
            return CampaignPhase.DRAINING
        return CampaignPhase.RUNNING

    def _set_phase(self, phase: CampaignPhase) -> None:
        progress = self._campaign_carry.progress
        self._sample_rate()
        if progress.phase is phase:
            return
        progress.phase = phase
        progress.updated_at = workflow.now()
        workflow.upsert_search_attributes([sa.STATUS.value_set(phase.value)])

    def _end(self, phase: CampaignPhase) -> CampaignProgress:
        self._set_phase(phase)
        self._campaign_carry.progress.completed_at = workflow.now()
        return self._snapshot()

    def _publish(self) -> None:
        inp = self._run_input
        workflow.upsert_search_attributes(
            [
                sa.DIRECTION.value_set("campaign"),
                sa.STATUS.value_set(CampaignPhase.PREFLIGHT.value),
                sa.MERCHANT.value_set(inp.merchant),
                sa.REFERENCE.value_set(inp.reference),
                sa.CAMPAIGN.value_set(inp.campaign_id),
            ]
        )

    def _sample_rate(self) -> None:
        carry = self._campaign_carry
        now = workflow.now().timestamp()
        samples = carry.rate_samples
        if samples and now - samples[-1][0] < RATE_SAMPLE_EVERY_S:
            return
        samples.append((now, carry.progress.settled_lines))
        while len(samples) > 2 and now - samples[1][0] > RATE_WINDOW_S:
            samples.pop(0)

    def _snapshot(self) -> CampaignProgress:
        if self._carry is None:
            raise RuntimeError("the campaign has not started yet")
        carry = self._carry
        progress = carry.progress.model_copy(deep=True)
        progress.in_flight = len(carry.in_flight)
        progress.paused_providers = {
            run.provider.value: run.paused_reason
            for run in carry.providers
            if run.paused_reason is not None
        }
        samples = carry.rate_samples
        if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
            settled = samples[-1][1] - samples[0][1]
            progress.rate_per_s = round(settled / (samples[-1][0] - samples[0][0]), 2)
        remaining = progress.valid_lines - progress.settled_lines
        waiting = progress.phase.is_final or progress.phase is CampaignPhase.BLOCKED
        if progress.rate_per_s > 0 and not waiting:
            progress.eta_s = int(remaining / progress.rate_per_s)
        return progress

    def _run_of(self, provider: ProviderName) -> ProviderRun:
        for run in self._campaign_carry.providers:
            if run.provider is provider:
                return run
        raise ValueError(f"the campaign has no line for {provider.value}")

    @property
    def _campaign_carry(self) -> CampaignCarry:
        assert self._carry is not None
        return self._carry

    @property
    def _run_input(self) -> CampaignInput:
        assert self._input is not None
        return self._input

    @property
    def _campaign_queue(self) -> str:
        return campaign_task_queue(task_queue_prefix(workflow.info().task_queue))
