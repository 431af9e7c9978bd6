"""``/v1/payouts``: start a payout (idempotently) and read its state."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, status

from momoflow.business_requests import PayoutRequest
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
from momoflow.ids import payout_workflow_id
from momoflow.models import PayoutState
from momoflow.money import format_amount
from momoflow.operations import (
    RecordsUnavailable,
    ReferenceInUse,
    RequestProblems,
    start_payout,
)
from momoflow.records.writes import Kind

log = logging.getLogger("momoflow.gateway")

router = APIRouter(prefix="/v1/payouts", tags=["payouts"])


@router.post(
    "",
    response_model=PayoutState,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Existing payout with this reference"}, **ERROR_RESPONSES},
    summary="Pay a recipient (idempotent on `reference`)",
)
async def create_payout(
    body: PayoutRequest,
    response: Response,
    merchant: MerchantDep,
    settings: SettingsDep,
    store: StoreDep,
    temporal: TemporalConnectionDep,
    client: TemporalDep,
) -> PayoutState | Response:
    """Start the payout, or return the existing one when ``reference`` was already used
    with the same request (for ever: the record store keeps it after Temporal's retention).
    The same reference with another request is a 409."""
    try:
        started = await start_payout(client, store, merchant, body, settings)
    except RequestProblems as exc:
        return problems_response(exc.problems)
    except ReferenceInUse as exc:
        raise reference_conflict(exc) from None
    except RecordsUnavailable as exc:
        raise start_refused_unavailable(exc) from None
    workflow_id = started.workflow_id
    if not started.created:
        response.status_code = status.HTTP_200_OK
        source = Source(temporal, store, Kind.PAYOUT, merchant, body.reference, workflow_id)
        return await read_state(source, PayoutState, what="payout")
    log.info("payout %s started (%s)", workflow_id, format_amount(body.amount, body.currency))
    return PayoutState.initial(workflow_id, started.input)


@router.get(
    "/{reference}",
    response_model=PayoutState,
    responses={404: {"description": "No payout with this reference"}, **ERROR_RESPONSES},
    summary="Read a payout's live state (optionally long-polling for a change)",
)
async def get_payout(
    reference: str,
    request: Request,
    merchant: MerchantDep,
    store: StoreDep,
    temporal: TemporalConnectionDep,
    wait_s: WaitSeconds = None,
    while_status: WhileStatus = None,
) -> PayoutState:
    """The payout's state (only the caller's own payouts are visible), from the record
    store, and live from its workflow while it is still moving. With
    ``wait_s``, the answer waits until the payout is settled or, with ``while_status``,
    until its status is another one; at the latest ``wait_s`` seconds (then ``200`` with
    the current state)."""
    try:
        workflow_id = payout_workflow_id(merchant, reference)
    except ValueError:
        raise not_found("payout", reference) from None
    return await read_state_waiting(
        request,
        Source(temporal, store, Kind.PAYOUT, merchant, reference, workflow_id),
        PayoutState,
        what="payout",
        wait_s=wait_s,
        ready=transaction_answers(while_status),
    )
