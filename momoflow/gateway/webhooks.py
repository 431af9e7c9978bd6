"""``/webhooks/{provider}``: verify, normalise, signal the workflow, answer fast.

The answer is 2xx only once the event is recorded (the signal accepted by Temporal), or
when it can never matter (an unknown or finished transaction): the provider retries
anything else. A bad signature is a 401 and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status
from temporalio.service import RPCError, RPCStatusCode

from momoflow.gateway.deps import ProvidersDep, TemporalDep
from momoflow.ids import parse_transaction_workflow_id
from momoflow.models import ProviderName
from momoflow.providers.errors import WebhookVerificationError

log = logging.getLogger("momoflow.gateway.webhooks")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

#: Webhook bodies are small JSON documents; anything bigger is refused unread.
MAX_WEBHOOK_BYTES = 64 * 1024
#: The signal every transaction workflow accepts for provider events.
PROVIDER_EVENT_SIGNAL = "provider_event"


@router.post("/{provider}", summary="Provider webhook intake")
async def receive_webhook(
    provider: ProviderName, request: Request, providers: ProvidersDep, client: TemporalDep
) -> dict[str, str]:
    """Verify a provider's webhook and hand it to the transaction's workflow."""
    adapter = providers.get(provider)
    if adapter is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail={"error": "not_found", "message": f"{provider.value} is not configured"},
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        raise _too_large()
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise _too_large()
    try:
        event = adapter.parse_webhook(request.headers, body)
    except WebhookVerificationError as exc:
        log.warning("refused %s webhook: %s", provider.value, exc.reason)
        code = status.HTTP_400_BAD_REQUEST if exc.reason == "bad_body" else 401
        raise HTTPException(
            code, detail={"error": f"webhook_{exc.reason}", "message": str(exc)}
        ) from exc
    event.received_at = datetime.now(UTC)
    workflow_id = event.external_reference or ""
    if parse_transaction_workflow_id(workflow_id) is None:
        log.info("ignored %s webhook %s: not a momoflow reference", provider.value, event.event_id)
        return {"status": "ignored", "reason": "unknown reference"}
    try:
        await client.get_workflow_handle(workflow_id).signal(PROVIDER_EVENT_SIGNAL, event)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            log.info("ignored %s webhook for %s: no open workflow", provider.value, workflow_id)
            return {"status": "ignored", "reason": "no open transaction with this reference"}
        log.warning("could not record %s webhook for %s: %s", provider.value, workflow_id, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail={"error": "not_recorded", "message": "event not recorded; retry"},
        ) from exc
    log.info("%s webhook %s -> %s", provider.value, event.event_type, workflow_id)
    return {"status": "accepted"}


def _too_large() -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail={"error": "too_large", "message": f"webhook bodies are at most {MAX_WEBHOOK_BYTES}"},
    )
