"""``/webhooks/{provider}``: verify, normalise, signal the workflow, answer fast.

The answer is 2xx only once the event is recorded (the signal accepted by Temporal), or
when it can never matter (an unknown or finished transaction): the provider retries
anything else. A bad signature is a 401 and changes nothing.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow import telemetry
from momoflow.gateway.deps import ProvidersDep, TemporalDep
from momoflow.ids import parse_transaction_workflow_id
from momoflow.models import ProviderEvent, ProviderName
from momoflow.providers.base import PaymentProvider
from momoflow.providers.errors import WebhookVerificationError

log = logging.getLogger("momoflow.gateway.webhooks")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

#: Webhook bodies are small JSON documents; anything bigger is refused unread.
MAX_WEBHOOK_BYTES = 64 * 1024
#: The signal every transaction workflow accepts for provider events.
PROVIDER_EVENT_SIGNAL = "provider_event"
#: How the URL token reaches adapters that authenticate by it (see PaymentProvider).
URL_TOKEN_HEADER = "x-momoflow-webhook-token"
#: Provider transaction ids we are willing to put in a visibility query.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


@router.post("/{provider}", summary="Provider webhook intake (signed providers)")
async def receive_webhook(
    provider: ProviderName, request: Request, providers: ProvidersDep, client: TemporalDep
) -> dict[str, str]:
    """Verify a provider's webhook and hand it to the transaction's workflow."""
    return await _receive(provider, request, providers, client, url_token=None)


@router.post(
    "/{provider}/{token}",
    summary="Provider webhook intake with a secret URL token (MOBILE-PAY signs nothing)",
)
async def receive_webhook_with_token(
    provider: ProviderName,
    token: str,
    request: Request,
    providers: ProvidersDep,
    client: TemporalDep,
) -> dict[str, str]:
    """Same as above; the secret token in the URL is what authenticates the delivery."""
    return await _receive(provider, request, providers, client, url_token=token)


async def _receive(
    provider: ProviderName,
    request: Request,
    providers: dict[ProviderName, PaymentProvider],
    client: Client,
    *,
    url_token: str | None,
) -> dict[str, str]:
    adapter = providers.get(provider)
    if adapter is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail={"error": "not_found", "message": f"{provider.value} is not configured"},
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        raise _too_large()
    body = await _read_limited(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != URL_TOKEN_HEADER}
    if url_token is not None:
        headers[URL_TOKEN_HEADER] = url_token
    try:
        event = adapter.parse_webhook(headers, body)
    except WebhookVerificationError as exc:
        log.warning("refused %s webhook: %s", provider.value, exc.reason)
        telemetry.note_webhook(provider.value, "refused", reason=exc.reason)
        code = status.HTTP_400_BAD_REQUEST if exc.reason == "bad_body" else 401
        raise HTTPException(
            code, detail={"error": f"webhook_{exc.reason}", "message": str(exc)}
        ) from exc
    event.received_at = datetime.now(UTC)
    try:
        workflow_id = await _workflow_for(event, client)
    except RPCError as exc:
        log.warning("could not look up the %s webhook's transaction: %s", provider.value, exc)
        telemetry.note_webhook(provider.value, "not_recorded")
        raise _not_recorded() from exc
    if workflow_id is None:
        if event.external_reference is None and event.provider_transaction_id:
            # Known by the provider's id only (MOBILE-PAY): the workflow may not have
            # published that id yet, or visibility lags. Not recorded, so ask for a retry.
            log.info(
                "%s webhook %s: no workflow yet for its transaction id; asking for a retry",
                provider.value,
                event.event_id,
            )
            telemetry.note_webhook(provider.value, "not_recorded")
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail={"error": "not_recorded", "message": "transaction not known yet; retry"},
                headers={"Retry-After": "30"},
            )
        log.info(
            "ignored %s webhook %s: not a momoflow transaction", provider.value, event.event_id
        )
        telemetry.note_webhook(provider.value, "ignored", event_type=event.event_type)
        return {"status": "ignored", "reason": "unknown reference"}
    # The signal's span is a child of this request's; the workflow's HandleSignal span, in
    # the transaction's trace, links to it.
    seen = {"workflow_id": workflow_id, "event_type": event.event_type}
    try:
        await client.get_workflow_handle(workflow_id).signal(PROVIDER_EVENT_SIGNAL, event)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            log.info("ignored %s webhook for %s: no open workflow", provider.value, workflow_id)
            telemetry.note_webhook(provider.value, "ignored", **seen)
            return {"status": "ignored", "reason": "no open transaction with this reference"}
        log.warning("could not record %s webhook for %s: %s", provider.value, workflow_id, exc)
        telemetry.note_webhook(provider.value, "not_recorded", **seen)
        raise _not_recorded() from exc
    telemetry.note_webhook(provider.value, "accepted", event_status=event.status.value, **seen)
    log.info("%s webhook %s -> %s", provider.value, event.event_type, workflow_id)
    return {"status": "accepted"}


async def _workflow_for(event: ProviderEvent, client: Client) -> str | None:
    """The workflow an event belongs to: by our reference, else (for providers that send
    none) by the provider's transaction id, through the search attribute."""
    reference = event.external_reference or ""
    if parse_transaction_workflow_id(reference) is not None:
        return reference
    if event.external_reference or not event.provider_transaction_id:
        return None
    if not _SAFE_ID.match(event.provider_transaction_id):
        return None
    query = (
        f'{sa.PROVIDER_TRANSACTION.name} = "{event.provider_transaction_id}" '
        f'AND {sa.PROVIDER.name} = "{event.provider.value}"'
    )
    async for execution in client.list_workflows(query, limit=1):
        return execution.id
    return None


def _not_recorded() -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail={"error": "not_recorded", "message": "event not recorded; retry"},
    )


async def _read_limited(request: Request) -> bytes:
    """The body, read no further than :data:`MAX_WEBHOOK_BYTES`: a chunked upload without
    ``Content-Length`` is cut off too, before it fills memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail={"error": "too_large", "message": f"webhook bodies are at most {MAX_WEBHOOK_BYTES}"},
    )
