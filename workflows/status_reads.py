"""StatusReaderWorkflow: one provider's status reads, batched into list reads within a
request budget (see :mod:`momoflow.status_reads`).

One reader per provider (``status-reader-{provider}``), started by the first request
(signal-with-start) and after any end. It:

* keeps the latest request of each transaction (signal ``read``);
* when it holds requests and the budget allows, hands them all to one list read (the
  ``sweep_status_reads`` activity, on the provider's reads task queue), which answers
  every transaction with the ``status_read`` signal;
* then waits as long as the requests that read cost buy at the budget
  (:func:`~momoflow.status_reads.next_sweep_delay`), and never starts a read that could
  take the requests of the last hour over the budget
  (:func:`~momoflow.status_reads.wait_for_budget`);
* continues as new past ``max_history_events`` (or when Temporal suggests it), carrying
  its requests and the last hour's spending.

A list read that fails is not retried by Temporal (a retry would spend requests the
reader cannot count); its requests are kept for the next read, which waits as if it had
cost :data:`~momoflow.status_reads.MAX_READ_COST` requests.

Query ``state`` (:class:`~momoflow.status_reads.ReaderState`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from momoflow.contract import (
        READ_SIGNAL,
        STATE_QUERY,
        STATUS_READER_WORKFLOW,
        SWEEP_STATUS_READS_ACTIVITY,
    )
    from momoflow.status_reads import (
        MAX_READ_COST,
        SWEEP_HEARTBEAT_TIMEOUT_S,
        ReaderInput,
        ReaderState,
        ReadRequest,
        Spent,
        SweepRequest,
        SweepResult,
        next_sweep_delay,
        wait_for_budget,
    )
    from workflows.common import failure_from, history_is_long, status_reads_queue

#: One list read: at most 11 requests; generous for a slow provider.
SWEEP_TIMEOUT = timedelta(minutes=5)
#: From this patch on a list read heartbeats, so a dead worker's read is retried after the
#: heartbeat timeout (``SWEEP_HEARTBEAT_TIMEOUT_S``), not after ``SWEEP_TIMEOUT``.
PATCH_SWEEP_HEARTBEAT = "status-reads-sweep-heartbeat"
#: Requests one walk answers at most (the oldest first).
MAX_BATCH = 500
#: Until a sweep tells the worker's settings (a new reader's first read): the Free plan's
#: share, which is the smallest.
FALLBACK_BUDGET_PER_HOUR = 50.0
FALLBACK_MIN_INTERVAL_S = 60.0


@workflow.defn(name=STATUS_READER_WORKFLOW)
class StatusReaderWorkflow:
    """A provider's batched status reads (see the module docstring)."""

    def __init__(self) -> None:
        self._input: ReaderInput | None = None
        self._pending: dict[str, ReadRequest] = {}
        self._spent: list[Spent] = []
        self._sweeps = 0
        self._next_sweep_at: datetime | None = None
        self._budget: float | None = None
        self._min_interval: float | None = None
        self._last_outcome = "no read yet"

    @workflow.signal(name=READ_SIGNAL)
    def read(self, request: ReadRequest) -> None:
        """A transaction asks for its status; a later ask replaces an earlier one."""
        held = self._pending.get(request.workflow_id)
        if held is None or held.request_id <= request.request_id:
            self._pending[request.workflow_id] = request

    @workflow.query(name=STATE_QUERY)
    def state(self) -> ReaderState:
        """Pending requests, spending and the last read's outcome."""
        now = workflow.now()
        return ReaderState(
            provider=self._run_input.provider,
            pending=len(self._pending),
            sweeps=self._sweeps,
            requests_last_hour=sum(
                s.requests for s in self._spent if (now - s.at).total_seconds() < 3600
            ),
            next_sweep_at=self._next_sweep_at,
            budget_per_hour=self._budget,
            last_outcome=self._last_outcome,
        )

    @workflow.run
    async def run(self, input: ReaderInput) -> None:
        """Batch reads for ever (continuing as new); see the module docstring."""
        self._input = input
        arrived = self._pending
        self._pending = {}
        for request in [*input.pending, *arrived.values()]:
            self.read(request)
        self._spent = list(input.spent)
        self._next_sweep_at = input.next_sweep_at
        self._budget = input.budget_per_hour
        self._min_interval = input.min_interval_s
        while True:
            await workflow.wait_condition(lambda: bool(self._pending))
            await self._wait_for_budget()
            await self._sweep()
            if history_is_long(input.max_history_events):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry())

    async def _wait_for_budget(self) -> None:
        now = workflow.now()
        budget = self._budget or FALLBACK_BUDGET_PER_HOUR
        wait = wait_for_budget(self._spent, now=now, budget_per_hour=budget)
        if self._next_sweep_at is not None:
            wait = max(wait, (self._next_sweep_at - now).total_seconds())
        if wait > 0:
            await workflow.sleep(
                timedelta(seconds=wait),
                summary=f"next list read in {timedelta(seconds=round(wait))} (request budget)",
            )

    async def _sweep(self) -> None:
        # One walk reads at most 1,000 items: a bigger batch could not be answered anyway,
        # and would make the activity's input too large. The rest wait for the next walk.
        batch = list(self._pending.values())[:MAX_BATCH]
        for request in batch:
            del self._pending[request.workflow_id]
        started = workflow.now()
        self._sweeps += 1
        provider = self._run_input.provider
        try:
            result: SweepResult = await workflow.execute_activity(
                SWEEP_STATUS_READS_ACTIVITY,
                SweepRequest(provider=provider, requests=batch),
                result_type=SweepResult,
                task_queue=status_reads_queue(provider),
                start_to_close_timeout=SWEEP_TIMEOUT,
                heartbeat_timeout=(
                    timedelta(seconds=SWEEP_HEARTBEAT_TIMEOUT_S)
                    if workflow.patched(PATCH_SWEEP_HEARTBEAT)
                    else None
                ),
                # Spent requests are counted from the result: a retry would spend unseen.
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=f"one list read for {len(batch)} transaction(s)",
            )
        except ActivityError as err:
            for request in batch:
                if request.workflow_id not in self._pending:
                    self._pending[request.workflow_id] = request
            self._spend(started, MAX_READ_COST)
            self._last_outcome = (
                f"read {self._sweeps} failed ({len(batch)} request(s) kept): "
                f"{failure_from(err, default_code='read_failed').message}"
            )
            return
        self._budget = result.budget_per_hour
        self._min_interval = result.min_interval_s
        self._spend(started, result.requests_spent)
        self._last_outcome = (
            f"read {self._sweeps}: {result.requests_spent} request(s), {result.found} found, "
            f"{result.missing} not visible, {result.unanswered} gone"
            + (f"; stopped early: {result.error}" if result.error else "")
        )

    def _spend(self, at: datetime, requests: int) -> None:
        self._spent = [s for s in self._spent if (at - s.at).total_seconds() < 3600]
        self._spent.append(Spent(at=at, requests=requests))
        delay = next_sweep_delay(
            requests,
            budget_per_hour=self._budget or FALLBACK_BUDGET_PER_HOUR,
            min_interval_s=(
                self._min_interval if self._min_interval is not None else FALLBACK_MIN_INTERVAL_S
            ),
        )
        self._next_sweep_at = at + timedelta(seconds=delay)

    def _carry(self) -> ReaderInput:
        return self._run_input.model_copy(
            update={
                "pending": list(self._pending.values()),
                "next_sweep_at": self._next_sweep_at,
                "spent": list(self._spent),
                "budget_per_hour": self._budget,
                "min_interval_s": self._min_interval,
            }
        )

    @property
    def _run_input(self) -> ReaderInput:
        assert self._input is not None
        return self._input
