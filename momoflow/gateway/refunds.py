"""``/v1/payins/{reference}/refund``: refund a successful payin in full (once) and follow
the refund.

Only providers with a refund API (``ProviderCapabilities.refunds``: NovaSend) are refunded
here; the others get a 422 that names their manual process (``docs/refunds.md``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from temporalio.client import Client
from temporalio.service import RPCError

from momoflow import search_attributes as sa
from momoflow.gateway.deps import MerchantDep, SettingsDep, TemporalDep
from momoflow.gateway.transactions import (
    ERROR_RESPONSES,
    not_found,
    read_state,
    reference_conflict,
)
from momoflow.ids import payin_workflow_id, refund_workflow_id, workflow_task_queue
from momoflow.models import (
    Direction,
    PayinInput,
    PayinState,
    ProviderName,
    RefundState,
    RefundTimings,
    RefundWorkflowInput,
    TransactionStatus,
)
from momoflow.money import format_amount
from momoflow.providers.capabilities import CAPABILITIES
from momoflow.requests import clean_text
from momoflow.settings import Settings
from momoflow.starts import ReferenceInUse, start_once

log = logging.getLogger("momoflow.gateway")

router = APIRouter(prefix="/v1/payins", tags=["refunds"])

#: Payin states whose money is with the merchant, so it can be given back.
REFUNDABLE = frozenset({TransactionStatus.SUCCEEDED, TransactionStatus.LATE_SUCCEEDED})

#: What to do instead, for providers without a refund API (providers.md 1.10 and 3.3).
MANUAL_REFUNDS: dict[ProviderName, str] = {
    ProviderName.CAURISFLUX: (
        "CaurisFlux refunds are manual for now: e-mail support@cauris-pay.com with the "
        "transaction id, amount and reason (refund API announced)"
    ),
    ProviderName.MOBILEPAY: "MOBILE-PAY offers no refund API",
}


class RefundRequest(BaseModel):
    """``POST /v1/payins/{reference}/refund``: give the customer the whole payin back."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "order 2026-0042 cancelled by the customer"}]},
    )

    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
        AfterValidator(clean_text),
    ]


@router.post(
    "/{reference}/refund",
    response_model=RefundState,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "This payin's refund, already requested"},
        404: {"description": "No payin with this reference"},
        **ERROR_RESPONSES,
        409: {"description": "The payin has not succeeded (`payin_not_refundable`)"},
        422: {
            "description": "Invalid request, or the provider has no refund API "
            "(`refund_not_supported`, with what to do instead)"
        },
    },
    summary="Refund a successful payin in full (once per payin)",
)
async def create_refund(
    reference: str,
    body: RefundRequest,
    response: Response,
    merchant: MerchantDep,
    settings: SettingsDep,
    client: TemporalDep,
) -> RefundState:
    """Start the payin's refund, or return it (200) when it was already requested: a
    payin is refunded at most once, whatever the reason given the second time. The
    refund's notifications go to the payin's ``notify_url``."""
    try:
        payin_id = payin_workflow_id(merchant, reference)
    except ValueError:
        raise not_found("payin", reference) from None
    payin = await read_state(client, payin_id, PayinState, what="payin", reference=reference)
    if payin.status not in REFUNDABLE:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail={
                "error": "payin_not_refundable",
                "message": f"payin {reference!r} is {payin.status.value}: only a succeeded "
                "payin can be refunded",
            },
        )
    if not CAPABILITIES[payin.provider].refunds:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={
                "error": "refund_not_supported",
                "message": MANUAL_REFUNDS.get(
                    payin.provider, f"{payin.provider.value} offers no refund API"
                ),
            },
        )
    refund_id = refund_workflow_id(payin_id)
    refund_input = RefundWorkflowInput(
        merchant=merchant,
        payin_reference=reference,
        payin_workflow_id=payin_id,
        provider=payin.provider,
        country=payin.country,
        provider_transaction_id=payin.provider_transaction_id,
        amount=payin.amount,
        currency=payin.currency,
        reason=body.reason,
        notify_url=await _payin_notify_url(client, payin_id),
        requested_at=datetime.now(UTC),
        timings=_timings(settings),
    )
    try:
        created = await start_once(
            client,
            "RefundWorkflow",
            refund_input,
            workflow_id=refund_id,
            task_queue=workflow_task_queue(settings.task_queue_prefix),
            # A refund is identified by its payin alone: any later request is the same refund.
            fingerprint=payin_id,
            search_attributes=sa.transaction_attributes(
                direction=Direction.PAYIN.value,
                provider=payin.provider.value,
                status=TransactionStatus.SUBMITTING.value,
                country=payin.country.value,
                operator=payin.operator.value if payin.operator else payin.mode.value,
                amount=payin.amount,
                currency=payin.currency.value,
                merchant=merchant,
                reference=reference,
            ),
            summary=(
                f"Refund {format_amount(payin.amount, payin.currency)} of payin {reference} via "
                f"{payin.provider.value}"
            ),
            what="refund",
            reference=reference,
        )
    except ReferenceInUse as exc:
        raise reference_conflict(exc) from None
    if not created:
        response.status_code = status.HTTP_200_OK
        return await read_state(client, refund_id, RefundState, what="refund", reference=reference)
    log.info("refund %s started (%s)", refund_id, format_amount(payin.amount, payin.currency))
    now = refund_input.requested_at
    return RefundState(
        workflow_id=refund_id,
        merchant=merchant,
        reference=reference,
        payin_workflow_id=payin_id,
        provider=payin.provider,
        country=payin.country,
        amount=payin.amount,
        currency=payin.currency,
        reason=body.reason,
        created_at=now,
        updated_at=now,
    )


@router.get(
    "/{reference}/refund",
    response_model=RefundState,
    responses={404: {"description": "This payin has no refund"}, **ERROR_RESPONSES},
    summary="Read a payin refund's live state",
)
async def get_refund(reference: str, merchant: MerchantDep, client: TemporalDep) -> RefundState:
    """The refund of the caller's payin ``reference``."""
    try:
        refund_id = refund_workflow_id(payin_workflow_id(merchant, reference))
    except ValueError:
        raise not_found("refund", reference) from None
    return await read_state(client, refund_id, RefundState, what="refund", reference=reference)


def _timings(settings: Settings) -> RefundTimings:
    """Refunds share the payins' call and submit deadlines and notification horizon."""
    payin = settings.payin_timings
    return RefundTimings(
        provider_call_timeout_s=payin.provider_call_timeout_s,
        submit_timeout_s=payin.submit_timeout_s,
        notification_horizon_s=settings.notification_horizon_s,
    )


async def _payin_notify_url(client: Client, payin_id: str) -> str | None:
    """The ``notify_url`` the payin was started with (its first history event)."""
    handle = client.get_workflow_handle(payin_id)
    try:
        async for event in handle.fetch_history_events(page_size=1):
            started = event.workflow_execution_started_event_attributes
            [payin] = await client.data_converter.decode(started.input.payloads, [PayinInput])
            notify_url: str | None = payin.notify_url
            return notify_url
    except RPCError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail={"error": "temporal_unavailable", "message": "retry shortly"},
            headers={"Retry-After": "2"},
        ) from exc
    return None
