"""``/webhooks/{provider}``: verify, normalise, signal the workflow, answer fast.

The answer is 2xx only once the event is recorded durably, or when it can never matter:

* ``accepted``: Temporal accepted the ``provider_event`` signal of the transaction;
* ``kept``: the transaction cannot be found or signalled yet (MOBILE-PAY's webhook can
  beat the create answer that tells the workflow its transaction id), so the event went
  into the transaction's webhook inbox (``momoflow.inbox``), which delivers it once the
  transaction is there, or gives up visibly at the horizon. Only verified (or
  token-authenticated) events get this far;
* ``ignored``: a reference that is not one of ours, or a transaction that has finished.

A bad signature is a 401 and changes nothing. A 503 remains only when Temporal accepts
nothing at all (neither the signal nor the inbox), so that the provider may retry.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status
from temporalio.client import Client
from temporalio.service import RPCError

from momoflow import inbox, telemetry
from momoflow.gateway.deps import ProvidersDep, SettingsDep, TemporalDep
from momoflow.ids import workflow_task_queue
from momoflow.models import ProviderName
from momoflow.providers.base import PaymentProvider
from momoflow.providers.errors import WebhookVerificationError
from momoflow.settings import Settings

log = logging.getLogger("momoflow.gateway.webhooks")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

#: Webhook bodies are small JSON documents; anything bigger is refused unread.
MAX_WEBHOOK_BYTES = 64 * 1024
#: How the URL token reaches adapters that authenticate by it (see PaymentProvider).
URL_TOKEN_HEADER = "x-momoflow-webhook-token"


@router.post("/{provider}", summary="Provider webhook intake (signed providers)")
async def receive_webhook(
    provider: ProviderName,
    request: Request,
    providers: ProvidersDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> dict[str, str]:
    """Verify a provider's webhook and hand it to the transaction's workflow."""
    return await _receive(provider, request, providers, client, settings, url_token=None)


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
    settings: SettingsDep,
) -> dict[str, str]:
    """Same as above; the secret token in the URL is what authenticates the delivery."""
    return await _receive(provider, request, providers, client, settings, url_token=token)


async def _receive(
    provider: ProviderName,
    request: Request,
    providers: dict[ProviderName, PaymentProvider],
    client: Client,
    settings: Settings,
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
    route = inbox.route_for(event)
    if route is None:
        log.info(
            "ignored %s webhook %s: not a momoflow transaction", provider.value, event.event_id
        )
        telemetry.note_webhook(provider.value, "ignored", event_type=event.event_type)
        return {"status": "ignored", "reason": "unknown reference"}
    try:
        workflow_id = await inbox.find_transaction(client, route)
    except RPCError as exc:
        log.warning("could not look up the %s webhook's transaction: %s", provider.value, exc)
        workflow_id = None
    if workflow_id is not None:
        # The fast path. The signal's span is a child of this request's; the workflow's
        # HandleSignal span, in the transaction's trace, links to it.
        seen = {"workflow_id": workflow_id, "event_type": event.event_type}
        try:
            outcome = await inbox.signal_transaction(client, workflow_id, event)
        except RPCError as exc:
            log.warning("could not signal %s webhook to %s: %s", provider.value, workflow_id, exc)
            outcome = None
        if outcome is inbox.SignalOutcome.ACCEPTED:
            telemetry.note_webhook(
                provider.value, "accepted", event_status=event.status.value, **seen
            )
            log.info("%s webhook %s -> %s", provider.value, event.event_type, workflow_id)
            return {"status": "accepted"}
        if outcome is inbox.SignalOutcome.FINISHED:
            log.info("ignored %s webhook for %s: no open workflow", provider.value, workflow_id)
            telemetry.note_webhook(provider.value, "ignored", **seen)
            return {"status": "ignored", "reason": "the transaction has finished"}
    # Not found (yet), or not signalable right now: keep it durably, then answer 2xx. The
    # provider may never send it again (MOBILE-PAY does not retry).
    try:
        inbox_id = await inbox.keep(
            client,
            route,
            event,
            horizon_s=settings.webhook_inbox_horizon_s,
            task_queue=workflow_task_queue(settings.task_queue_prefix),
        )
    except RPCError as exc:
        # Temporal accepts nothing right now: nowhere durable to keep it.
        log.warning("could not record %s webhook %s: %s", provider.value, event.event_id, exc)
        telemetry.note_webhook(provider.value, "not_recorded", event_type=event.event_type)
        raise _not_recorded() from exc
    log.info(
        "%s webhook %s for %s kept in %s until its transaction can be found",
        provider.value,
        event.event_type,
        route.describe(),
        inbox_id,
    )
    telemetry.note_webhook(
        provider.value, "kept", workflow_id=inbox_id, event_type=event.event_type
    )
    return {"status": "kept", "inbox": inbox_id}


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
