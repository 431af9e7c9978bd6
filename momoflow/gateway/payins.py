"""``/v1/payins``: ask a customer to pay (idempotently) and follow the payin."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Response, status
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from momoflow import search_attributes as sa
from momoflow.gateway.deps import MerchantDep, SettingsDep, TemporalDep
from momoflow.gateway.errors import problems_response
from momoflow.gateway.transactions import ERROR_RESPONSES, not_found, read_state, start_once
from momoflow.ids import payin_workflow_id, workflow_task_queue
from momoflow.models import Direction, PayinState, TransactionStatus
from momoflow.money import format_amount
from momoflow.privacy import mask_phone
from momoflow.providers.capabilities import CAPABILITIES
from momoflow.requests import PayinRequest, check_notify_url, check_payin_request

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
    client: TemporalDep,
) -> PayinState | Response:
    """Start the payin and answer once the provider has created it, with what the customer
    needs (``payment_url``, ``deep_links``, ``qr_code``, ``expires_at``); the payin then goes
    on (follow it with ``GET /v1/payins/{reference}`` or your ``notify_url``)."""
    problems = check_payin_request(body)
    url_problem = check_notify_url(
        str(body.notify_url) if body.notify_url else None,
        allow_private=settings.env in ("local", "test"),
    )
    if url_problem:
        problems.append(url_problem)
    if problems:
        return problems_response(problems)
    workflow_id = payin_workflow_id(merchant, body.reference)
    payin_input = body.to_input(
        merchant=merchant,
        secret=settings.fingerprint_secret.get_secret_value(),
        requested_at=datetime.now(UTC),
        timings=settings.payin_timings_for(body.provider),
    )
    if CAPABILITIES[body.provider].per_request_callback:
        payin_input.provider_callback_url = settings.webhook_url(body.provider)
    who = mask_phone(body.customer.phone) if body.customer.phone else "a customer"
    created = await start_once(
        client,
        "PayinWorkflow",
        payin_input,
        workflow_id=workflow_id,
        task_queue=workflow_task_queue(settings.task_queue_prefix),
        fingerprint=payin_input.request_fingerprint,
        search_attributes=sa.transaction_attributes(
            direction=Direction.PAYIN.value,
            provider=body.provider.value,
            status=TransactionStatus.CREATED.value,
            country=body.country.value,
            operator=body.operator.value if body.operator else body.mode.value,
            amount=body.amount,
            currency=body.currency.value,
            merchant=merchant,
            reference=body.reference,
        ),
        summary=(
            f"Payin {format_amount(body.amount, body.currency)} from {who} via "
            f"{body.provider.value} ({body.mode.value})"
        ),
        what="payin",
        reference=body.reference,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    else:
        log.info("payin %s started (%s)", workflow_id, format_amount(body.amount, body.currency))
    handle = client.get_workflow_handle(workflow_id, result_type=PayinState)
    try:
        state: PayinState = await handle.execute_update(
            "created", result_type=PayinState, rpc_timeout=_timeout()
        )
        return state
    except (RPCError, WorkflowUpdateFailedError):
        # Finished already, or the provider is slow to answer: the current state says which.
        return await read_state(
            client, workflow_id, PayinState, what="payin", reference=body.reference
        )


@router.get(
    "/{reference}",
    response_model=PayinState,
    responses={404: {"description": "No payin with this reference"}, **ERROR_RESPONSES},
    summary="Read a payin's live state",
)
async def get_payin(reference: str, merchant: MerchantDep, client: TemporalDep) -> PayinState:
    """The payin's live state (only the caller's own payins are visible)."""
    try:
        workflow_id = payin_workflow_id(merchant, reference)
    except ValueError:
        raise not_found("payin", reference) from None
    return await read_state(client, workflow_id, PayinState, what="payin", reference=reference)


def _timeout() -> timedelta:
    return timedelta(seconds=CREATED_WAIT_S)
