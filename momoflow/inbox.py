"""The webhook inbox: verified webhooks that cannot reach their transaction yet.

A provider may call back before the transaction's workflow can be found: MOBILE-PAY names
only its own transaction id, which the workflow learns (and publishes as the
``ProviderTransactionId`` search attribute) when the create call answers, and that call
may still hang when the webhook arrives. MOBILE-PAY never sends a webhook twice, and the
retry policies of CaurisFlux and NovaSend are undocumented, so a 503 could lose the event.

Instead the gateway keeps such an event durably in a :data:`WEBHOOK_INBOX_WORKFLOW` (one per
provider and routing key, :func:`momoflow.ids.webhook_inbox_workflow_id`) before it answers
2xx; the inbox looks the transaction up with a back-off and signals it the same
``provider_event`` the gateway would have sent (``workflows/inbox.py``). This module holds
what the gateway, the inbox's activity and the workflow share: the models, the routing
rule, the lookup and the signal.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow.contract import INBOX_SIGNAL, PROVIDER_EVENT_SIGNAL, WEBHOOK_INBOX_WORKFLOW
from momoflow.ids import parse_transaction_workflow_id, webhook_inbox_workflow_id
from momoflow.models import PaymentStatus, ProviderEvent, ProviderName

#: Provider transaction ids we are willing to put in a visibility query.
SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
#: Default history length past which an inbox continues as new (its events carried over).
DEFAULT_MAX_HISTORY_EVENTS = 2_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InboxRoute(_Model):
    """How an event finds its transaction: by our reference (the transaction's workflow
    id, which CaurisFlux and NovaSend echo), else by the provider's transaction id, which
    the transaction publishes as the ``ProviderTransactionId`` search attribute."""

    provider: ProviderName
    workflow_id: str | None = None
    provider_transaction_id: str | None = None

    @property
    def key(self) -> str:
        """What names the inbox: the workflow id, else the provider's transaction id."""
        return self.workflow_id or self.provider_transaction_id or ""

    def describe(self) -> str:
        """For logs and failure messages (references and provider ids only)."""
        if self.workflow_id:
            return f"{self.provider.value} transaction {self.workflow_id}"
        return f"{self.provider.value} transaction id {self.provider_transaction_id}"


class InboxCarry(_Model):
    """What an inbox carries into its next run when it continues as new."""

    started_at: datetime
    events: list[ProviderEvent] = Field(default_factory=list)
    seen_event_ids: list[str] = Field(default_factory=list)
    attempts: int = 0
    duplicates: int = 0
    dropped: int = 0
    delivered: list[str] = Field(default_factory=list)
    last_outcome: str = ""


class InboxInput(_Model):
    """The inbox workflow's input, fixed by the gateway from the settings in force when the
    first event arrived (``MOMOFLOW_WEBHOOK_INBOX_HORIZON_S``)."""

    route: InboxRoute
    horizon_s: int = Field(ge=1)
    max_history_events: int = Field(default=DEFAULT_MAX_HISTORY_EVENTS, ge=20)
    carry: InboxCarry | None = None


class PendingEvent(_Model):
    """One kept event, as the ``state`` query shows it (no body, no personal data)."""

    event_id: str
    event_type: str
    status: PaymentStatus
    received_at: datetime | None = None


class InboxState(_Model):
    """The ``state`` query of an inbox."""

    route: InboxRoute
    started_at: datetime | None = None
    gives_up_at: datetime | None = None
    pending: list[PendingEvent] = Field(default_factory=list)
    delivered: list[str] = Field(default_factory=list)
    attempts: int = 0
    duplicates: int = 0
    dropped: int = 0
    last_outcome: str = ""


class InboxOutcome(StrEnum):
    """How an inbox ended well."""

    #: Every event was signalled to the transaction.
    DELIVERED = "delivered"
    #: The transaction had already finished: a final state absorbs every later event.
    FINISHED = "finished"


class InboxResult(_Model):
    """The inbox workflow's result."""

    route: InboxRoute
    outcome: InboxOutcome
    workflow_id: str
    delivered: list[str] = Field(default_factory=list)
    attempts: int = 0
    duplicates: int = 0
    dropped: int = 0


class InboxDelivery(_Model):
    """Input of the ``deliver_inbox_events`` activity."""

    route: InboxRoute
    events: list[ProviderEvent]


class DeliveryAttempt(_Model):
    """Result of the ``deliver_inbox_events`` activity: ``workflow_id`` is None when no
    transaction was found; ``finished`` when the one found had ended."""

    workflow_id: str | None = None
    delivered: list[str] = Field(default_factory=list)
    finished: bool = False


class SignalOutcome(StrEnum):
    """What signalling one event to a transaction workflow did."""

    ACCEPTED = "accepted"
    #: The workflow exists but has ended: the event can never matter.
    FINISHED = "finished"
    #: No workflow with this id (not started yet, or never).
    ABSENT = "absent"


def route_for(event: ProviderEvent) -> InboxRoute | None:
    """The route of a verified event, or None when it can never reach a momoflow
    transaction (a reference that is not one of our workflow ids, or no usable id)."""
    reference = event.external_reference
    if reference is not None:
        if parse_transaction_workflow_id(reference) is None:
            return None
        return InboxRoute(provider=event.provider, workflow_id=reference)
    transaction_id = event.provider_transaction_id
    if not transaction_id or not SAFE_ID.match(transaction_id):
        return None
    return InboxRoute(provider=event.provider, provider_transaction_id=transaction_id)


async def find_transaction(client: Client, route: InboxRoute) -> str | None:
    """The workflow id of the route's transaction: the reference itself, or a visibility
    query on the provider's transaction id (None when no workflow published it yet, or
    visibility lags). Raises :class:`RPCError` when Temporal cannot answer."""
    if route.workflow_id is not None:
        return route.workflow_id
    query = (
        f'{sa.PROVIDER_TRANSACTION.name} = "{route.provider_transaction_id}" '
        f'AND {sa.PROVIDER.name} = "{route.provider.value}"'
    )
    async for execution in client.list_workflows(query, limit=1):
        return execution.id
    return None


async def signal_transaction(
    client: Client, workflow_id: str, event: ProviderEvent
) -> SignalOutcome:
    """Signal ``provider_event`` to the transaction; a workflow that does not exist is
    told apart from one that has ended. Raises :class:`RPCError` for anything else."""
    try:
        await client.get_workflow_handle(workflow_id).signal(PROVIDER_EVENT_SIGNAL, event)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        return SignalOutcome.ACCEPTED
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return SignalOutcome.ABSENT
        raise
    return SignalOutcome.FINISHED


async def keep(
    client: Client,
    route: InboxRoute,
    event: ProviderEvent,
    *,
    horizon_s: int,
    task_queue: str,
    max_history_events: int = DEFAULT_MAX_HISTORY_EVENTS,
) -> str:
    """Keep ``event`` durably in its route's inbox (signal-with-start: a running inbox gets
    the signal, otherwise a new run starts, even after an earlier one ended). Returns the
    inbox's workflow id once Temporal has accepted the event; raises :class:`RPCError`
    when it has not."""
    inbox_id = webhook_inbox_workflow_id(route.provider, route.key)
    await client.start_workflow(
        WEBHOOK_INBOX_WORKFLOW,
        InboxInput(route=route, horizon_s=horizon_s, max_history_events=max_history_events),
        id=inbox_id,
        task_queue=task_queue,
        # A new run after an earlier one ended (delivered, or given up); a running inbox
        # simply gets the signal (signal-with-start).
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(sa.PROVIDER, route.provider.value)]
        ),
        start_signal=INBOX_SIGNAL,
        start_signal_args=[event],
    )
    return inbox_id
