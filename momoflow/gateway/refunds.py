"""``/v1/payins/{reference}/refund``: refund a successful payin in full (once) and follow
the refund.

Only providers with a refund API (``ProviderCapabilities.refunds``: NovaSend) are refunded
here; the others get a 422 that names their manual process (``docs/refunds.md``).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from momoflow.business_requests import clean_text
from momoflow.gateway.deps import (
    MerchantDep,
    SettingsDep,
    StoreDep,
    TemporalConnectionDep,
    TemporalDep,
)
from momoflow.gateway.transactions import (
    ERROR_RESPONSES,
    Source,
    WaitSeconds,
    WhileStatus,
    not_found,
    read_state,
    read_state_waiting,
    reference_conflict,
    start_refused_unavailable,
    transaction_answers,
)
from momoflow.ids import payin_workflow_id, refund_workflow_id
from momoflow.models import (
    PayinInput,
    PayinState,
    RefundState,
)
from momoflow.money import format_amount
from momoflow.operations.refunds import (
    PayinNotRefundable,
    RefundNotSupported,
    initial_refund_state,
    start_refund,
)
from momoflow.operations.starting import RecordsUnavailable, ReferenceInUse
from momoflow.records.writes import Kind

log = logging.getLogger("momoflow.gateway")

router = APIRouter(prefix="/v1/payins", tags=["refunds"])


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
    store: StoreDep,
    temporal: TemporalConnectionDep,
    client: TemporalDep,
) -> RefundState:
    """Start the payin's refund, or return it (200) when it was already requested: a
    payin is refunded at most once, whatever the reason given the second time. The
    refund's notifications go to the payin's ``notify_url``."""
    try:
        payin_id = payin_workflow_id(merchant, reference)
    except ValueError:
        raise not_found("payin", reference) from None
    payin = await read_state(
        Source(temporal, store, Kind.PAYIN, merchant, reference, payin_id),
        PayinState,
        what="payin",
    )
    try:
        started = await start_refund(
            client,
            store,
            payin,
            reason=body.reason,
            notify_url=await _payin_notify_url(client, payin_id),
            settings=settings,
        )
    except PayinNotRefundable as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail={"error": "payin_not_refundable", "message": str(exc)},
        ) from None
    except RefundNotSupported as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={"error": "refund_not_supported", "message": str(exc)},
        ) from None
    except ReferenceInUse as exc:
        raise reference_conflict(exc) from None
    except RecordsUnavailable as exc:
        raise start_refused_unavailable(exc) from None
    if not started.created:
        response.status_code = status.HTTP_200_OK
        return await read_state(
            Source(temporal, store, Kind.REFUND, merchant, reference, started.workflow_id),
            RefundState,
            what="refund",
        )
    log.info(
        "refund %s started (%s)", started.workflow_id, format_amount(payin.amount, payin.currency)
    )
    return initial_refund_state(started)


@router.get(
    "/{reference}/refund",
    response_model=RefundState,
    responses={404: {"description": "This payin has no refund"}, **ERROR_RESPONSES},
    summary="Read a payin refund's live state (optionally long-polling for a change)",
)
async def get_refund(
    reference: str,
    request: Request,
    merchant: MerchantDep,
    store: StoreDep,
    temporal: TemporalConnectionDep,
    wait_s: WaitSeconds = None,
    while_status: WhileStatus = None,
) -> RefundState:
    """The refund of the caller's payin ``reference``; ``wait_s`` and ``while_status``
    long-poll as for ``GET /v1/payouts/{reference}``."""
    try:
        refund_id = refund_workflow_id(payin_workflow_id(merchant, reference))
    except ValueError:
        raise not_found("refund", reference) from None
    return await read_state_waiting(
        request,
        Source(temporal, store, Kind.REFUND, merchant, reference, refund_id),
        RefundState,
        what="refund",
        wait_s=wait_s,
        ready=transaction_answers(while_status),
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
        if exc.status == RPCStatusCode.NOT_FOUND:
            # Past Temporal's retention the payin's input is gone: no notifications.
            return None
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail={"error": "temporal_unavailable", "message": "retry shortly"},
            headers={"Retry-After": "2"},
        ) from exc
    return None
