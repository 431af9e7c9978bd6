"""PayoutWorkflow: pay one recipient exactly once, and always know what happened.

States (``TransactionStatus``)::

    created ─► quoting ─► submitting ─► pending ─► succeeded | failed | cancelled
                  │            │            │
                  │            │            ├─► reconciling (no final answer by the deadline)
                  │            │            └─► reconciling (a success for another amount)
                  │            ├─► failed        (the provider declined: nothing was created)
                  │            └─► reconciling   (the create outcome is unknown, or refused
                  │                               after an unknown attempt and not readable)
                  └─► failed                     (no quote: nothing was sent)

Signals: ``provider_event`` (a verified webhook, normalised by the gateway).
Queries: ``state`` (:class:`~momoflow.models.PayoutState`).

Rules kept here:

* The idempotency key is derived from the workflow id, so every re-send of the create call
  (Temporal retries, a restarted worker) is the same request to the provider.
* A create call whose outcome is unknown is never recorded as failed: it is retried with the
  same key until the submit deadline, then the payout goes to ``reconciling``.
* Webhooks that arrive before the create call returns are kept and applied afterwards.
* A final state absorbs every later event.
* The amount the provider says it processed is compared with the amount asked at every
  status read and webhook: a success for another amount is ``reconciling``
  (``amount_mismatch``), never ``succeeded`` (see :mod:`workflows.base`).
* A refusal of the create call after an attempt whose outcome was unknown is not proof that
  nothing was sent: only a read of the provider's record can make the payout ``failed``.
* Before declaring that the provider never answered, one last status read is made.
* ``reconciling`` is not an end: the workflow keeps listening for webhooks and keeps
  reading the status, slowly, until the provider gives a final answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.providers import InitiatePayoutResult, ProviderActivities
    from momoflow import search_attributes as sa
    from momoflow.campaigns.models import SKIPPED, LineOutcome
    from momoflow.contract import (
        LINE_SETTLED_SIGNAL,
        PAYOUT_WORKFLOW,
        PROVIDER_EVENT_SIGNAL,
        QUOTE_EXPIRED,
        STATE_QUERY,
    )
    from momoflow.ids import campaign_reference, idempotency_key
    from momoflow.masking import mask_phone
    from momoflow.models import (
        FINAL_STATUS_FROM_PROVIDER,
        Failure,
        InitiatePayoutInput,
        PaymentStatus,
        PayoutInput,
        PayoutQuote,
        PayoutQuoteInput,
        PayoutState,
        ProviderEvent,
        ProviderTransaction,
        TransactionStatus,
    )
    from momoflow.money import format_amount
    from workflows.base import CONFIRM_READ, TransactionWorkflowBase
    from workflows.common import (
        PROVIDER_RETRY,
        application_error,
        failure_from,
        provider_queue,
    )

#: ``failure.code`` of a campaign line whose reference another payout holds.
DUPLICATE_REFERENCE = "duplicate_reference"

#: Quote rounds: a quote that expires before the create call is re-asked this many times.
MAX_QUOTE_ROUNDS = 3


@dataclass(frozen=True)
class Requote:
    """The create was refused because the quote expired: nothing was created, quote again."""


@workflow.defn(name=PAYOUT_WORKFLOW)
class PayoutWorkflow(TransactionWorkflowBase):
    """One payout to one mobile wallet (see the module docstring for the states)."""

    kind = "payout"

    def __init__(self) -> None:
        super().__init__()
        self._input: PayoutInput | None = None

    # ------------------------------------------------------------------ messages

    @workflow.signal(name=PROVIDER_EVENT_SIGNAL)
    def provider_event(self, event: ProviderEvent) -> None:
        """A verified webhook about this payout. Duplicates are dropped here."""
        self._receive(event)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> PayoutState:
        """The live state of the payout."""
        if self._state_value is None:
            raise RuntimeError("the payout has not started yet")
        return self._current_state

    # ------------------------------------------------------------------ main line

    @workflow.run
    async def run(self, input: PayoutInput) -> PayoutState:
        """Quote, create, then wait for the final answer (see the module docstring)."""
        self._input = input
        self._provider_value = input.provider
        now = workflow.now()
        self._state_value = PayoutState.initial(workflow.info().workflow_id, input, updated_at=now)
        workflow.upsert_search_attributes(sa.as_updates(sa.payout_attributes(input)))
        self._record(TransactionStatus.CREATED, self._describe())
        self._start_recording()
        if input.campaign_workflow_id is not None:
            taken = await self._claim_reference()
            if taken is not None:
                return await self._skip_taken_reference(taken)

        transaction = await self._quote_and_submit()
        if transaction is not None:
            self._accept(transaction)
            await self._wait_for_final_answer()
        if self._status is TransactionStatus.RECONCILING:
            await self._reconcile_loop(
                poll_interval_s=input.timings.reconcile_poll_interval_s,
                horizon_s=input.timings.reconcile_horizon_s,
                readable_by_reference=input.status_by_reference,
            )
        await self._notifications_settled()
        return self._current_state

    # ------------------------------------------------------------------ steps

    async def _quote_and_submit(self) -> ProviderTransaction | None:
        """Quote then create; None when the payout ended (failed or reconciling)."""
        if not self._run_input.quote_first:
            outcome = await self._submit(None)
            return None if isinstance(outcome, Requote) else outcome
        for _round in range(MAX_QUOTE_ROUNDS):
            quote = await self._quote()
            if quote is None:
                return None
            outcome = await self._submit(quote)
            if not isinstance(outcome, Requote):
                return outcome
            self._note("the quote expired before the payout was created; asking again")
        self._finish(
            TransactionStatus.FAILED,
            Failure(
                code="quote_expired",
                message=f"the provider refused {MAX_QUOTE_ROUNDS} quotes in a row as expired",
            ),
        )
        return None

    async def _quote(self) -> PayoutQuote | None:
        inp, state = self._run_input, self._current_state
        state.quote_attempts += 1
        self._record(TransactionStatus.QUOTING, f"quote {format_amount(inp.amount, inp.currency)}")
        try:
            quote = await workflow.execute_activity_method(
                ProviderActivities.quote_payout,
                PayoutQuoteInput(
                    provider=inp.provider,
                    amount=inp.amount,
                    currency=inp.currency,
                    country=inp.country,
                    operator=inp.operator,
                ),
                task_queue=provider_queue(inp.provider),
                start_to_close_timeout=self._call_timeout,
                schedule_to_close_timeout=timedelta(seconds=inp.timings.quote_timeout_s),
                retry_policy=PROVIDER_RETRY,
                summary=f"quote {format_amount(inp.amount, inp.currency)}",
            )
        except ActivityError as err:
            # Nothing has been sent to move money yet: failing here is always safe.
            self._finish(
                TransactionStatus.FAILED, failure_from(err, default_code="provider_unavailable")
            )
            return None
        state.quote_id = quote.quote_id
        state.fees = quote.fees
        state.net_amount = quote.net_amount
        return quote

    async def _submit(self, quote: PayoutQuote | None) -> ProviderTransaction | Requote | None:
        """The accepted transaction; :class:`Requote` when the provider refused the quote as
        expired (nothing was created); None when the payout ended (failed or reconciling)."""
        inp, state = self._run_input, self._current_state
        fees = f" (fees {format_amount(quote.fees, inp.currency)})" if quote else ""
        self._record(TransactionStatus.SUBMITTING, f"create payout{fees}")
        request = InitiatePayoutInput(
            provider=inp.provider,
            external_reference=state.workflow_id,
            idempotency_key=idempotency_key(state.workflow_id, "initiate_payout"),
            quote_id=quote.quote_id if quote else None,
            amount=inp.amount,
            currency=inp.currency,
            country=inp.country,
            operator=inp.operator,
            recipient_phone=inp.recipient_phone,
            recipient_name=inp.recipient_name,
            description=inp.description,
            callback_url=inp.provider_callback_url,
            requested_at=inp.requested_at,
        )
        try:
            result: InitiatePayoutResult = await workflow.execute_activity_method(
                ProviderActivities.initiate_payout,
                request,
                task_queue=provider_queue(inp.provider),
                start_to_close_timeout=self._call_timeout,
                schedule_to_close_timeout=timedelta(seconds=inp.timings.submit_timeout_s),
                retry_policy=PROVIDER_RETRY,
                summary=f"create payout {state.workflow_id}",
            )
        except ActivityError as err:
            app = application_error(err)
            if app is not None and app.non_retryable and app.type == QUOTE_EXPIRED:
                return Requote()
            await self._create_refused(err)
            return None
        state.submit_attempts = result.attempt
        return result.transaction

    def _accept(self, transaction: ProviderTransaction) -> None:
        state = self._current_state
        self._learn_transaction_id(transaction.provider_transaction_id)
        state.submitted_at = workflow.now()
        if transaction.fees is not None:
            state.fees = transaction.fees
        if transaction.net_amount is not None:
            state.net_amount = transaction.net_amount
        self._record(
            TransactionStatus.PENDING,
            f"accepted by {transaction.provider.value} as {transaction.provider_transaction_id}",
        )
        self._apply_transaction(transaction, source="create")

    async def _wait_for_final_answer(self) -> None:
        """Webhook or poll until final; a last read, then ``reconciling``."""
        timings = self._run_input.timings
        deadline = workflow.now() + timedelta(seconds=timings.settle_timeout_s)
        await self._wait_with_polls(deadline, timings.poll_schedule_s)
        if not self._settled_or_reconciling:
            self._finish(
                TransactionStatus.RECONCILING,
                Failure(
                    code="settlement_unknown",
                    message=(
                        f"no final status from {self._run_input.provider.value} within "
                        f"{timedelta(seconds=timings.settle_timeout_s)} "
                        f"(last status {self._current_state.provider_status or 'unknown'})"
                    ),
                ),
            )

    async def _poll(self, why: str) -> bool:
        return await self._read_status(
            why,
            ProviderActivities.fetch_payout_status,
            requested_at=self._run_input.requested_at,
            status_by_reference=self._run_input.status_by_reference,
            call_timeout=self._call_timeout,
        )

    # ------------------------------------------------------------------ state changes

    def _confirms_finals(self) -> bool:
        return self._run_input.confirm_final_webhooks

    def _apply_event(self, event: ProviderEvent) -> None:
        if not self._vet_event(event, expected_amount=self._run_input.amount, amount_rule=True):
            return
        source = f"webhook {event.event_type}"
        if self._amount_rule(event, source=source):
            return
        if event.status.is_final:
            self._settle(
                event.status,
                event.failure_code,
                event.failure_message,
                source,
            )
        else:
            self._note(f"webhook {event.event_type}: still {event.raw_status}")

    def _apply_transaction(self, transaction: ProviderTransaction, *, source: str) -> None:
        state = self._current_state
        if state.status.is_final:
            return
        if state.provider_transaction_id is None:
            self._learn_transaction_id(transaction.provider_transaction_id)
        state.provider_status = transaction.raw_status
        if transaction.provider_reference:
            state.provider_reference = transaction.provider_reference
        if transaction.fees is not None:
            state.fees = transaction.fees
        if transaction.net_amount is not None:
            state.net_amount = transaction.net_amount
        if transaction.amount is not None and not self._amount_held():
            state.provider_amount = transaction.amount
        if self._amount_rule(transaction, source=source):
            return
        if transaction.status.is_final:
            self._settle(
                transaction.status,
                transaction.failure_code,
                transaction.failure_message,
                source,
            )
        elif source == CONFIRM_READ:
            # The signed webhook said final; the provider's API does not (yet).
            self._note(f"{source}: the provider still says {transaction.raw_status}")
        else:
            state.updated_at = workflow.now()

    def _settle(
        self, status: PaymentStatus, code: str | None, message: str | None, source: str
    ) -> None:
        final = FINAL_STATUS_FROM_PROVIDER[status]
        failure = None
        if final is not TransactionStatus.SUCCEEDED:
            failure = Failure(
                code=code or status.value,
                message=message or f"the provider reports the payout {status.value}",
                provider_code=code,
            )
        self._finish(final, failure, note=f"{final.value} ({source})")

    def _finish(
        self, status: TransactionStatus, failure: Failure | None, *, note: str = ""
    ) -> None:
        super()._finish(status, failure, note=note)
        if status.is_final or status is TransactionStatus.RECONCILING:
            self._notify(
                f"payout.{status.value}",
                url=self._run_input.notify_url,
                horizon_s=self._run_input.timings.notification_horizon_s,
            )
            if self._run_input.campaign_workflow_id:
                self._deliveries.append(asyncio.create_task(self._tell_campaign()))

    async def _skip_taken_reference(self, why: str) -> PayoutState:
        """A campaign line whose reference another payout holds in the record store (its
        workflow may be long gone from Temporal), or that could not be claimed: nothing is
        paid, the campaign counts the line as skipped, and the other payout's record is
        left as it is."""
        state = self._current_state
        message = f"{why}; this line was not paid"
        state.failure = Failure(code=DUPLICATE_REFERENCE, message=message)
        state.completed_at = workflow.now()
        self._record(TransactionStatus.FAILED, message)
        outcome = LineOutcome.from_state(state, at=workflow.now()).model_copy(
            update={"status": SKIPPED}
        )
        await self._tell_campaign(outcome)
        return state

    async def _tell_campaign(self, outcome: LineOutcome | None = None) -> None:
        """Report this line's settled outcome to its campaign. Only payouts started by a
        campaign have ``campaign_workflow_id``, so histories of other payouts are unchanged."""
        inp = self._run_input
        assert inp.campaign_workflow_id is not None
        outcome = outcome or LineOutcome.from_state(self._current_state, at=workflow.now())
        try:
            await workflow.get_external_workflow_handle(inp.campaign_workflow_id).signal(
                LINE_SETTLED_SIGNAL, outcome
            )
        except Exception as exc:
            # The campaign has ended (a reconciling line settling days later): its report
            # reads this payout's live state instead.
            workflow.logger.info("campaign %s not told: %s", inp.campaign_workflow_id, exc)

    def _describe(self) -> str:
        inp = self._run_input
        return (
            f"pay {format_amount(inp.amount, inp.currency)} to {mask_phone(inp.recipient_phone)} "
            f"via {inp.provider.value}/{inp.operator.value} ({inp.country.value})"
        )

    # ------------------------------------------------------------------ accessors

    def _record_fingerprint(self) -> str:
        return self._run_input.request_fingerprint

    def _record_campaign(self) -> str | None:
        campaign = self._run_input.campaign_workflow_id
        if campaign is None:
            return None
        return campaign_reference(self._run_input.merchant, campaign)

    @property
    def _run_input(self) -> PayoutInput:
        assert self._input is not None
        return self._input

    @property
    def _current_state(self) -> PayoutState:
        state = self._state_value
        assert isinstance(state, PayoutState)
        return state

    @property
    def _call_timeout(self) -> timedelta:
        return timedelta(seconds=self._run_input.timings.provider_call_timeout_s)
