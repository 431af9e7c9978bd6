"""``/v1/payins``: ask a customer to pay (idempotently) and follow the payin."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, Request, Response, status
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from momoflow.business_requests import PayinRequest
from momoflow.contract import CREATED_UPDATE
from momoflow.gateway.deps import (
    MerchantDep,
    SettingsDep,
    StoreDep,
    TemporalConnectionDep,
    TemporalDep,
)
from momoflow.gateway.errors import problems_response
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
from momoflow.ids import payin_workflow_id
from momoflow.models import PayinState
from momoflow.money import format_amount
from momoflow.operations import (
    RecordsUnavailable,
    ReferenceInUse,
    RequestProblems,
    start_payin,
)
from momoflow.records.writes import Kind

log = logging.getLogger("momoflow.gateway")

router = APIRouter(prefix="/v1/payins", tags=["payins"])

#: How long ``POST /v1/payins`` waits for the provider's payment link / QR / push.
CREATED_WAIT_S = 20.0


@router.post(
    "",
    response_model=PayinState,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Existing payin with this reference"}, **ERROR_RESPONSES},
    summary="Collect from a customer (idempotent on `reference`)",
)
async def create_payin(
    body: PayinRequest,
    response: Response,
    merchant: MerchantDep,
    settings: SettingsDep,
    store: StoreDep,
    temporal: TemporalConnectionDep,
    client: TemporalDep,
) -> PayinState | Response:
    """Start the payin and answer once the provider has created it, with what the customer
    needs (``payment_url``, ``deep_links``, ``qr_code``, ``expires_at``); the payin then goes
    on (follow it with ``GET /v1/payins/{reference}`` or your ``notify_url``)."""
    try:
        started = await start_payin(client, store, merchant, body, settings)
    except RequestProblems as exc:
        return problems_response(exc.problems)
    except ReferenceInUse as exc:
        raise reference_conflict(exc) from None
    except RecordsUnavailable as exc:
        raise start_refused_unavailable(exc) from None
    workflow_id = started.workflow_id
    source = Source(temporal, store, Kind.PAYIN, merchant, body.reference, workflow_id)
    if started.existing is not None and started.existing.status.is_final:
        response.status_code = status.HTTP_200_OK
        return await read_state(source, PayinState, what="payin")
    if not started.created:
        response.status_code = status.HTTP_200_OK
    else:
        log.info("payin %s started (%s)", workflow_id, format_amount(body.amount, body.currency))
    handle = client.get_workflow_handle(workflow_id, result_type=PayinState)
    try:
        state: PayinState = await handle.execute_update(
            CREATED_UPDATE, result_type=PayinState, rpc_timeout=_timeout()
        )
        return state
    except (RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # Finished already, or the provider is slow to answer: the current state says which.
        return await read_state(source, PayinState, what="payin")


@router.get(
    "/{reference}",
    response_model=PayinState,
    responses={404: {"description": "No payin with this reference"}, **ERROR_RESPONSES},
    summary="Read a payin's live state (optionally long-polling for a change)",
)
async def get_payin(
    reference: str,
    request: Request,
    merchant: MerchantDep,
    store: StoreDep,
    temporal: TemporalConnectionDep,
    wait_s: WaitSeconds = None,
    while_status: WhileStatus = None,
) -> PayinState:
    """The payin's live state (only the caller's own payins are visible); ``wait_s`` and
    ``while_status`` long-poll as for ``GET /v1/payouts/{reference}``."""
    try:
        workflow_id = payin_workflow_id(merchant, reference)
    except ValueError:
        raise not_found("payin", reference) from None
    return await read_state_waiting(
        request,
        Source(temporal, store, Kind.PAYIN, merchant, reference, workflow_id),
        PayinState,
        what="payin",
        wait_s=wait_s,
        ready=transaction_answers(while_status),
    )


def _timeout() -> timedelta:
    return timedelta(seconds=CREATED_WAIT_S)
