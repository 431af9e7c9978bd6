"""``/v1/payouts``: start a payout (idempotently) and read its state."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Response, status

from momoflow import search_attributes as sa
from momoflow.gateway.deps import MerchantDep, SettingsDep, TemporalDep
from momoflow.gateway.errors import problems_response
from momoflow.gateway.transactions import ERROR_RESPONSES, not_found, read_state, start_once
from momoflow.ids import payout_workflow_id, workflow_task_queue
from momoflow.models import Direction, PayoutState, TransactionStatus
from momoflow.money import format_amount
from momoflow.privacy import mask_phone
from momoflow.providers.capabilities import CAPABILITIES
from momoflow.requests import PayoutRequest, check_notify_url, check_payout_request

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
    client: TemporalDep,
) -> PayoutState | Response:
    """Start the payout, or return the existing one when ``reference`` was already used
    with the same request. The same reference with another request is a 409."""
    problems = check_payout_request(body)
    url_problem = check_notify_url(
        str(body.notify_url) if body.notify_url else None,
        allow_private=settings.env in ("local", "test"),
    )
    if url_problem:
        problems.append(url_problem)
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
    created = await start_once(
        client,
        "PayoutWorkflow",
        payout_input,
        workflow_id=workflow_id,
        task_queue=workflow_task_queue(settings.task_queue_prefix),
        fingerprint=payout_input.request_fingerprint,
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
        summary=(
            f"Payout {format_amount(body.amount, body.currency)} to "
            f"{mask_phone(body.recipient.phone)} via {body.provider.value}/{body.operator.value}"
        ),
        what="payout",
        reference=body.reference,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
        return await read_state(
            client, workflow_id, PayoutState, what="payout", reference=body.reference
        )
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
    responses={404: {"description": "No payout with this reference"}, **ERROR_RESPONSES},
    summary="Read a payout's live state",
)
async def get_payout(reference: str, merchant: MerchantDep, client: TemporalDep) -> PayoutState:
    """The payout's live state (only the caller's own payouts are visible)."""
    try:
        workflow_id = payout_workflow_id(merchant, reference)
    except ValueError:
        raise not_found("payout", reference) from None
    return await read_state(client, workflow_id, PayoutState, what="payout", reference=reference)
