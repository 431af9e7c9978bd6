"""Span helpers for business code: :func:`annotate` the current span, and the ``note_*``
events (transaction starts, provider errors, webhooks) that set attributes and count."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import trace
from temporalio.common import TypedSearchAttributes

from momoflow import search_attributes as sa
from momoflow.telemetry.business_metrics import metrics

if TYPE_CHECKING:
    from momoflow.providers.errors import ProviderError

#: Attribute prefix of everything momoflow adds to spans.
ATTRIBUTE_PREFIX = "momoflow."


def annotate(**attributes: str | int | float | bool | None) -> None:
    """Set ``momoflow.<name>`` attributes on the current span; None values are skipped.

    Only references, providers, amounts and statuses belong here: never a phone number,
    a name or a credential (the redactor would mask them, but they must not be sent)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for name, value in attributes.items():
        if value is not None:
            span.set_attribute(f"{ATTRIBUTE_PREFIX}{name}", value)


def note_transaction_start(
    *, kind: str, workflow_id: str, search_attributes: TypedSearchAttributes, outcome: str
) -> None:
    """A business request started (``created``), found (``existing``) or was refused
    (``reference_conflict``) a transaction workflow: span attributes and a counter."""
    provider = search_attributes.get(sa.PROVIDER)
    annotate(
        kind=kind,
        workflow_id=workflow_id,
        reference=search_attributes.get(sa.REFERENCE),
        merchant=search_attributes.get(sa.MERCHANT),
        provider=provider,
        country=search_attributes.get(sa.COUNTRY),
        operator=search_attributes.get(sa.OPERATOR),
        amount=search_attributes.get(sa.AMOUNT),
        currency=search_attributes.get(sa.CURRENCY),
        start_outcome=outcome,
    )
    metrics.transaction_started(kind=kind, provider=str(provider or ""), outcome=outcome)


def note_provider_error(error: ProviderError) -> None:
    """A provider call ended in ``error``: its classification on the current span (the
    activity's) and in ``momoflow_provider_errors_total``."""
    annotate(
        error_type=error.type_name,
        http_status_code=error.http_status,
        provider_error_code=error.provider_code,
    )
    metrics.provider_error(
        provider=error.provider,
        operation=error.operation,
        error_type=error.type_name,
        error_code=error.provider_code or "",
        http_status=str(error.http_status or ""),
    )


def note_webhook(
    provider: str,
    outcome: str,
    *,
    reason: str | None = None,
    workflow_id: str | None = None,
    event_type: str | None = None,
    event_status: str | None = None,
) -> None:
    """A webhook was ``accepted`` (signalled to ``workflow_id``), ``kept`` (in its webhook
    inbox, ``workflow_id``, until its transaction can be found), ``ignored``, ``refused``
    (verification failed for ``reason``) or ``not_recorded`` (to be retried)."""
    annotate(
        provider=provider,
        webhook_outcome=outcome,
        webhook_refusal=reason,
        workflow_id=workflow_id,
        event_type=event_type,
        event_status=event_status,
    )
    metrics.webhook(provider=provider, outcome=outcome)
    if outcome == "refused":
        metrics.webhook_verification_failure(provider=provider, reason=reason or "unknown")
