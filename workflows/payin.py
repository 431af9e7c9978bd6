"""PayinWorkflow: ask a customer to pay, know for sure whether they did, tell the merchant.

States (``TransactionStatus``)::

    created ─► submitting ─► pending (waiting for the customer) ─► succeeded
                    │                    │                      ├► declined  (refused)
                    │                    │                      ├► failed ──► late_succeeded
                    │                    │                      └► expired   (after a last read)
                    │                    ├─► reconciling (the last read at expiry failed)
                    │                    └─► reconciling (a success for another amount)
                    ├─► failed           (the provider refused the request)
                    └─► reconciling      (the create outcome is unknown, or refused after
                                          an unknown attempt and not readable)

Messages: signal ``provider_event`` (a webhook, normalised by the gateway); update
``created`` (returns the state once the payment link / QR / push exists, for the caller
that just started the payin); query ``state``.

What payins add to the payout rules:

* The expiry comes from the provider's ``expiresAt`` (or ``default_expiry_s``); a last
  status read decides before ``expired`` is declared. When that read fails, nothing says
  the customer did not pay: the payin is ``reconciling`` (``expiry_unconfirmed``) and stays
  watched, like a payout.
* The amount the provider says it collected is compared with the amount asked at every
  read and webhook, the late-reversal window included: a success for another amount is
  ``reconciling`` (``amount_mismatch``), never ``succeeded`` (see :mod:`workflows.base`).
* A **failed** payin at a provider with late reversals (NovaSend: a failed payin whose money
  was in fact collected becomes successful within 48 h, N8) stays open for the window and
  records a late success as a :class:`~momoflow.models.Correction` with the distinct status
  ``late_succeeded``. It never silently flips.
* Every final state, ``reconciling`` and every correction is notified to the merchant's
  ``notify_url``, signed, retried by Temporal until delivered or the horizon; deliveries run
  beside the main line, so a merchant endpoint that is down delays nothing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.providers import InitiatePayinResult, ProviderActivities
    from momoflow import search_attributes as sa
    from momoflow.contract import CREATED_UPDATE, PAYIN_WORKFLOW, PROVIDER_EVENT_SIGNAL, STATE_QUERY
    from momoflow.ids import idempotency_key
    from momoflow.masking import mask_phone
    from momoflow.models import (
        FINAL_STATUS_FROM_PROVIDER,
        Correction,
        Failure,
        InitiatePayinInput,
        PayinCreated,
        PayinInput,
        PayinState,
        PaymentStatus,
        ProviderEvent,
        ProviderTransaction,
        TransactionStatus,
    )
    from momoflow.money import Currency, format_amount
    from workflows.base import CONFIRM_READ, PATCH_AMOUNT_MISMATCH, TransactionWorkflowBase
    from workflows.common import (
        PROVIDER_RETRY,
        provider_queue,
    )


#: Patch: a payin whose last read at expiry failed is ``reconciling``, not ``expired``.
PATCH_EXPIRY_NEEDS_A_READ = "payin-expiry-needs-a-read"

#: Provider words that mean the customer refused (rather than a technical failure).
_DECLINE_MARKERS = ("declin", "refus", "reject", "cancelled_by_customer")


@workflow.defn(name=PAYIN_WORKFLOW)
class PayinWorkflow(TransactionWorkflowBase):
    """One collection from one customer (see the module docstring)."""

    kind = "payin"

    def __init__(self) -> None:
        super().__init__()
        self._input: PayinInput | None = None
        self._created = False
        self._in_reversal_window = False

    # ------------------------------------------------------------------ messages

    @workflow.signal(name=PROVIDER_EVENT_SIGNAL)
    def provider_event(self, event: ProviderEvent) -> None:
        """A webhook about this payin. Duplicates are dropped here."""
        self._receive(event)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> PayinState:
        """The live state of the payin."""
        if self._state_value is None:
            raise RuntimeError("the payin has not started yet")
        return self._current_state

    @workflow.update(name=CREATED_UPDATE)
    async def created(self) -> PayinState:
        """The state once the provider has answered the create call (payment link, QR,
        expiry), or once the payin ended without one."""
        await workflow.wait_condition(lambda: self._created)
        return self._current_state

    # ------------------------------------------------------------------ main line

    @workflow.run
    async def run(self, input: PayinInput) -> PayinState:
        """Create, wait for the customer, then (where the provider has them) listen for a
        late reversal; returns once every merchant notification is settled."""
        self._input = input
        self._provider_value = input.provider
        now = workflow.now()
        self._state_value = PayinState.initial(workflow.info().workflow_id, input, updated_at=now)
        workflow.upsert_search_attributes(sa.as_updates(sa.payin_attributes(input)))
        self._record(TransactionStatus.CREATED, self._describe())
        self._start_recording()

        created = await self._create()
        if created is not None:
            self._accept(created)
        self._created = True
        if self._status is TransactionStatus.PENDING:
            await self._wait_for_customer()
        if self._status is TransactionStatus.RECONCILING:
            await self._reconcile_loop(
                poll_interval_s=input.timings.reconcile_poll_interval_s,
                horizon_s=input.timings.reconcile_horizon_s,
                readable_by_reference=input.status_by_reference,
            )
        if self._status is TransactionStatus.FAILED and input.late_reversals:
            await self._listen_for_late_reversal()
            if self._current_state.status is TransactionStatus.RECONCILING:
                # A late success for another amount (no earlier history reaches this).
                await self._reconcile_loop(
                    poll_interval_s=input.timings.reconcile_poll_interval_s,
                    horizon_s=input.timings.reconcile_horizon_s,
                    readable_by_reference=input.status_by_reference,
                )
        await self._notifications_settled()
        return self._current_state

    # ------------------------------------------------------------------ steps

    async def _create(self) -> PayinCreated | None:
        inp, state = self._run_input, self._current_state
        self._record(TransactionStatus.SUBMITTING, f"ask for {self._amount()} ({inp.mode.value})")
        request = InitiatePayinInput(
            provider=inp.provider,
            mode=inp.mode,
            external_reference=state.workflow_id,
            idempotency_key=idempotency_key(state.workflow_id, "initiate_payin"),
            amount=inp.amount,
            currency=inp.currency,
            country=inp.country,
            operator=inp.operator,
            customer_phone=inp.customer_phone,
            customer_name=inp.customer_name,
            description=inp.description,
            otp=inp.otp,
            callback_url=inp.provider_callback_url,
            return_url=inp.return_url,
            cancel_url=inp.cancel_url,
            requested_at=inp.requested_at,
        )
        try:
            result: InitiatePayinResult = await workflow.execute_activity_method(
                ProviderActivities.initiate_payin,
                request,
                task_queue=provider_queue(inp.provider),
                start_to_close_timeout=self._call_timeout,
                schedule_to_close_timeout=timedelta(seconds=inp.timings.submit_timeout_s),
                retry_policy=PROVIDER_RETRY,
                summary=f"create payin {state.workflow_id}",
            )
        except ActivityError as err:
            await self._create_refused(err)
            return None
        state.submit_attempts = result.attempt
        return result.created

    def _accept(self, created: PayinCreated) -> None:
        inp, state = self._run_input, self._current_state
        self._learn_transaction_id(created.transaction.provider_transaction_id)
        state.submitted_at = workflow.now()
        state.payment_url = created.payment_url
        state.deep_links = dict(created.deep_links)
        state.qr_code = created.qr_code
        state.expires_at = created.expires_at or (
            state.submitted_at + timedelta(seconds=inp.timings.default_expiry_s)
        )
        self._record(
            TransactionStatus.PENDING,
            f"waiting for the customer until {state.expires_at:%Y-%m-%d %H:%M:%S} UTC",
        )
        self._apply_transaction(created.transaction, source="create")

    async def _wait_for_customer(self) -> None:
        """Webhook or poll until final; at the expiry (plus grace) a last read, then
        ``expired``."""
        inp, state = self._run_input, self._current_state
        assert state.expires_at is not None
        deadline = state.expires_at + timedelta(seconds=inp.timings.expiry_grace_s)
        await self._wait_with_polls(deadline, inp.timings.poll_schedule_s)
        if self._settled_or_reconciling:
            return
        if not self._final_read_ok and workflow.patched(PATCH_EXPIRY_NEEDS_A_READ):
            self._finish(
                TransactionStatus.RECONCILING,
                Failure(
                    code="expiry_unconfirmed",
                    message=f"the payment window ended at {state.expires_at:%Y-%m-%d %H:%M} "
                    "UTC, but the provider's status could not be read: the customer may have "
                    f"paid (last status {state.provider_status or 'unknown'})",
                ),
            )
            return
        if self._success_claimed and not self._status.is_final:
            # The provider signed a success its API never confirmed: the customer may have
            # paid. Never "expired" on that doubt.
            self._finish(
                TransactionStatus.RECONCILING,
                Failure(
                    code="success_unconfirmed",
                    message="a signed success webhook arrived, but the provider's status "
                    f"never confirmed it before the payment window ended (last status "
                    f"{state.provider_status or 'unknown'}): the customer may have paid",
                ),
            )
            return
        if not self._status.is_final:
            self._finish(
                TransactionStatus.EXPIRED,
                Failure(
                    code="expired",
                    message=f"the customer did not pay before {state.expires_at:%Y-%m-%d %H:%M} "
                    f"UTC (last status {state.provider_status or 'unknown'})",
                ),
            )

    async def _listen_for_late_reversal(self) -> None:
        """Keep a failed payin open for the provider's documented reversal window."""
        inp = self._run_input
        timings = inp.timings
        end = workflow.now() + timedelta(seconds=timings.late_reversal_window_s)
        self._in_reversal_window = True
        try:
            while self._status is TransactionStatus.FAILED and workflow.now() < end:
                wait = min(
                    timedelta(seconds=timings.late_reversal_poll_interval_s), end - workflow.now()
                )
                if await self._wait_for_event(wait, "failed: listening for a late success"):
                    self._drain_inbox()
                    if self._poll_requested and self._status is TransactionStatus.FAILED:
                        self._poll_requested = False
                        await self._poll(self._poll_reason)
                    continue
                await self._poll("late-reversal read")
        finally:
            self._in_reversal_window = False

    async def _poll(self, why: str) -> bool:
        return await self._read_status(
            why,
            ProviderActivities.fetch_payin_status,
            requested_at=self._run_input.requested_at,
            status_by_reference=self._run_input.status_by_reference,
            call_timeout=self._call_timeout,
        )

    # ------------------------------------------------------------------ state changes

    def _confirms_finals(self) -> bool:
        return self._run_input.confirm_final_webhooks

    def _apply_event(self, event: ProviderEvent) -> None:
        late = self._in_reversal_window and self._status is TransactionStatus.FAILED
        if not self._vet_event(
            event, expected_amount=self._run_input.amount, allow_final=late, amount_rule=True
        ):
            return
        if late:
            if event.status is PaymentStatus.SUCCEEDED:
                self._correct(f"webhook {event.event_type}", event.amount, event.currency)
            else:
                self._note(f"webhook {event.event_type}: still {event.raw_status}")
            return
        if self._amount_rule(event, source=f"webhook {event.event_type}"):
            return
        if event.status.is_final:
            self._settle(
                event.status,
                event.failure_code,
                event.failure_message,
                event.raw_status,
                f"webhook {event.event_type}",
            )
        else:
            self._note(f"webhook {event.event_type}: still {event.raw_status}")

    def _apply_transaction(self, transaction: ProviderTransaction, *, source: str) -> None:
        state = self._current_state
        if state.provider_transaction_id is None:
            self._learn_transaction_id(transaction.provider_transaction_id)
        if self._in_reversal_window and self._status is TransactionStatus.FAILED:
            if transaction.status is PaymentStatus.SUCCEEDED:
                state.provider_status = transaction.raw_status
                self._correct(source, transaction.amount, transaction.currency)
            return
        if state.status.is_final:
            return
        state.provider_status = transaction.raw_status
        if transaction.provider_reference:
            state.provider_reference = transaction.provider_reference
        if transaction.fees is not None:
            state.fees = transaction.fees
        if transaction.amount is not None and not self._amount_held():
            state.provider_amount = transaction.amount
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
        elif source == CONFIRM_READ:
            # The signed webhook said final; the provider's API does not (yet).
            self._note(f"{source}: the provider still says {transaction.raw_status}")
        else:
            state.updated_at = workflow.now()

    def _settle(
        self,
        status: PaymentStatus,
        code: str | None,
        message: str | None,
        raw_status: str,
        source: str,
    ) -> None:
        final = FINAL_STATUS_FROM_PROVIDER[status]
        words = f"{code or ''} {raw_status}".lower()
        if final is TransactionStatus.FAILED and any(m in words for m in _DECLINE_MARKERS):
            final = TransactionStatus.DECLINED
        failure = None
        if final is not TransactionStatus.SUCCEEDED:
            failure = Failure(
                code=code or final.value,
                message=message or f"the provider reports the payin {raw_status}",
                provider_code=code,
            )
        self._finish(final, failure, note=f"{final.value} ({source})")

    def _correct(self, source: str, amount: int | None, currency: Currency | None) -> None:
        state = self._current_state
        mismatch = self._amount_differs(amount, currency, state.amount) and workflow.patched(
            PATCH_AMOUNT_MISMATCH
        )
        if amount is not None:
            state.provider_amount = amount
        state.corrections.append(
            Correction(
                at=workflow.now(),
                from_status=state.status,
                to_status=(
                    TransactionStatus.RECONCILING if mismatch else TransactionStatus.LATE_SUCCEEDED
                ),
                source=source,
                provider_status=state.provider_status,
            )
        )
        if mismatch:
            self._finish(TransactionStatus.RECONCILING, self._amount_mismatch(amount, currency))
            return
        self._finish(
            TransactionStatus.LATE_SUCCEEDED,
            None,
            note=f"late success reported by {source}: the failed payin is corrected",
        )

    def _finish(
        self, status: TransactionStatus, failure: Failure | None, *, note: str = ""
    ) -> None:
        super()._finish(status, failure, note=note)
        if status.is_final or status is TransactionStatus.RECONCILING:
            event = "corrected" if status is TransactionStatus.LATE_SUCCEEDED else status.value
            self._notify(
                f"payin.{event}",
                url=self._run_input.notify_url,
                horizon_s=self._run_input.timings.notification_horizon_s,
            )

    # ------------------------------------------------------------------ accessors

    def _record_fingerprint(self) -> str:
        return self._run_input.request_fingerprint

    def _amount(self) -> str:
        return format_amount(self._run_input.amount, self._run_input.currency)

    def _describe(self) -> str:
        inp = self._run_input
        who = mask_phone(inp.customer_phone) if inp.customer_phone else "the customer"
        return f"collect {self._amount()} from {who} via {inp.provider.value} ({inp.mode.value})"

    @property
    def _run_input(self) -> PayinInput:
        assert self._input is not None
        return self._input

    @property
    def _current_state(self) -> PayinState:
        state = self._state_value
        assert isinstance(state, PayinState)
        return state

    @property
    def _call_timeout(self) -> timedelta:
        return timedelta(seconds=self._run_input.timings.provider_call_timeout_s)
