"""Refunds: a succeeded payin is refunded in full, once.

The refund of a payin is identified by the payin alone (``refund-<payin workflow id>``, with
the payin's workflow id as its fingerprint): a second request, whatever its reason, is the
same refund. Only providers with a refund API are refunded here; the others are refused
with the manual process to follow (``docs/refunds.md``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client

from momoflow import search_attributes as sa
from momoflow.contract import REFUND_WORKFLOW
from momoflow.ids import refund_workflow_id, workflow_task_queue
from momoflow.models import (
    Direction,
    PayinState,
    ProviderName,
    RefundState,
    RefundTimings,
    RefundWorkflowInput,
    TransactionStatus,
)
from momoflow.money import format_amount
from momoflow.operations.starting import Started, StartRefused, start_once, start_recorded
from momoflow.providers.catalog import all_specs, spec_for
from momoflow.records.store import RecordStore
from momoflow.records.writes import Kind
from momoflow.settings import Settings

__all__ = [
    "MANUAL_REFUNDS",
    "REFUNDABLE",
    "PayinNotRefundable",
    "RefundNotSupported",
    "initial_refund_state",
    "start_refund",
]

#: Payin states whose money is with the merchant, so it can be given back.
REFUNDABLE = frozenset({TransactionStatus.SUCCEEDED, TransactionStatus.LATE_SUCCEEDED})

#: What to do instead, for providers without a refund API (each spec's
#: ``refund_guidance``; providers.md 1.10 and 3.3).
MANUAL_REFUNDS: dict[ProviderName, str] = {
    spec.name: spec.refund_guidance for spec in all_specs() if spec.refund_guidance is not None
}


class PayinNotRefundable(StartRefused):
    """The payin has not succeeded: there is no money to give back."""

    def __init__(self, reference: str, payin_status: TransactionStatus) -> None:
        self.status = payin_status
        super().__init__(
            f"payin {reference!r} is {payin_status.value}: only a succeeded payin can be refunded"
        )


class RefundNotSupported(StartRefused):
    """The payin's provider has no refund API; the message says what to do instead."""

    def __init__(self, provider: ProviderName) -> None:
        self.provider = provider
        super().__init__(MANUAL_REFUNDS.get(provider, f"{provider.value} offers no refund API"))


async def start_refund(
    client: Client,
    store: RecordStore,
    payin: PayinState,
    *,
    reason: str,
    notify_url: str | None,
    settings: Settings,
    requested_at: datetime | None = None,
) -> Started[RefundWorkflowInput]:
    """Start the refund of ``payin`` once (``created`` False: it was already requested).

    ``notify_url`` is the payin's: the refund's notifications go where the payin's went.
    Raises :class:`PayinNotRefundable` or :class:`RefundNotSupported` (nothing started).
    """
    if payin.status not in REFUNDABLE:
        raise PayinNotRefundable(payin.reference, payin.status)
    if not spec_for(payin.provider).capabilities.refunds:
        raise RefundNotSupported(payin.provider)
    refund_id = refund_workflow_id(payin.workflow_id)
    refund_input = RefundWorkflowInput(
        merchant=payin.merchant,
        payin_reference=payin.reference,
        payin_workflow_id=payin.workflow_id,
        provider=payin.provider,
        country=payin.country,
        provider_transaction_id=payin.provider_transaction_id,
        amount=payin.amount,
        currency=payin.currency,
        reason=reason,
        notify_url=notify_url,
        requested_at=requested_at or datetime.now(UTC),
        timings=_timings(settings),
    )
    attributes = sa.transaction_attributes(
        direction=Direction.PAYIN.value,
        provider=payin.provider.value,
        status=TransactionStatus.SUBMITTING.value,
        country=payin.country.value,
        operator=payin.operator.value if payin.operator else payin.mode.value,
        amount=payin.amount,
        currency=payin.currency.value,
        merchant=payin.merchant,
        reference=payin.reference,
    )
    started = Started(workflow_id=refund_id, created=False, input=refund_input)
    created, existing = await start_recorded(
        store,
        Kind.REFUND,
        initial_refund_state(started),
        # A refund is identified by its payin alone: any later request is the same refund.
        fingerprint=payin.workflow_id,
        actor=f"api:{payin.merchant}",
        what="refund",
        search_attributes=attributes,
        start=lambda: start_once(
            client,
            REFUND_WORKFLOW,
            refund_input,
            workflow_id=refund_id,
            task_queue=workflow_task_queue(settings.task_queue_prefix),
            fingerprint=payin.workflow_id,
            search_attributes=attributes,
            summary=(
                f"Refund {format_amount(payin.amount, payin.currency)} of payin "
                f"{payin.reference} via {payin.provider.value}"
            ),
            what="refund",
            reference=payin.reference,
        ),
    )
    return Started(workflow_id=refund_id, created=created, input=refund_input, existing=existing)


def initial_refund_state(started: Started[RefundWorkflowInput]) -> RefundState:
    """The state of a refund that has just started."""
    inp = started.input
    return RefundState(
        workflow_id=started.workflow_id,
        merchant=inp.merchant,
        reference=inp.payin_reference,
        payin_workflow_id=inp.payin_workflow_id,
        provider=inp.provider,
        country=inp.country,
        amount=inp.amount,
        currency=inp.currency,
        reason=inp.reason,
        created_at=inp.requested_at,
        updated_at=inp.requested_at,
    )


def _timings(settings: Settings) -> RefundTimings:
    """Refunds share the payins' call and submit deadlines and notification horizon."""
    payin = settings.payin_timings
    return RefundTimings(
        provider_call_timeout_s=payin.provider_call_timeout_s,
        submit_timeout_s=payin.submit_timeout_s,
        notification_horizon_s=settings.notification_horizon_s,
    )
