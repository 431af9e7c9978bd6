"""What payout, payin and refund workflows share: the live state's bookkeeping, the inbox
of provider events and the rules that vet them, the waits, and the operator's tools.

Subclasses set ``_state`` and ``_provider`` at the start of ``run`` and implement
``_apply_event``; their own signal and query handlers stay on the concrete classes. Two
handlers live here because they mean the same for every transaction:

* signal ``recheck`` (:class:`~momoflow.models.RecheckRequest`): a ``reconciling``
  transaction reads its status now instead of at the next hourly read (the reconciliation
  sweep sends it). Ignored in every other state.
* update ``resolve`` (:class:`~momoflow.models.ManualResolution`): an operator closes a
  ``reconciling`` transaction as paid or failed, with a reason. The validator refuses it in
  any other state and without a reason or an operator; the arguments stay in the history,
  the timeline says "resolved by <operator>: <reason>", and the merchant is notified as for
  any final state.

Neither changes what existing histories replay to: both only set flags that no recorded
history can set, and the waits they wake are otherwise unchanged, so no ``patched`` marker
is needed.

Two money rules live here too, each behind its ``patched`` marker:

* **The amount processed is the amount recorded** (``amount-mismatch-reconciles``): a
  success, read or signed, for another amount or currency than the one asked is never
  ``succeeded``. The transaction goes to ``reconciling`` with ``failure.code =
  amount_mismatch``, ``provider_amount`` holds what the provider says it processed, and
  only an operator closes it. A failure for another amount stays a failure: money moves
  only on success.
* **A refusal after an unknown attempt is no proof** (``create-refusal-after-unknown``):
  when the create call is refused after an earlier attempt whose outcome is unknown, the
  provider's record is read. Only that read can make the transaction ``failed``; without
  it, the transaction is ``reconciling``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from momoflow import search_attributes as sa
    from momoflow import telemetry
    from momoflow.contract import (
        ANSWER_SIGNAL,
        CLAIM_TRANSACTION_ACTIVITY,
        CONFLICT_ERROR_TYPES,
        DELIVER_NOTIFICATION_ACTIVITY,
        RECHECK_SIGNAL,
        RECORD_TRANSACTION_ACTIVITY,
        REQUEST_STATUS_READ_ACTIVITY,
        RESOLUTION_REFUSED,
        RESOLVE_UPDATE,
    )
    from momoflow.models import (
        DeliveryReport,
        DeliveryStatus,
        Direction,
        Failure,
        ManualResolution,
        MerchantNotification,
        NotificationDelivery,
        PaymentStatus,
        ProviderEvent,
        ProviderName,
        ProviderTransaction,
        RecheckRequest,
        Resolution,
        ResolutionOutcome,
        SharedLookup,
        StatusLookup,
        TimelineEntry,
        TransactionState,
        TransactionStatus,
    )
    from momoflow.money import Currency
    from momoflow.providers.catalog import SHARED_READ_PROVIDERS
    from momoflow.records.writes import HistoryEntry, Kind, RecordClaim, RecordWrite
    from momoflow.status_reads import ReadAnswer, ReadRequest
    from workflows.common import (
        PROVIDER_RETRY,
        application_error,
        failure_from,
        notification_queue,
        provider_queue,
    )

#: Merchant notifications: from 5 s up to 1 h between attempts, until the horizon.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(hours=1),
)

#: Record writes: from 1 s up to 30 s between attempts, for as long as PostgreSQL is down.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
#: One record write (a few statements in one database transaction).
RECORD_WRITE_TIMEOUT = timedelta(seconds=30)
#: Timeline entries that may wait for the next status change before they are written.
MAX_UNRECORDED_ENTRIES = 20
#: Statuses whose arrival is written to the record store at once (the start path wrote
#: ``created``; the steps before the provider's answer ride along with the next write).
_UNRECORDED_STATUSES = frozenset(
    {TransactionStatus.CREATED, TransactionStatus.QUOTING, TransactionStatus.SUBMITTING}
)

#: How long one status read may keep retrying before the workflow moves on.
STATUS_READ_DEADLINE = timedelta(minutes=2)

#: Timeline entries kept in the query result (the history keeps everything).
MAX_TIMELINE = 50

#: Patch: publish the provider's transaction id as the ``ProviderTransactionId`` search
#: attribute, so that webhooks without our reference (MOBILE-PAY) find their workflow.
PATCH_PROVIDER_TRANSACTION_SA = "provider-transaction-id-search-attribute"

#: Patch: a success for another amount or currency than asked is ``reconciling``
#: (``amount_mismatch``), whether a status read or a verified webhook reports it.
PATCH_AMOUNT_MISMATCH = "amount-mismatch-reconciles"

#: Patch: a create call refused after an attempt whose outcome is unknown reads the
#: provider's record; only that read can make the transaction ``failed``.
PATCH_REFUSAL_AFTER_UNKNOWN = "create-refusal-after-unknown"

#: Patch: the status reads of a provider whose status read is a list read (MOBILE-PAY) go
#: through its reader, which walks the list once for every pending transaction within a
#: request budget (``momoflow.status_reads``), instead of one walk per read.
PATCH_SHARED_STATUS_READS = "shared-status-reads"

#: Patch: a status read asked by a webhook that was taken before a wait (it arrived with
#: the create call's answer, or during a read) is made before that wait. Without it, the
#: read waited for the next event or the next scheduled poll.
PATCH_READ_ASKED_BEFORE_A_WAIT = "read-asked-before-a-wait"

#: Patch: write the transaction's record (state, timeline, journal) to the record store at
#: each status change and before the workflow ends (``momoflow.records``).
PATCH_RECORD_STORE = "record-store"

#: How long a shared status read waits for the reader's answer. The reader paces its walks
#: of the list by the request budget (at the Free plan's share, up to about 13 minutes).
SHARED_READ_WAIT = timedelta(minutes=20)
#: Transactions whose reads may be shared (a refund reads its own way).
_SHARED_READ_KINDS = frozenset(d.value for d in Direction)
#: Handing one request to the reader (a signal-with-start to Temporal).
SHARED_READ_REQUEST_TIMEOUT = timedelta(seconds=30)

#: What the read asked by a webhook is called (timeline notes, activity summaries).
UNVERIFIED_READ = "read after an unverified webhook"
CONFIRM_READ = "read to confirm a signed webhook"

#: ``failure.code`` of a transaction whose provider processed another amount than asked.
AMOUNT_MISMATCH_CODE = "amount_mismatch"

#: Longest reason and operator name a manual resolution accepts.
MAX_RESOLUTION_REASON = 500
MAX_OPERATOR_NAME = 100

#: ``failure.code`` of a transaction an operator marked failed.
OPERATOR_FAILED_CODE = "operator_marked_failed"


def _refused_after_unknown(err: ActivityError) -> bool:
    """True for a final refusal (not a conflict) that came after an earlier attempt of the
    same call: every earlier attempt failed in a way that was retried, so its outcome is
    unknown. The create activities put their attempt in the error's details."""
    app = application_error(err)
    if app is None or not app.non_retryable or app.type in CONFLICT_ERROR_TYPES:
        return False
    details = app.details[0] if app.details else None
    attempt = details.get("attempt") if isinstance(details, dict) else None
    return isinstance(attempt, int) and attempt > 1


def _refused(message: str) -> ApplicationError:
    """A refused ``resolve`` update: the caller sees ``message`` and nothing changes."""
    return ApplicationError(message, type=RESOLUTION_REFUSED, non_retryable=True)


class TransactionWorkflowBase(ABC):
    """Shared machinery of :class:`PayoutWorkflow` and :class:`PayinWorkflow`."""

    #: "payout" or "payin", for logs.
    kind = "transaction"

    def __init__(self) -> None:
        self._deliveries: list[asyncio.Task[None]] = []
        self._state_value: TransactionState | None = None
        self._provider_value: ProviderName | None = None
        self._inbox: list[ProviderEvent] = []
        self._seen_event_ids: set[str] = set()
        #: Set by an unverified webhook (or a signed success to confirm): read the status now
        #: instead of trusting it; ``_poll_reason`` names that read.
        self._poll_requested = False
        self._poll_reason = UNVERIFIED_READ
        #: A signed success webhook arrived that no status read has confirmed (yet).
        self._success_claimed = False
        #: True while ``_reconcile_loop`` runs: only then does ``recheck`` mean anything.
        self._in_reconcile_loop = False
        #: Set by the ``recheck`` signal; taken by ``_reconcile_loop``.
        self._recheck_requested = False
        self._recheck_by = ""
        #: Whether the last read before a deadline got the provider's answer.
        self._final_read_ok = False
        #: Answers of the provider's reader not applied yet, and the last request's id.
        self._read_answers: list[ReadAnswer] = []
        self._read_requests = 0
        #: Record store writes (``PATCH_RECORD_STORE``): versions asked and written, the
        #: timeline entries not written yet, and the number of entries ever made.
        self._recording = False
        self._record_wanted = 0
        self._record_written = 0
        self._record_closing = False
        self._unrecorded: list[HistoryEntry] = []
        self._history_count = 0
        self._last_recorded: dict[str, object] | None = None
        self._recorder_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ operators

    @workflow.signal(name=RECHECK_SIGNAL)
    def recheck(self, request: RecheckRequest) -> None:
        """Read the status now if the transaction is ``reconciling`` (else ignored)."""
        if self._in_reconcile_loop and not self._status.is_final:
            self._recheck_requested = True
            self._recheck_by = request.requested_by

    @workflow.signal(name=ANSWER_SIGNAL)
    def status_read(self, answer: ReadAnswer) -> None:
        """The provider's reader answers a shared status read (applied by the main line)."""
        self._read_answers.append(answer)

    @workflow.update(name=RESOLVE_UPDATE)
    def resolve(self, resolution: ManualResolution) -> TransactionState:
        """Close a ``reconciling`` transaction as paid or failed (see the module docstring);
        returns the final state."""
        state = self._base_state
        reason, operator = resolution.reason.strip(), resolution.operator.strip()
        state.resolution = Resolution(
            outcome=resolution.outcome,
            reason=reason,
            operator=operator,
            resolved_at=workflow.now(),
            previous_failure=state.failure,
        )
        note = f"resolved by {operator}: {reason}"
        if resolution.outcome is ResolutionOutcome.PAID:
            self._finish(TransactionStatus.SUCCEEDED, None, note=note)
        else:
            self._finish(
                TransactionStatus.FAILED,
                Failure(code=OPERATOR_FAILED_CODE, message=f"marked failed by hand: {reason}"),
                note=note,
            )
        return state

    @resolve.validator
    def _check_resolution(self, resolution: ManualResolution) -> None:
        if self._state_value is None:
            raise _refused("the transaction has not started yet: nothing to resolve")
        state = self._state_value
        if state.status is not TransactionStatus.RECONCILING:
            raise _refused(
                f"{state.workflow_id} is {state.status.value}, not reconciling: only a "
                "reconciling transaction can be resolved by hand"
            )
        reason, operator = resolution.reason.strip(), resolution.operator.strip()
        if not reason:
            raise _refused("a reason is required: say what proves the outcome")
        if not operator:
            raise _refused("an operator name is required: say who resolves it")
        if len(reason) > MAX_RESOLUTION_REASON:
            raise _refused(f"the reason is longer than {MAX_RESOLUTION_REASON} characters")
        if len(operator) > MAX_OPERATOR_NAME:
            raise _refused(f"the operator name is longer than {MAX_OPERATOR_NAME} characters")

    # ------------------------------------------------------------------ inbox

    def _receive(self, event: ProviderEvent) -> None:
        """Signal body: keep the event unless this delivery was already seen."""
        if event.event_id in self._seen_event_ids:
            return
        self._seen_event_ids.add(event.event_id)
        self._inbox.append(event)

    def _drain_inbox(self) -> None:
        while self._inbox:
            self._apply_event(self._inbox.pop(0))
        if self._read_answers:
            self._apply_read_answers("list read", request_id=None)

    @abstractmethod
    def _apply_event(self, event: ProviderEvent) -> None:
        """What a vetted provider event means for this kind of transaction."""

    def _confirms_finals(self) -> bool:
        """True when a signed final webhook must be confirmed by a status read before it
        counts (the transaction's input says; False for refunds, which have no read)."""
        return False

    def _vet_event(
        self,
        event: ProviderEvent,
        *,
        expected_amount: int,
        allow_final: bool = False,
        amount_rule: bool = False,
    ) -> bool:
        """True when ``event`` may change this transaction's state (see the rules).

        ``allow_final`` lets a final transaction hear the event (a payin's late-reversal
        window); everything else still applies. With ``amount_rule`` a final event for
        another amount passes, and the caller's :meth:`_amount_rule` decides; without it
        (or in histories from before that rule) such an event is not trusted.
        """
        state = self._base_state
        state.webhooks_received += 1
        if state.status.is_final and not allow_final:
            self._note(f"ignored {event.event_type}: already {state.status.value}")
            return False
        if event.provider is not self._provider_value:
            self._note(f"ignored an event from {event.provider.value}")
            return False
        if event.external_reference not in (None, state.workflow_id):
            self._note(f"ignored {event.event_type} for another reference")
            return False
        if not event.verified:
            # Unsigned (MOBILE-PAY): only a hint. The status read right after decides.
            self._poll_requested = True
            self._poll_reason = UNVERIFIED_READ
            self._note(f"unverified {event.event_type}: reading the status to confirm")
            return False
        if event.status.is_final and self._confirms_finals():
            # A signature proves who holds the secret, not that money moved (or did not):
            # the provider's authenticated API decides. Nothing of the event is taken, not
            # even a transaction id, which could name someone else's transaction.
            self._poll_requested = True
            self._poll_reason = CONFIRM_READ
            self._success_claimed |= event.status is PaymentStatus.SUCCEEDED
            self._note(
                f"signed {event.event_type}: {event.status.value} counts once a status read says so"
            )
            return False
        if state.provider_transaction_id is None and event.provider_transaction_id:
            # The create call's answer was lost but the provider tells us what it created.
            self._learn_transaction_id(event.provider_transaction_id)
        elif event.provider_transaction_id not in (None, state.provider_transaction_id):
            self._note(
                f"ignored {event.event_type} for transaction {event.provider_transaction_id}"
            )
            return False
        if (
            event.status.is_final
            and self._amount_differs(event.amount, event.currency, expected_amount)
            and not (amount_rule and workflow.patched(PATCH_AMOUNT_MISMATCH))
        ):
            self._note(
                f"{event.event_type} reports {event.amount} {event.currency}, not "
                f"{expected_amount} {state.currency.value}: the status read decides"
            )
            return False
        if event.amount is not None and not self._amount_held():
            # Held for an amount mismatch, the amount that put it there stays on record.
            state.provider_amount = event.amount
        state.provider_status = event.raw_status
        if event.provider_reference:
            state.provider_reference = event.provider_reference
        if event.fees is not None:
            state.fees = event.fees
        return True

    def _amount_differs(
        self, amount: int | None, currency: Currency | None, expected_amount: int
    ) -> bool:
        """True when the provider names an amount or currency other than the ones asked."""
        return (amount is not None and amount != expected_amount) or (
            currency is not None and currency is not self._base_state.currency
        )

    def _amount_mismatch(self, amount: int | None, currency: Currency | None) -> Failure:
        state = self._base_state
        said = (
            f"{amount if amount is not None else state.amount} {(currency or state.currency).value}"
        )
        return Failure(
            code=AMOUNT_MISMATCH_CODE,
            message=(
                f"the provider reports a success for {said}, but {state.amount} "
                f"{state.currency.value} was asked: never reported as succeeded; an operator "
                "checks with the provider and resolves it"
            ),
        )

    def _amount_held(self) -> bool:
        """True while the transaction is ``reconciling`` for an amount mismatch: only an
        operator closes it, whatever the provider says next."""
        state = self._base_state
        return (
            state.status is TransactionStatus.RECONCILING
            and state.failure is not None
            and state.failure.code == AMOUNT_MISMATCH_CODE
        )

    def _amount_rule(self, said: ProviderEvent | ProviderTransaction, *, source: str) -> bool:
        """Compare what the provider says it processed with what was asked, at every status
        read and webhook. True when the answer was dealt with here (the caller settles
        nothing): a success for another amount goes to ``reconciling`` (``amount_mismatch``),
        and a transaction reconciling for that reason only notes what it hears."""
        status, amount, currency = said.status, said.amount, said.currency
        expected_amount = self._base_state.amount
        if self._amount_held():
            if status.is_final:
                self._note(f"{source}: {status.value} ({amount}); an amount mismatch stays open")
            return True
        if not status.is_final or not self._amount_differs(amount, currency, expected_amount):
            return False
        if status is not PaymentStatus.SUCCEEDED:
            # Money moves only on success: a failure for another amount is still a failure.
            self._note(
                f"{source}: {status.value} for {amount} {currency or ''}, not {expected_amount}"
            )
            return False
        if not workflow.patched(PATCH_AMOUNT_MISMATCH):
            return False
        self._finish(TransactionStatus.RECONCILING, self._amount_mismatch(amount, currency))
        return True

    @property
    def _settled_or_reconciling(self) -> bool:
        return self._status.is_final or self._status is TransactionStatus.RECONCILING

    # ------------------------------------------------------------------ waits

    @abstractmethod
    async def _poll(self, why: str) -> bool:
        """Read this transaction's status (see :meth:`_read_status`); True when the
        provider answered."""

    @abstractmethod
    def _apply_transaction(self, transaction: ProviderTransaction, *, source: str) -> None:
        """What a status read means for this kind of transaction."""

    async def _read_status(
        self,
        why: str,
        activity: Callable[..., Awaitable[ProviderTransaction]],
        *,
        requested_at: datetime,
        status_by_reference: bool,
        call_timeout: timedelta,
    ) -> bool:
        """One status read through ``activity`` (by the provider's id, or by our reference
        where the provider allows it); a failed read changes nothing. True when the provider
        answered."""
        state = self._base_state
        provider = self._provider_value
        assert provider is not None
        if state.provider_transaction_id is None and not status_by_reference:
            return False
        if (
            provider in SHARED_READ_PROVIDERS
            and self.kind in _SHARED_READ_KINDS
            and workflow.patched(PATCH_SHARED_STATUS_READS)
        ):
            return await self._shared_read(why, requested_at=requested_at)
        state.status_polls += 1
        try:
            transaction = await workflow.execute_activity_method(
                activity,
                StatusLookup(
                    provider=provider,
                    provider_transaction_id=state.provider_transaction_id,
                    external_reference=state.workflow_id,
                    since=requested_at,
                ),
                task_queue=provider_queue(provider),
                start_to_close_timeout=call_timeout,
                schedule_to_close_timeout=STATUS_READ_DEADLINE,
                retry_policy=PROVIDER_RETRY,
                summary=f"{why}: status of {state.provider_transaction_id or state.workflow_id}",
            )
        except ActivityError as err:
            # The next poll or a webhook will tell.
            self._note(f"{why} failed: {failure_from(err, default_code='status_unknown').message}")
            return False
        self._apply_transaction(transaction, source=why)
        return True

    async def _shared_read(self, why: str, *, requested_at: datetime) -> bool:
        """A status read answered by the provider's reader (``momoflow.status_reads``):
        hand it the request, wait for its answer, apply it. True when the provider listed
        the transaction; a failed hand-over, "not visible" or no answer in time changes
        nothing (a late answer is applied when it comes)."""
        state = self._base_state
        provider = self._provider_value
        assert provider is not None
        state.status_polls += 1
        self._read_requests += 1
        request_id = self._read_requests
        request = ReadRequest(
            workflow_id=state.workflow_id,
            request_id=request_id,
            lookup=SharedLookup(
                key=state.workflow_id,
                direction=Direction(self.kind),
                lookup=StatusLookup(
                    provider=provider,
                    provider_transaction_id=state.provider_transaction_id,
                    external_reference=state.workflow_id,
                    since=requested_at,
                ),
            ),
        )
        try:
            await workflow.execute_activity(
                REQUEST_STATUS_READ_ACTIVITY,
                request,
                start_to_close_timeout=SHARED_READ_REQUEST_TIMEOUT,
                schedule_to_close_timeout=STATUS_READ_DEADLINE,
                retry_policy=PROVIDER_RETRY,
                summary=f"{why}: ask {provider.value}'s list read",
            )
        except ActivityError as err:
            self._note(f"{why} failed: {failure_from(err, default_code='status_unknown').message}")
            return False
        was_final = self._status.is_final

        def answered() -> bool:
            return any(a.request_id >= request_id for a in self._read_answers) or (
                not was_final and self._status.is_final
            )

        try:
            await workflow.wait_condition(
                answered,
                timeout=SHARED_READ_WAIT,
                timeout_summary=f"{why}: waiting for {provider.value}'s next list read",
            )
        except TimeoutError:
            self._note(f"{why}: no list read answered within {SHARED_READ_WAIT}")
            return False
        return self._apply_read_answers(why, request_id=request_id)

    def _apply_read_answers(self, why: str, *, request_id: int | None) -> bool:
        """Apply every answer received, oldest first; True when the one to ``request_id``
        listed the transaction."""
        answers, self._read_answers = self._read_answers, []
        listed = False
        for answer in answers:
            current = request_id is not None and answer.request_id >= request_id
            if answer.transaction is not None:
                self._apply_transaction(answer.transaction, source=f"{why} (list read)")
                listed = listed or current
            elif current:
                self._note(f"{why}: {answer.detail}")
        return listed

    async def _wait_with_polls(self, deadline: datetime, schedule: list[int]) -> None:
        """Wait for a final answer (webhook or poll, back-off ``schedule``) until
        ``deadline``, then make one last read; the caller decides what "still not final"
        means (reconciling for a payout, expired for a payin). An amount mismatch ends the
        wait at once (``reconciling``)."""
        poll_index = 0
        self._final_read_ok = False
        while not self._settled_or_reconciling:
            self._drain_inbox()
            if self._settled_or_reconciling:
                return
            if self._read_asked_before_a_wait():
                await self._poll(self._poll_reason)
                continue
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                break
            step = schedule[min(poll_index, len(schedule) - 1)]
            wait = min(timedelta(seconds=step), remaining)
            if await self._wait_for_event(wait, f"waiting for webhook, next poll in {wait}"):
                if not self._take_poll_request():
                    continue
                await self._poll(self._poll_reason)
                continue
            poll_index += 1
            await self._poll("poll")
        if self._settled_or_reconciling:
            return
        self._final_read_ok = await self._poll("final read before the deadline")
        self._drain_inbox()

    async def _reconcile_loop(
        self, *, poll_interval_s: int, horizon_s: int, readable_by_reference: bool
    ) -> None:
        """Keep listening (and reading, slowly) until the provider gives a final answer or
        an operator resolves it. A ``recheck`` reads at once, even past the horizon."""
        horizon = workflow.now() + timedelta(seconds=horizon_s)
        self._in_reconcile_loop = True
        try:
            while not self._status.is_final:
                self._drain_inbox()
                if self._status.is_final:
                    return
                if self._read_asked_before_a_wait():
                    await self._poll(self._poll_reason)
                    continue
                readable = (
                    self._base_state.provider_transaction_id is not None or readable_by_reference
                )
                can_poll = readable and workflow.now() < horizon
                interval = timedelta(seconds=poll_interval_s) if can_poll else None
                if await self._wait_for_event(interval, "reconciling: waiting for the provider"):
                    if self._take_recheck():
                        await self._poll(f"recheck asked by {self._recheck_by}")
                        continue
                    if self._take_poll_request():
                        await self._poll(self._poll_reason)
                    continue
                await self._poll("reconciliation read")
        finally:
            self._in_reconcile_loop = False
            self._recheck_requested = False

    def _take_recheck(self) -> bool:
        """True when a recheck was asked and the transaction is still not final (the read
        it makes also answers a pending unverified webhook)."""
        if not self._recheck_requested:
            return False
        self._recheck_requested = False
        self._drain_inbox()
        self._poll_requested = False
        return not self._base_state.status.is_final

    def _read_asked_before_a_wait(self) -> bool:
        """True (once) when an event taken from the inbox before a wait asked for a status
        read: the read is made now rather than after the wait."""
        if not self._poll_requested or self._base_state.status.is_final:
            return False
        if not workflow.patched(PATCH_READ_ASKED_BEFORE_A_WAIT):
            return False
        self._poll_requested = False
        return True

    def _take_poll_request(self) -> bool:
        self._drain_inbox()
        requested, self._poll_requested = self._poll_requested, False
        return requested and not self._base_state.status.is_final

    async def _wait_for_event(self, timeout: timedelta | None, summary: str) -> bool:
        """True when an event arrived before ``timeout`` (None waits for ever), a recheck
        was asked, or an operator's resolution made a non-final transaction final."""
        was_final = self._status.is_final

        def woken() -> bool:
            return (
                bool(self._inbox)
                or bool(self._read_answers)
                or self._recheck_requested
                or (not was_final and self._status.is_final)
            )

        try:
            await workflow.wait_condition(woken, timeout=timeout, timeout_summary=summary)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ state changes

    def _learn_transaction_id(self, transaction_id: str) -> None:
        self._base_state.provider_transaction_id = transaction_id
        if workflow.patched(PATCH_PROVIDER_TRANSACTION_SA):
            workflow.upsert_search_attributes([sa.PROVIDER_TRANSACTION.value_set(transaction_id)])

    async def _create_refused(self, err: ActivityError) -> None:
        """The create call ended without an answer that created something: like
        :meth:`_create_call_failed`, except that a refusal after an attempt whose outcome
        was unknown proves nothing (that attempt may have created the transaction). Then
        only a successful read of the provider's record can end it ``failed``; otherwise
        it is ``reconciling``."""
        if not (_refused_after_unknown(err) and workflow.patched(PATCH_REFUSAL_AFTER_UNKNOWN)):
            self._create_call_failed(err)
            return
        refusal = failure_from(err, default_code="provider_declined")
        self._note(
            f"the create call was refused ({refusal.code}) after an attempt whose outcome is "
            "unknown: reading the provider's record"
        )
        read = await self._poll("read after a refusal that followed an unknown attempt")
        self._drain_inbox()
        if self._settled_or_reconciling:
            return
        found = self._base_state.provider_status
        self._finish(
            TransactionStatus.RECONCILING,
            Failure(
                code="create_outcome_unknown",
                message=(
                    f"the create call was refused ({refusal.message}) after an attempt whose "
                    "outcome is unknown, and "
                    + (
                        f"the provider holds it as {found}: reading it until it is final"
                        if read and found
                        else "the provider's record could not be read: money may have moved"
                    )
                ),
                provider_code=refusal.provider_code,
            ),
        )

    def _create_call_failed(self, err: ActivityError, *, call: str = "create") -> None:
        """A money-moving call that did not return (design rule 2): ``failed`` only when the
        provider said a final no; a conflict, or anything else once its deadline passed
        (timeouts, 5xx, unreadable answers), is ``reconciling``: money may have moved."""
        app = application_error(err)
        if app is not None and app.non_retryable and app.type not in CONFLICT_ERROR_TYPES:
            self._finish(
                TransactionStatus.FAILED, failure_from(err, default_code="provider_declined")
            )
            return
        failure = failure_from(err, default_code=f"{call}_outcome_unknown")
        conflict = app is not None and app.non_retryable
        self._finish(
            TransactionStatus.RECONCILING,
            Failure(
                code=failure.code if conflict else f"{call}_outcome_unknown",
                message=f"no definite answer to the {call} call: {failure.message}",
                provider_code=failure.provider_code,
            ),
        )

    def _finish(
        self, status: TransactionStatus, failure: Failure | None, *, note: str = ""
    ) -> None:
        state = self._base_state
        state.failure = failure
        if status.is_final:
            state.completed_at = workflow.now()
        self._record(status, note or (failure.message if failure else status.value))
        workflow.logger.info(
            "%s %s is %s%s",
            self.kind,
            state.workflow_id,
            status.value,
            f" ({failure.code})" if failure else "",
        )
        # Workflow meter: nothing is counted while a history replays.
        telemetry.workflow_metrics().transaction_finished(
            kind=self.kind,
            provider=state.provider.value,
            status=status.value,
            amount=state.amount,
            currency=state.currency.value,
        )

    def _record(self, status: TransactionStatus, note: str) -> None:
        state = self._base_state
        changed = status is not state.status
        state.status = status
        state.updated_at = workflow.now()
        if changed and status is TransactionStatus.RECONCILING:
            state.reconciling_since = state.updated_at
        state.timeline.append(TimelineEntry(at=state.updated_at, status=status, note=note))
        del state.timeline[:-MAX_TIMELINE]
        if changed:
            workflow.upsert_search_attributes([sa.STATUS.value_set(status.value)])
        if self._recording:
            self._unrecorded.append(
                HistoryEntry(
                    index=self._history_count, at=state.updated_at, status=status, note=note
                )
            )
            self._history_count += 1
            if (changed and status not in _UNRECORDED_STATUSES) or len(
                self._unrecorded
            ) >= MAX_UNRECORDED_ENTRIES:
                self._record_wanted += 1

    def _note(self, note: str) -> None:
        self._record(self._base_state.status, note)

    # ------------------------------------------------------------------ the record store

    def _start_recording(self) -> None:
        """Write this transaction's record at each status change from now on (call once,
        right after the first state exists). Histories from before the record store replay
        without it."""
        if not workflow.patched(PATCH_RECORD_STORE):
            return
        self._recording = True
        state = self._base_state
        self._unrecorded = [
            HistoryEntry(index=i, at=e.at, status=e.status, note=e.note)
            for i, e in enumerate(state.timeline)
        ]
        self._history_count = len(state.timeline)
        if state.status not in _UNRECORDED_STATUSES:
            self._record_wanted += 1
        self._recorder_task = asyncio.create_task(self._record_loop())

    async def _claim_reference(self) -> str | None:
        """Claim this transaction's reference in the record store before calling the
        provider (for a workflow that no start path claimed: a campaign's line). None when
        the reference is this run's; else why not: another transaction holds it, past or
        present (its workflow may be gone from Temporal), or the store refused the claim.
        Then nothing may be paid, and this run stops writing so that the other's record
        stays as it is."""
        if not self._recording:
            return None
        state = self._base_state
        claim = RecordClaim(
            kind=Kind(self.kind),
            run_id=workflow.info().run_id,
            fingerprint=self._record_fingerprint(),
            campaign=self._record_campaign(),
            state=state.model_dump(mode="json"),
        )
        taken: str | None = None
        try:
            ours: bool = await workflow.execute_activity(
                CLAIM_TRANSACTION_ACTIVITY,
                claim,
                result_type=bool,
                start_to_close_timeout=RECORD_WRITE_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=f"claim {state.reference}",
            )
            if not ours:
                taken = f"reference {state.reference!r} is already recorded for another payout"
        except ActivityError as err:
            message = failure_from(err, default_code="record_refused").message
            workflow.logger.warning("reference claim refused: %s", message)
            taken = f"the record store refused to claim reference {state.reference!r} ({message})"
        if taken is not None:
            self._recording = False
            self._record_closing = True
        else:
            self._last_recorded = claim.state
        return taken

    def _record_fingerprint(self) -> str:
        """What identifies this transaction's request (compared by the start path)."""
        raise NotImplementedError

    def _record_campaign(self) -> str | None:
        """The reference of the campaign that started this transaction, if any."""
        return None

    async def _record_loop(self) -> None:
        """Write the newest state whenever a write was asked, one write at a time (a burst
        of changes becomes one write); returns once closed and everything is written."""
        while True:
            await workflow.wait_condition(
                lambda: self._record_wanted > self._record_written or self._record_closing
            )
            if self._record_wanted <= self._record_written:
                return
            wanted = self._record_wanted
            entries = list(self._unrecorded)
            state = self._base_state.model_dump(mode="json")
            write = RecordWrite(
                kind=Kind(self.kind),
                seq=wanted,
                fingerprint=self._record_fingerprint(),
                campaign=self._record_campaign(),
                state=state,
                entries=entries,
                run_id=workflow.info().run_id,
            )
            try:
                await workflow.execute_activity(
                    RECORD_TRANSACTION_ACTIVITY,
                    write,
                    result_type=bool,
                    start_to_close_timeout=RECORD_WRITE_TIMEOUT,
                    retry_policy=RECORD_RETRY,
                    summary=f"record {self._base_state.status.value}",
                )
            except ActivityError as err:
                # Refused for good (never for an outage: those are retried until it ends).
                # ``momoflow records verify`` repairs the record from this workflow.
                message = failure_from(err, default_code="record_refused").message
                workflow.logger.warning("record write refused: %s", message)
            self._record_written = max(self._record_written, wanted)
            self._last_recorded = state
            del self._unrecorded[: len(entries)]

    async def _records_settled(self) -> None:
        """Write the last state if it changed since the last write, and wait until every
        write is done (the workflow ends only then, so its record is complete)."""
        if not self._recording:
            return
        if self._base_state.model_dump(mode="json") != self._last_recorded or self._unrecorded:
            self._record_wanted += 1
        self._record_closing = True
        await workflow.wait_condition(lambda: self._record_written >= self._record_wanted)

    # ------------------------------------------------------------------ notifications

    def _notify(self, event_type: str, *, url: str | None, horizon_s: int) -> None:
        """Tell the merchant, beside the main line: a merchant endpoint that is down
        delays nothing. The delivery's state shows in the query result."""
        state = self._base_state
        if not url:
            return
        event_id = f"{state.workflow_id}:{event_type}:{len(state.notifications) + 1}"
        delivery = NotificationDelivery(event_id=event_id, event_type=event_type)
        state.notifications.append(delivery)
        notification = MerchantNotification(
            merchant=state.merchant,
            url=url,
            event_id=event_id,
            event_type=event_type,
            data=state.model_dump(mode="json", exclude={"timeline", "notifications"}),
            occurred_at=workflow.now(),
        )
        self._deliveries.append(
            asyncio.create_task(self._deliver(notification, delivery, horizon_s))
        )

    async def _deliver(
        self, notification: MerchantNotification, delivery: NotificationDelivery, horizon_s: int
    ) -> None:
        try:
            report: DeliveryReport = await workflow.execute_activity(
                DELIVER_NOTIFICATION_ACTIVITY,
                notification,
                result_type=DeliveryReport,
                task_queue=notification_queue(),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(seconds=horizon_s),
                retry_policy=NOTIFY_RETRY,
                summary=f"notify the merchant: {notification.event_type}",
            )
        except ActivityError as err:
            delivery.status = DeliveryStatus.GIVEN_UP
            delivery.last_error = failure_from(err, default_code="not_delivered").message
            return
        delivery.status = DeliveryStatus.DELIVERED
        delivery.attempts = report.attempt
        delivery.http_status = report.http_status
        delivery.delivered_at = report.delivered_at

    async def _notifications_settled(self) -> None:
        """Wait until every notification is delivered or given up (the workflow stays
        open until then, so none is lost), then until the record store holds the last
        state."""
        await asyncio.gather(*self._deliveries)
        await self._records_settled()

    @property
    def _base_state(self) -> TransactionState:
        assert self._state_value is not None
        return self._state_value

    @property
    def _status(self) -> TransactionStatus:
        return self._base_state.status
