"""``/v1/payouts``: start a payout (idempotently) and read its state."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow.gateway.deps import MerchantDep, SettingsDep, TemporalDep
from momoflow.gateway.errors import problems_response
from momoflow.ids import payout_workflow_id, workflow_task_queue
from momoflow.models import Direction, PayoutState, TransactionStatus
from momoflow.money import format_amount
from momoflow.privacy import mask_phone
from momoflow.providers.capabilities import CAPABILITIES
from momoflow.requests import PayoutRequest, check_payout_request
from workflows.payout import PayoutWorkflow

log = logging.getLogger("momoflow.gateway")

router = APIRouter(prefix="/v1/payouts", tags=["payouts"])

FINGERPRINT_MEMO = "request_fingerprint"
#: How long a read waits for a worker to answer the ``state`` query.
QUERY_TIMEOUT_S = 5.0

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    409: {"description": "The reference was already used with a different request"},
    422: {"description": "Invalid request: every broken rule is listed, nothing was started"},
    503: {"description": "Temporal unreachable or no worker answered; retry"},
}


@router.post(
    "",
    response_model=PayoutState,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Existing payout with this reference"}, **_ERROR_RESPONSES},
    summary="Pay a recipient (idempotent on `reference`)",
)
async def create_payout(
    body: PayoutRequest,
    response: Response,
    merchant: MerchantDep,
    settings: SettingsDep,
    client: TemporalDep,
) -> PayoutState | Response:
    """Start the payout, or return the existing one when ``reference`` was already used
    with the same request. The same reference with another request is a 409."""
    problems = check_payout_request(body)
    if problems:
        return problems_response(problems)
    secret = settings.fingerprint_secret.get_secret_value()
    workflow_id = payout_workflow_id(merchant, body.reference)
    now = datetime.now(UTC)
    timings = settings.timings_for(body.provider)
    payout_input = body.to_input(
        merchant=merchant, secret=secret, requested_at=now, timings=timings
    )
    if CAPABILITIES[body.provider].per_request_callback:
        payout_input.provider_callback_url = settings.webhook_url(body.provider)
    try:
        await client.start_workflow(
            PayoutWorkflow.run,
            payout_input,
            id=workflow_id,
            task_queue=workflow_task_queue(settings.task_queue_prefix),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo={FINGERPRINT_MEMO: payout_input.request_fingerprint},
            search_attributes=sa.transaction_attributes(
                direction=Direction.PAYOUT.value,
                provider=body.provider.value,
                status=TransactionStatus.CREATED.value,
                country=body.country.value,
                operator=body.operator.value,
                amount=body.amount,
                currency=body.currency.value,
                merchant=merchant,
                reference=body.reference,
            ),
            static_summary=(
                f"Payout {format_amount(body.amount, body.currency)} to "
                f"{mask_phone(body.recipient.phone)} via {body.provider.value}/"
                f"{body.operator.value}"
            ),
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        if await description.memo_value(FINGERPRINT_MEMO, None) != payout_input.request_fingerprint:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail={
                    "error": "reference_conflict",
                    "message": f"reference {body.reference!r} was already used for a "
                    "different payout; use a new reference",
                },
            ) from None
        response.status_code = status.HTTP_200_OK
        return await read_state(client, workflow_id)
    log.info("payout %s started (%s)", workflow_id, format_amount(body.amount, body.currency))
    return PayoutState(
        workflow_id=workflow_id,
        merchant=merchant,
        reference=body.reference,
        provider=body.provider,
        country=body.country,
        operator=body.operator,
        recipient_phone_masked=mask_phone(body.recipient.phone),
        amount=body.amount,
        currency=body.currency,
        description=body.description,
        created_at=now,
        updated_at=now,
    )


@router.get(
    "/{reference}",
    response_model=PayoutState,
    responses={404: {"description": "No payout with this reference"}, **_ERROR_RESPONSES},
    summary="Read a payout's live state",
)
async def get_payout(reference: str, merchant: MerchantDep, client: TemporalDep) -> PayoutState:
    """The payout's live state (only the caller's own payouts are visible)."""
    try:
        workflow_id = payout_workflow_id(merchant, reference)
    except ValueError:
        raise _not_found(reference) from None
    return await read_state(client, workflow_id)


async def read_state(client: Client, workflow_id: str) -> PayoutState:
    """The payout's state: its result once completed, else the live query."""
    handle = client.get_workflow_handle_for(PayoutWorkflow.run, workflow_id)
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result()
        return await asyncio.wait_for(handle.query(PayoutWorkflow.state), timeout=QUERY_TIMEOUT_S)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            reference = workflow_id.split("-", 2)[-1]
            raise _not_found(reference) from None
        raise _state_unavailable() from exc
    except TimeoutError:
        raise _state_unavailable() from None


def _not_found(reference: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        detail={"error": "not_found", "message": f"no payout with reference {reference!r}"},
    )


def _state_unavailable() -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail={
            "error": "state_unavailable",
            "message": "the payout exists but no worker answered in time; retry shortly",
        },
        headers={"Retry-After": "2"},
    )
