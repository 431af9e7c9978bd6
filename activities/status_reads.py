"""Activities of the batched status reads (:mod:`momoflow.status_reads`).

``request_status_read`` talks to Temporal only, so it runs on the workflows task queue
(no provider rate limit). ``sweep_status_reads`` calls the provider on its own reads
queue, which the server does not rate-limit: the reader workflow paces it within the
request budget, from the requests each read reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.heartbeats import heartbeating
from momoflow import telemetry
from momoflow.contract import (
    ANSWER_SIGNAL,
    READ_SIGNAL,
    REQUEST_STATUS_READ_ACTIVITY,
    SHARED_READS_UNAVAILABLE,
    STATUS_READER_WORKFLOW,
    SWEEP_STATUS_READS_ACTIVITY,
)
from momoflow.ids import status_reader_workflow_id, task_queue_prefix
from momoflow.models import ProviderName, SharedLookup
from momoflow.providers.base import PaymentProvider, SharedStatusReader
from momoflow.status_reads import (
    SWEEP_HEARTBEAT_EVERY_S,
    ReadAnswer,
    ReadBudget,
    ReaderInput,
    ReadRequest,
    SweepRequest,
    SweepResult,
)

#: Answers signalled at once after a list read.
ANSWER_CONCURRENCY = 20


class StatusReadActivities:
    """Temporal-side and provider-side work of :class:`workflows.status_reads.StatusReaderWorkflow`.

    **Parameters:**

    * **client** - the worker's Temporal client (encrypting data converter).
    * **providers** - the worker's provider adapters.
    * **budget_for** - the worker's settings: each provider's :class:`ReadBudget`.
    """

    def __init__(
        self,
        client: Client,
        providers: Mapping[ProviderName, PaymentProvider],
        budget_for: Callable[[ProviderName], ReadBudget],
    ) -> None:
        self._client = client
        self._providers = dict(providers)
        self._budget_for = budget_for

    @activity.defn(name=REQUEST_STATUS_READ_ACTIVITY)
    async def request_status_read(self, request: ReadRequest) -> str:
        """Hand ``request`` to its provider's reader (signal-with-start: a new reader
        starts when none runs). Returns the reader's workflow id."""
        provider = request.lookup.lookup.provider
        # This activity runs on the workflows task queue of its deployment.
        queue = activity.info().task_queue
        reader_id = status_reader_workflow_id(provider, task_queue_prefix(queue))
        await self._client.start_workflow(
            STATUS_READER_WORKFLOW,
            ReaderInput(provider=provider),
            id=reader_id,
            task_queue=queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            start_signal=READ_SIGNAL,
            start_signal_args=[request],
        )
        return reader_id

    @activity.defn(name=SWEEP_STATUS_READS_ACTIVITY)
    async def sweep_status_reads(self, request: SweepRequest) -> SweepResult:
        """One list read for every request, then each transaction's answer. A provider
        error ends the read early (what was found is still answered); the transactions
        it did not reach hear "not visible" and ask again at their next poll."""
        adapter = self._providers.get(request.provider)
        if not isinstance(adapter, SharedStatusReader):
            raise ApplicationError(
                f"{request.provider.value} is not enabled on this worker, or has no "
                "batched status reads",
                type=SHARED_READS_UNAVAILABLE,
                non_retryable=True,
            )
        budget = self._budget_for(request.provider)
        lookups = [
            SharedLookup(key=r.workflow_id, direction=r.lookup.direction, lookup=r.lookup.lookup)
            for r in request.requests
        ]
        telemetry.annotate(
            provider=request.provider.value, operation="read_statuses", lookups=len(lookups)
        )
        async with heartbeating(SWEEP_HEARTBEAT_EVERY_S):
            outcome = await adapter.read_statuses(lookups)
        read_at = datetime.now(UTC)
        not_found = (
            f"not visible in the list yet (read stopped early: {outcome.error})"
            if outcome.error
            else "not visible in the list yet"
        )
        gate = asyncio.Semaphore(ANSWER_CONCURRENCY)

        async def answer(r: ReadRequest) -> bool:
            transaction = outcome.found.get(r.workflow_id)
            reply = ReadAnswer(
                request_id=r.request_id,
                transaction=transaction,
                detail="listed" if transaction else not_found,
                read_at=read_at,
            )
            async with gate:
                try:
                    await self._client.get_workflow_handle(r.workflow_id).signal(
                        ANSWER_SIGNAL, reply
                    )
                except RPCError as exc:
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        raise
                    return False  # it has ended meanwhile: nothing to tell
            return True

        async with heartbeating(SWEEP_HEARTBEAT_EVERY_S):
            told = await asyncio.gather(*(answer(r) for r in request.requests))
        activity.logger.info(
            "%s list read: %d request(s) to the provider, %d of %d found",
            request.provider.value,
            outcome.requests,
            len(outcome.found),
            len(lookups),
        )
        return SweepResult(
            requests_spent=outcome.requests,
            budget_per_hour=budget.per_hour,
            min_interval_s=budget.min_interval_s,
            found=len(outcome.found),
            missing=len(lookups) - len(outcome.found),
            unanswered=told.count(False),
            error=outcome.error,
        )

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class."""
        return [self.request_status_read, self.sweep_status_reads]
