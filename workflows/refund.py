"""RefundWorkflow: give a customer back a successful payin, in full, exactly once.

States (``TransactionStatus``)::

    submitting ─► pending ─► succeeded | failed
         │           └─► reconciling (no final webhook before the settle deadline)
         ├─► failed       (the provider refused the refund: nothing was sent back)
         └─► reconciling  (the refund call's outcome is unknown, or the provider already
                           holds a refund of this payin)

The id is ``refund-{payin workflow id}`` (:func:`momoflow.ids.refund_workflow_id`), started
by the gateway with the reuse policy ``REJECT_DUPLICATE``: a payin is refunded at most once.

Messages: signal ``provider_event`` (a webhook, normalised by the gateway); query ``state``.

Rules kept here:

* The refund call carries an idempotency key derived from the workflow id, so every re-send
  is the same request; an unknown outcome is re-sent until the submit deadline, then
  ``reconciling``, never ``failed`` (money may have moved).
* Only a verified webhook about this refund settles it. NovaSend has no refund status
  endpoint, so nothing can be read instead: a refund without such a webhook is
  ``reconciling`` at the settle deadline.
* A success for another amount or currency than the payin's, in a webhook or in the
  refund call's answer, is ``reconciling`` with ``amount_mismatch`` (``workflows.base``),
  never ``succeeded``, and stays so until an operator resolves it.
* ``reconciling`` keeps listening for a late final webhook until the reconcile horizon.
* Duplicate deliveries (same ``event_id``) are dropped; a final state absorbs every event.
* The merchant's ``notify_url`` hears ``refund.succeeded``, ``refund.failed`` and
  ``refund.reconciling``; deliveries run beside the main line.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.providers import ProviderActivities
    from momoflow import search_attributes as sa
    from momoflow.contract import PROVIDER_EVENT_SIGNAL, REFUND_WORKFLOW, STATE_QUERY
    from momoflow.ids import idempotency_key
    from momoflow.models import (
        Direction,
        Failure,
        PaymentStatus,
        ProviderEvent,
        ProviderTransaction,
        RefundInput,
        RefundState,
        RefundWorkflowInput,
        TransactionStatus,
    )
    from momoflow.money import format_amount
    from workflows.base import TransactionWorkflowBase
    from workflows.common import (
        PROVIDER_RETRY,
        provider_queue,
    )


@workflow.defn(name=REFUND_WORKFLOW)
class RefundWorkflow(TransactionWorkflowBase):
    """One full refund of one successful payin (see the module docstring)."""

    kind = "refund"

    def __init__(self) -> None:
        super().__init__()
        self._input: RefundWorkflowInput | None = None

    # ------------------------------------------------------------------ messages

    @workflow.signal(name=PROVIDER_EVENT_SIGNAL)
    def provider_event(self, event: ProviderEvent) -> None:
        """A webhook about this refund. Duplicate deliveries are dropped here."""
        self._receive(event)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> RefundState:
        """The live state of the refund."""
        if self._state_value is None:
            raise RuntimeError("the refund has not started yet")
        return self._current_state

    # ------------------------------------------------------------------ main line

    @workflow.run
    async def run(self, input: RefundWorkflowInput) -> RefundState:
        """Ask the provider for the refund, wait for its final webhook, tell the merchant;
        returns once every notification is settled."""
        self._input = input
        self._provider_value = input.provider
        now = workflow.now()
        self._state_value = RefundState(
            workflow_id=workflow.info().workflow_id,
            merchant=input.merchant,
            reference=input.payin_reference,
            payin_workflow_id=input.payin_workflow_id,
            provider=input.provider,
            country=input.country,
            amount=input.amount,
            currency=input.currency,
            reason=input.reason,
            created_at=now,
            updated_at=now,
        )
        # Direction stays "payin" so that a payin and its refund are found together.
        workflow.upsert_search_attributes(
            [
                sa.DIRECTION.value_set(Direction.PAYIN.value),
                sa.PROVIDER.value_set(input.provider.value),
                sa.STATUS.value_set(TransactionStatus.SUBMITTING.value),
                sa.COUNTRY.value_set(input.country.value),
                sa.AMOUNT.value_set(input.amount),
                sa.CURRENCY.value_set(input.currency.value),
                sa.MERCHANT.value_set(input.merchant),
                sa.REFERENCE.value_set(input.payin_reference),
            ]
        )
        self._record(
            TransactionStatus.SUBMITTING,
            f"refund {self._amount()} of payin {input.payin_reference} via "
            f"{input.provider.value}: {input.reason}",
        )
        self._start_recording()

        transaction = await self._submit()
        if transaction is not None:
            self._accept(transaction)
        self._drain_inbox()
        if self._status is TransactionStatus.PENDING:
            deadline = workflow.now() + timedelta(seconds=input.timings.settle_timeout_s)
            await self._listen_until(deadline, "waiting for the refund's final webhook")
            if not self._status.is_final and not self._amount_held():
                self._finish(
                    TransactionStatus.RECONCILING,
                    Failure(
                        code="refund_outcome_unknown",
                        message="no final webhook before the settle deadline (last status "
                        f"{self._current_state.provider_status or 'unknown'}), and the provider "
                        "has no refund status to read",
                    ),
                )
        if self._status is TransactionStatus.RECONCILING:
            horizon = workflow.now() + timedelta(seconds=input.timings.reconcile_horizon_s)
            await self._listen_until(horizon, "reconciling: waiting for a late webhook")
        await self._notifications_settled()
        return self._current_state

    # ------------------------------------------------------------------ steps

    async def _submit(self) -> ProviderTransaction | None:
        """The refund call, re-sent with the same key until accepted, refused or the
        submit deadline; None when it was not accepted (the state says why)."""
        inp, state = self._run_input, self._current_state
        request = RefundInput(
            provider=inp.provider,
            # The payin's reference at the provider is the one momoflow sent: its workflow id.
            payin_reference=inp.payin_workflow_id,
            provider_transaction_id=inp.provider_transaction_id,
            external_reference=state.workflow_id,
            idempotency_key=idempotency_key(state.workflow_id, "refund"),
            reason=inp.reason,
        )
        try:
            transaction: ProviderTransaction = await workflow.execute_activity_method(
                ProviderActivities.refund_payin,
                request,
                task_queue=provider_queue(inp.provider),
                start_to_close_timeout=timedelta(seconds=inp.timings.provider_call_timeout_s),
                schedule_to_close_timeout=timedelta(seconds=inp.timings.submit_timeout_s),
                retry_policy=PROVIDER_RETRY,
                summary=f"refund payin {inp.payin_workflow_id}",
            )
        except ActivityError as err:
            self._create_call_failed(err, call="refund")
            return None
        return transaction

    def _accept(self, transaction: ProviderTransaction) -> None:
        state = self._current_state
        # NovaSend's refund webhooks carry only this id: the gateway finds us by it.
        self._learn_transaction_id(transaction.provider_transaction_id)
        state.submitted_at = workflow.now()
        state.provider_status = transaction.raw_status
        state.provider_reference = transaction.provider_reference
        self._record(
            TransactionStatus.PENDING,
            f"accepted as {transaction.provider_transaction_id} ({transaction.raw_status})",
        )
        self._apply_transaction(transaction, source="refund call")

    async def _listen_until(self, deadline: datetime, summary: str) -> None:
        """Apply webhooks as they come until the refund is final or ``deadline``."""
        while not self._status.is_final:
            self._drain_inbox()
            remaining = deadline - workflow.now()
            if self._status.is_final or remaining <= timedelta(0):
                return
            await self._wait_for_event(remaining, summary)

    # ------------------------------------------------------------------ state changes

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
                event.raw_status,
                source,
            )
        else:
            self._note(f"webhook {event.event_type}: still {event.raw_status}")

    async def _poll(self, why: str) -> bool:
        """Nothing to read: NovaSend has no refund status endpoint (N8), so only its
        webhook settles a refund."""
        self._note(f"{why}: no refund status endpoint; waiting for the provider's webhook")
        return False

    def _apply_transaction(self, transaction: ProviderTransaction, *, source: str) -> None:
        """The refund call's answer: final when the provider already says so (for the
        amount asked: a success for another amount is ``reconciling``)."""
        if self._status.is_final:
            return
        if transaction.amount is not None and not self._amount_held():
            self._current_state.provider_amount = transaction.amount
        if self._amount_rule(transaction, source=source):
            return
        if transaction.status.is_final:
            self._settle(
                transaction.status,
                transaction.failure_code,
                transaction.failure_message,
                transaction.raw_status,
                source,
            )

    def _settle(
        self,
        status: PaymentStatus,
        code: str | None,
        message: str | None,
        raw_status: str,
        source: str,
    ) -> None:
        if status is PaymentStatus.SUCCEEDED:
            self._finish(TransactionStatus.SUCCEEDED, None, note=f"succeeded ({source})")
            return
        failure = Failure(
            code=code or "refund_failed",
            message=message or f"the provider reports the refund {raw_status}",
            provider_code=code,
        )
        self._finish(TransactionStatus.FAILED, failure, note=f"failed ({source})")

    def _finish(
        self, status: TransactionStatus, failure: Failure | None, *, note: str = ""
    ) -> None:
        super()._finish(status, failure, note=note)
        self._notify(
            f"refund.{status.value}",
            url=self._run_input.notify_url,
            horizon_s=self._run_input.timings.notification_horizon_s,
        )

    # ------------------------------------------------------------------ accessors

    def _record_fingerprint(self) -> str:
        return self._run_input.payin_workflow_id

    def _amount(self) -> str:
        return format_amount(self._run_input.amount, self._run_input.currency)

    @property
    def _run_input(self) -> RefundWorkflowInput:
        assert self._input is not None
        return self._input

    @property
    def _current_state(self) -> RefundState:
        state = self._state_value
        assert isinstance(state, RefundState)
        return state
