"""Payouts and payins: check the request, derive the workflow input, start it once.

The gateway (``POST /v1/payouts``, ``POST /v1/payins``) and
:func:`momoflow.client.start_payout_on_temporal` both call these, so a payout started either
way is the same payout. The input carries the timings and the provider callback URL of the
settings in force at start; the fingerprint is keyed (an HMAC with
``MOMOFLOW_FINGERPRINT_SECRET``), since the request holds phone numbers and names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client

from momoflow import search_attributes as sa
from momoflow.business_requests import (
    FieldProblem,
    PayinRequest,
    PayoutRequest,
    check_notify_url,
    check_payin_request,
    check_payout_request,
)
from momoflow.contract import PAYIN_WORKFLOW, PAYOUT_WORKFLOW
from momoflow.ids import payin_workflow_id, payout_workflow_id, workflow_task_queue
from momoflow.masking import mask_phone
from momoflow.models import PayinInput, PayinState, PayoutInput, PayoutState
from momoflow.money import format_amount
from momoflow.operations.starting import RequestProblems, Started, start_once, start_recorded
from momoflow.providers.catalog import capabilities_of
from momoflow.records.store import RecordStore
from momoflow.records.writes import Kind
from momoflow.settings import Settings

__all__ = ["start_payin", "start_payout"]


async def start_payout(
    client: Client,
    store: RecordStore,
    merchant: str,
    request: PayoutRequest,
    settings: Settings,
    *,
    requested_at: datetime | None = None,
) -> Started[PayoutInput]:
    """Check ``request``, claim its record and start its
    :class:`~workflows.payout.PayoutWorkflow` once.

    Raises :class:`RequestProblems` (nothing started), :class:`ReferenceInUse` or
    :class:`RecordsUnavailable`; ``ValueError`` for a merchant id that cannot be part of a
    workflow id.
    """
    problems = check_payout_request(request) + _notify_url_problems(request.notify_url, settings)
    if problems:
        raise RequestProblems(problems)
    workflow_id = payout_workflow_id(merchant, request.reference)
    payout_input = request.to_input(
        merchant=merchant,
        secret=settings.fingerprint_secret.get_secret_value(),
        requested_at=requested_at or datetime.now(UTC),
        timings=settings.timings_for(request.provider),
        confirm_final_webhooks=settings.confirms_payout_webhooks(request.provider),
    )
    if capabilities_of(request.provider).per_request_callback:
        payout_input.provider_callback_url = settings.webhook_url(request.provider)
    attributes = sa.payout_attributes(payout_input)
    created, existing = await start_recorded(
        store,
        Kind.PAYOUT,
        PayoutState.initial(workflow_id, payout_input),
        fingerprint=payout_input.request_fingerprint,
        actor=f"api:{merchant}",
        what="payout",
        search_attributes=attributes,
        start=lambda: start_once(
            client,
            PAYOUT_WORKFLOW,
            payout_input,
            workflow_id=workflow_id,
            task_queue=workflow_task_queue(settings.task_queue_prefix),
            fingerprint=payout_input.request_fingerprint,
            search_attributes=attributes,
            summary=(
                f"Payout {format_amount(request.amount, request.currency)} to "
                f"{mask_phone(request.recipient.phone)} via {request.provider.value}/"
                f"{request.operator.value}"
            ),
            what="payout",
            reference=request.reference,
        ),
    )
    return Started(workflow_id=workflow_id, created=created, input=payout_input, existing=existing)


async def start_payin(
    client: Client,
    store: RecordStore,
    merchant: str,
    request: PayinRequest,
    settings: Settings,
    *,
    requested_at: datetime | None = None,
) -> Started[PayinInput]:
    """Check ``request`` and start its :class:`~workflows.payin.PayinWorkflow` once.

    Raises :class:`RequestProblems` (nothing started), :class:`ReferenceInUse` or
    :class:`RecordsUnavailable`; ``ValueError`` for a merchant id that cannot be part of a
    workflow id. It claims the payin's record first, and does not wait
    for the provider's payment link: the gateway does that with the ``created`` update.
    """
    problems = check_payin_request(request) + _notify_url_problems(request.notify_url, settings)
    if problems:
        raise RequestProblems(problems)
    workflow_id = payin_workflow_id(merchant, request.reference)
    payin_input = request.to_input(
        merchant=merchant,
        secret=settings.fingerprint_secret.get_secret_value(),
        requested_at=requested_at or datetime.now(UTC),
        timings=settings.payin_timings_for(request.provider),
    )
    if capabilities_of(request.provider).per_request_callback:
        payin_input.provider_callback_url = settings.webhook_url(request.provider)
    who = mask_phone(request.customer.phone) if request.customer.phone else "a customer"
    attributes = sa.payin_attributes(payin_input)
    created, existing = await start_recorded(
        store,
        Kind.PAYIN,
        PayinState.initial(workflow_id, payin_input),
        fingerprint=payin_input.request_fingerprint,
        actor=f"api:{merchant}",
        what="payin",
        search_attributes=attributes,
        start=lambda: start_once(
            client,
            PAYIN_WORKFLOW,
            payin_input,
            workflow_id=workflow_id,
            task_queue=workflow_task_queue(settings.task_queue_prefix),
            fingerprint=payin_input.request_fingerprint,
            search_attributes=attributes,
            summary=(
                f"Payin {format_amount(request.amount, request.currency)} from {who} via "
                f"{request.provider.value} ({request.mode.value})"
            ),
            what="payin",
            reference=request.reference,
        ),
    )
    return Started(workflow_id=workflow_id, created=created, input=payin_input, existing=existing)


def _notify_url_problems(url: object | None, settings: Settings) -> list[FieldProblem]:
    problem = check_notify_url(
        str(url) if url else None,
        local=settings.env in ("local", "test"),
        policy=settings.notify_policy(),
    )
    return [problem] if problem else []
