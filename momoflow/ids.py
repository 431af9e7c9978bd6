"""Names that must never change: task queues, workflow ids, idempotency keys.

Workflow ids and provider idempotency keys are derived from the merchant's business
reference, never from run ids, attempts or randomness: a retried business call or a retried
activity can therefore never create a second transaction.
"""

from __future__ import annotations

import re
import uuid

from momoflow.models import Direction, ProviderName

#: Default prefix of momoflow's task queues (``MOMOFLOW_TASK_QUEUE_PREFIX``).
DEFAULT_TASK_QUEUE_PREFIX = "momoflow"
_WORKFLOWS_SUFFIX = "-workflows"

#: Merchant ids cannot contain '-', so ``payout-{merchant}-{reference}`` splits unambiguously.
MERCHANT_PATTERN = r"^[a-z0-9][a-z0-9_]{1,31}$"
#: Business references: letters, digits and ``. _ : -``, up to 64 characters.
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

_MERCHANT_RE = re.compile(MERCHANT_PATTERN)
_REFERENCE_RE = re.compile(REFERENCE_PATTERN)

#: Namespace of every UUIDv5 momoflow derives; changing it would change every key.
IDEMPOTENCY_NAMESPACE = uuid.UUID("7b0f8a52-4a43-5d1e-9c55-6d6f6d6f666c")


def workflow_task_queue(prefix: str = DEFAULT_TASK_QUEUE_PREFIX) -> str:
    """Task queue of momoflow's workflows."""
    return f"{prefix}{_WORKFLOWS_SUFFIX}"


def task_queue_prefix(workflow_queue: str) -> str:
    """The prefix of a workflow task queue (inverse of :func:`workflow_task_queue`)."""
    return workflow_queue.removesuffix(_WORKFLOWS_SUFFIX)


def provider_task_queue(
    provider: ProviderName | str, prefix: str = DEFAULT_TASK_QUEUE_PREFIX
) -> str:
    """Task queue of one provider's HTTP activities (rate-limited by the server)."""
    return f"{prefix}-provider-{ProviderName(provider).value}"


def status_reads_task_queue(
    provider: ProviderName | str, prefix: str = DEFAULT_TASK_QUEUE_PREFIX
) -> str:
    """Task queue of one provider's batched status reads (no server rate limit: the
    provider's reader workflow paces them within a request budget)."""
    return f"{prefix}-reads-{ProviderName(provider).value}"


def notification_task_queue(prefix: str = DEFAULT_TASK_QUEUE_PREFIX) -> str:
    """Task queue of merchant notification deliveries."""
    return f"{prefix}-notifications"


def campaign_task_queue(prefix: str = DEFAULT_TASK_QUEUE_PREFIX) -> str:
    """Task queue of campaign store activities (reading files, recording outcomes)."""
    return f"{prefix}-campaigns"


def limits_task_queue(prefix: str = DEFAULT_TASK_QUEUE_PREFIX) -> str:
    """Task queue of the merchants' limits workflows (kept apart from the payment
    workflows, so that a busy campaign never slows the gateway's admission)."""
    return f"{prefix}-limits"


def merchant_limits_workflow_id(merchant: str, prefix: str = DEFAULT_TASK_QUEUE_PREFIX) -> str:
    """The id of ``merchant``'s limits workflow for the deployment whose task queues
    start with ``prefix``: ``{prefix}-limits-{merchant}`` (:mod:`momoflow.merchant_limits`)."""
    if not is_valid_merchant(merchant):
        raise ValueError(f"invalid merchant id {merchant!r}: must match {MERCHANT_PATTERN}")
    return f"{prefix}-limits-{merchant}"


def campaign_workflow_id(merchant: str, reference: str) -> str:
    """The id of the campaign with this merchant reference: ``campaign-{merchant}-{ref}``."""
    if not is_valid_merchant(merchant):
        raise ValueError(f"invalid merchant id {merchant!r}: must match {MERCHANT_PATTERN}")
    if not is_valid_reference(reference):
        raise ValueError(f"invalid reference {reference!r}: must match {REFERENCE_PATTERN}")
    return f"campaign-{merchant}-{reference}"


def campaign_reference(merchant: str, workflow_id: str) -> str:
    """The merchant reference of the campaign whose workflow id is ``workflow_id`` (the
    inverse of :func:`campaign_workflow_id`)."""
    return workflow_id.removeprefix(f"campaign-{merchant}-")


def is_valid_merchant(merchant: str) -> bool:
    """True when ``merchant`` may be used in a workflow id."""
    return bool(_MERCHANT_RE.match(merchant))


def is_valid_reference(reference: str) -> bool:
    """True when ``reference`` may be used in a workflow id."""
    return bool(_REFERENCE_RE.match(reference))


def transaction_workflow_id(direction: Direction, merchant: str, reference: str) -> str:
    """``payout-{merchant}-{reference}`` or ``payin-{merchant}-{reference}``."""
    if not is_valid_merchant(merchant):
        raise ValueError(f"invalid merchant id {merchant!r}: must match {MERCHANT_PATTERN}")
    if not is_valid_reference(reference):
        raise ValueError(f"invalid reference {reference!r}: must match {REFERENCE_PATTERN}")
    return f"{direction.value}-{merchant}-{reference}"


def payout_workflow_id(merchant: str, reference: str) -> str:
    """The id of the payout with this merchant reference."""
    return transaction_workflow_id(Direction.PAYOUT, merchant, reference)


def payin_workflow_id(merchant: str, reference: str) -> str:
    """The id of the payin with this merchant reference."""
    return transaction_workflow_id(Direction.PAYIN, merchant, reference)


def refund_workflow_id(payin_workflow_id: str) -> str:
    """The id of the (single, full) refund of a payin: ``refund-{payin workflow id}``."""
    return f"refund-{payin_workflow_id}"


def webhook_inbox_workflow_id(provider: ProviderName | str, key: str) -> str:
    """The id of the webhook inbox of one transaction at ``provider``:
    ``webhook-inbox-{provider}-{key}``, where ``key`` is our reference (the transaction's
    workflow id) or, for providers that send none, the provider's transaction id."""
    return f"webhook-inbox-{ProviderName(provider).value}-{key}"


def status_reader_workflow_id(
    provider: ProviderName | str, prefix: str = DEFAULT_TASK_QUEUE_PREFIX
) -> str:
    """The id of the one workflow that batches a provider's status reads for the
    deployment whose task queues start with ``prefix``:
    ``{prefix}-status-reader-{provider}`` (:mod:`momoflow.status_reads`)."""
    return f"{prefix}-status-reader-{ProviderName(provider).value}"


def parse_transaction_workflow_id(workflow_id: str) -> tuple[Direction, str, str] | None:
    """Split a transaction workflow id into (direction, merchant, reference), or None.
    A refund id ``refund-payin-{merchant}-{reference}`` parses as its payin."""
    workflow_id = workflow_id.removeprefix("refund-")
    for direction in Direction:
        prefix = f"{direction.value}-"
        if workflow_id.startswith(prefix):
            merchant, sep, reference = workflow_id[len(prefix) :].partition("-")
            if sep and is_valid_merchant(merchant) and is_valid_reference(reference):
                return direction, merchant, reference
    return None


def idempotency_key(workflow_id: str, step: str) -> str:
    """The provider idempotency key of one money-moving step of one transaction (UUIDv5)."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{workflow_id}/{step}"))
