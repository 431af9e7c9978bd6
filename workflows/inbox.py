"""WebhookInboxWorkflow: a verified webhook is never lost because its transaction cannot be
found yet.

The gateway starts (or signals) one inbox per provider and routing key when it cannot hand
a verified event to its transaction at once (``momoflow.inbox``). The inbox:

* keeps each event once (signal ``webhook``; a delivery seen before counts as a duplicate),
  at most :data:`MAX_INBOX_EVENTS` per inbox: only verified webhooks get here, so only the
  provider (or whoever holds its secret) can fill one, and it cannot fill it without bound;
* looks the transaction up and signals it ``provider_event`` with every kept event (the
  ``deliver_inbox_events`` activity), first at once, then after 1 s, 2 s, 5 s, ... up to
  every :data:`BACKOFF_S`\\ [-1] seconds. Transactions drop deliveries they have seen, so a
  repeated signal changes nothing;
* completes once every event is delivered, or when the transaction has already finished (a
  final state absorbs every later event);
* gives up at the horizon (``InboxInput.horizon_s``, from ``MOMOFLOW_WEBHOOK_INBOX_HORIZON_S``:
  7 days, longer than any create deadline): one last attempt, then an error line in the
  worker's log and a *failed* workflow (``WebhookInboxGaveUp``) that names the route and
  every undelivered event, for an operator to see (``docs/operations.md``);
* continues as new past ``max_history_events`` (or when Temporal suggests it), carrying its
  events, the ids it has seen, its counters and the time its horizon started.

Query ``state`` (:class:`~momoflow.inbox.InboxState`) shows what is pending and the last
attempt's outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from momoflow.contract import (
        DELIVER_INBOX_EVENTS_ACTIVITY,
        INBOX_SIGNAL,
        STATE_QUERY,
        WEBHOOK_INBOX_GAVE_UP,
        WEBHOOK_INBOX_WORKFLOW,
    )
    from momoflow.inbox import (
        DeliveryAttempt,
        InboxCarry,
        InboxDelivery,
        InboxInput,
        InboxOutcome,
        InboxResult,
        InboxRoute,
        InboxState,
        PendingEvent,
    )
    from momoflow.models import ProviderEvent
    from workflows.common import failure_from, history_is_long

#: Seconds between delivery attempts; the last value repeats.
BACKOFF_S = (1, 2, 5, 10, 30, 60, 120, 300)
#: Events one inbox keeps (duplicates do not count); later ones are dropped and counted.
MAX_INBOX_EVENTS = 50
#: Error type of an inbox that gave up at its horizon.

#: One delivery attempt: a visibility query and a few signals to Temporal.
DELIVERY_CALL_TIMEOUT = timedelta(seconds=30)
DELIVERY_DEADLINE = timedelta(minutes=2)
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)


@workflow.defn(name=WEBHOOK_INBOX_WORKFLOW)
class WebhookInboxWorkflow:
    """Verified webhooks waiting for their transaction (see the module docstring)."""

    def __init__(self) -> None:
        self._input: InboxInput | None = None
        self._pending: list[ProviderEvent] = []
        self._seen: list[str] = []
        self._delivered: list[str] = []
        self._duplicates = 0
        self._dropped = 0
        self._attempts = 0
        self._started_at: datetime | None = None
        self._last_outcome = "not tried yet"

    # ------------------------------------------------------------------ messages

    @workflow.signal(name=INBOX_SIGNAL)
    def webhook(self, event: ProviderEvent) -> None:
        """One more verified event for this route: kept once, within the cap."""
        self._keep(event)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> InboxState:
        """What the inbox holds and how its last attempt went."""
        if self._input is None:
            raise RuntimeError("the inbox has not started yet")
        inp = self._input
        gives_up_at = (
            self._started_at + timedelta(seconds=inp.horizon_s) if self._started_at else None
        )
        return InboxState(
            route=inp.route,
            started_at=self._started_at,
            gives_up_at=gives_up_at,
            pending=[
                PendingEvent(
                    event_id=e.event_id,
                    event_type=e.event_type,
                    status=e.status,
                    received_at=e.received_at,
                )
                for e in self._pending
            ],
            delivered=list(self._delivered),
            attempts=self._attempts,
            duplicates=self._duplicates,
            dropped=self._dropped,
            last_outcome=self._last_outcome,
        )

    # ------------------------------------------------------------------ main line

    @workflow.run
    async def run(self, input: InboxInput) -> InboxResult:
        """Deliver every kept event to its transaction, or give up at the horizon."""
        self._input = input
        self._restore(input.carry)
        started_at = self._started_at = input.carry.started_at if input.carry else workflow.now()
        deadline = started_at + timedelta(seconds=input.horizon_s)
        # Started with its first event (signal-with-start): nothing to wait for, normally.
        await workflow.wait_condition(lambda: bool(self._pending))
        while True:
            attempt = await self._attempt()
            if attempt is not None and attempt.workflow_id is not None:
                if attempt.finished:
                    return self._end(InboxOutcome.FINISHED, attempt.workflow_id)
                if not self._pending:
                    return self._end(InboxOutcome.DELIVERED, attempt.workflow_id)
                continue  # more events arrived meanwhile: the transaction is there
            now = workflow.now()
            if now >= deadline:
                self._give_up(input.route, input.horizon_s)
            if history_is_long(input.max_history_events):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(input.model_copy(update={"carry": self._carry()}))
            step = BACKOFF_S[min(self._attempts - 1, len(BACKOFF_S) - 1)]
            wait = min(timedelta(seconds=step), deadline - now)
            await workflow.sleep(wait, summary=f"next look-up of the transaction in {wait}")

    # ------------------------------------------------------------------ steps

    async def _attempt(self) -> DeliveryAttempt | None:
        """One look-up and delivery; None when the activity failed (tried again later)."""
        inp = self._run_input
        self._attempts += 1
        events = list(self._pending)
        try:
            attempt: DeliveryAttempt = await workflow.execute_activity(
                DELIVER_INBOX_EVENTS_ACTIVITY,
                InboxDelivery(route=inp.route, events=events),
                result_type=DeliveryAttempt,
                start_to_close_timeout=DELIVERY_CALL_TIMEOUT,
                schedule_to_close_timeout=DELIVERY_DEADLINE,
                retry_policy=DELIVERY_RETRY,
                summary=f"deliver {len(events)} event(s) to {inp.route.describe()}",
            )
        except ActivityError as err:
            self._last_outcome = (
                f"attempt {self._attempts} failed: "
                f"{failure_from(err, default_code='delivery_failed').message}"
            )
            return None
        delivered = set(attempt.delivered)
        self._delivered += [e.event_id for e in events if e.event_id in delivered]
        self._pending = [e for e in self._pending if e.event_id not in delivered]
        if attempt.workflow_id is None:
            self._last_outcome = f"attempt {self._attempts}: no workflow for it yet"
        elif attempt.finished:
            self._last_outcome = f"{attempt.workflow_id} has finished: nothing more to deliver"
        else:
            self._last_outcome = f"attempt {self._attempts}: delivered to {attempt.workflow_id}"
        return attempt

    def _end(self, outcome: InboxOutcome, workflow_id: str) -> InboxResult:
        workflow.logger.info(
            "webhook inbox for %s: %s (%s, %d event(s), %d attempt(s))",
            self._run_input.route.describe(),
            outcome.value,
            workflow_id,
            len(self._delivered),
            self._attempts,
        )
        return InboxResult(
            route=self._run_input.route,
            outcome=outcome,
            workflow_id=workflow_id,
            delivered=list(self._delivered),
            attempts=self._attempts,
            duplicates=self._duplicates,
            dropped=self._dropped,
        )

    def _give_up(self, route: InboxRoute, horizon_s: int) -> None:
        events = ", ".join(
            f"{e.event_id} ({e.event_type}, {e.status.value})" for e in self._pending
        )
        message = (
            f"webhook inbox gave up after {timedelta(seconds=horizon_s)} and "
            f"{self._attempts} attempt(s): no workflow for {route.describe()}; "
            f"{len(self._pending)} verified event(s) not delivered: {events}"
            + (f"; {self._dropped} more dropped over the cap" if self._dropped else "")
            + f" (last: {self._last_outcome})"
        )
        workflow.logger.error("%s", message)
        raise ApplicationError(
            message,
            self.state().model_dump(mode="json"),
            type=WEBHOOK_INBOX_GAVE_UP,
            non_retryable=True,
        )

    # ------------------------------------------------------------------ bookkeeping

    def _keep(self, event: ProviderEvent) -> None:
        if event.event_id in self._seen:
            self._duplicates += 1
            return
        if len(self._seen) >= MAX_INBOX_EVENTS:
            self._dropped += 1
            workflow.logger.warning(
                "webhook inbox is full (%d events): dropped %s %s",
                MAX_INBOX_EVENTS,
                event.event_type,
                event.event_id,
            )
            return
        self._seen.append(event.event_id)
        self._pending.append(event)

    def _restore(self, carry: InboxCarry | None) -> None:
        """Take over what the previous run carried; signals that reached this run before
        its first step are kept after the carried events."""
        if carry is None:
            return
        arrived = self._pending
        self._seen = list(carry.seen_event_ids)
        self._pending = list(carry.events)
        self._attempts = carry.attempts
        self._duplicates += carry.duplicates
        self._dropped += carry.dropped
        self._delivered = list(carry.delivered)
        self._last_outcome = carry.last_outcome
        for event in arrived:
            self._keep(event)

    def _carry(self) -> InboxCarry:
        assert self._started_at is not None
        return InboxCarry(
            started_at=self._started_at,
            events=list(self._pending),
            seen_event_ids=list(self._seen),
            attempts=self._attempts,
            duplicates=self._duplicates,
            dropped=self._dropped,
            delivered=list(self._delivered),
            last_outcome=self._last_outcome,
        )

    @property
    def _run_input(self) -> InboxInput:
        assert self._input is not None
        return self._input
