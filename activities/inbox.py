"""The webhook inbox's one activity: find the transaction, signal it every kept event.

It talks to Temporal only (a visibility query and signals), so it runs on the workflows
task queue, which has no provider rate limit (like the reconciliation activities).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client

from momoflow.contract import DELIVER_INBOX_EVENTS_ACTIVITY
from momoflow.inbox import (
    DeliveryAttempt,
    InboxDelivery,
    SignalOutcome,
    find_transaction,
    signal_transaction,
)


class InboxActivities:
    """Temporal-side work of :class:`workflows.inbox.WebhookInboxWorkflow`.

    **Parameters:**

    * **client** - the worker's Temporal client (momoflow's encrypting data converter, so
      the signals it sends are encrypted like the gateway's).
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=DELIVER_INBOX_EVENTS_ACTIVITY)
    async def deliver_inbox_events(self, request: InboxDelivery) -> DeliveryAttempt:
        """Signal ``provider_event`` to the route's transaction with each event, in the
        order received. No workflow yet: nothing delivered (``workflow_id`` None). The
        transaction has ended: ``finished``. Temporal errors raise, and are retried."""
        workflow_id = await find_transaction(self._client, request.route)
        if workflow_id is None:
            return DeliveryAttempt()
        delivered: list[str] = []
        for event in request.events:
            outcome = await signal_transaction(self._client, workflow_id, event)
            if outcome is SignalOutcome.ABSENT:
                return DeliveryAttempt(delivered=delivered)
            if outcome is SignalOutcome.FINISHED:
                return DeliveryAttempt(workflow_id=workflow_id, delivered=delivered, finished=True)
            delivered.append(event.event_id)
        activity.logger.info(
            "delivered %d kept webhook event(s) to %s", len(delivered), workflow_id
        )
        return DeliveryAttempt(workflow_id=workflow_id, delivered=delivered)

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for a worker's registration."""
        return [self.deliver_inbox_events]
