"""The webhook inbox (``momoflow/inbox.py``, ``workflows/inbox.py``): a verified webhook
that cannot reach its transaction yet is kept before the gateway answers 2xx, delivered
once the transaction can be found, applied once however often it came, and given up
visibly at the horizon. Real Temporal server, real sandboxes, real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from momoflow import inbox
from momoflow.contract import PROVIDER_EVENT_SIGNAL, STATE_QUERY, WEBHOOK_INBOX_GAVE_UP
from momoflow.ids import payout_workflow_id, webhook_inbox_workflow_id, workflow_task_queue
from momoflow.inbox import InboxOutcome, InboxResult, InboxRoute, InboxState
from momoflow.models import PaymentStatus, ProviderEvent, ProviderName
from momoflow.money import Currency
from momoflow.processes import ManagedProcess, free_port, http_ready
from tests.stack import ACME_KEY, TEST_TIMINGS, Stack, signed_caurisflux_webhook, wait_until
from tests.test_payout_flow import payout_body, post_payout

#: A CaurisFlux number whose transfer stays ``processing`` and gets no final webhook: only
#: the test's own webhook can make such a payout succeed.
CAURISFLUX_STUCK = "+221771230003"
#: A MOBILE-PAY number whose transfer succeeds (the sandbox then sends its one webhook).
MOBILEPAY_SUCCEEDS = "+2250701231011"
#: The short horizon of the second gateway's inboxes.
SHORT_HORIZON_S = 4
PREFIX = "momoflow-test"


# ------------------------------------------------------------------------------ helpers


def _gateway(stack: Stack, name: str, env: dict[str, str]) -> Iterator[str]:
    """Another gateway on the session's Temporal server and worker, with other settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = ManagedProcess(
        name,
        [sys.executable, "-m", "momoflow.cli", "gateway", "--port", str(port)],
        log_path=stack.root / "logs" / f"{name}.log",
        env={**stack.env, **env, "MOMOFLOW_GATEWAY_PORT": str(port)},
        ready=http_ready(f"{url}/healthz"),
    ).start(timeout=60)
    try:
        wait_until(http_ready(f"{url}/readyz"), timeout=30, what=f"{name} ready")
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def slow_polls(stack: Stack) -> Iterator[str]:
    """A gateway whose payouts make no scheduled status read for ten minutes: a payout it
    starts can settle within a test only through a webhook."""
    timings = {**TEST_TIMINGS, "settle_timeout_s": 600, "poll_schedule_s": [600]}
    yield from _gateway(
        stack,
        "gateway-slow-polls",
        {
            "MOMOFLOW_PAYOUT_TIMINGS": json.dumps(timings),
            "MOMOFLOW_MOBILEPAY__POLL_SCHEDULE_S": "[600]",
        },
    )


@pytest.fixture(scope="module")
def short_horizon(stack: Stack) -> Iterator[str]:
    """A gateway whose inboxes give up after :data:`SHORT_HORIZON_S` seconds."""
    yield from _gateway(
        stack, "gateway-short-horizon", {"MOMOFLOW_WEBHOOK_INBOX_HORIZON_S": str(SHORT_HORIZON_S)}
    )


def caurisflux_success(
    workflow_id: str, *, amount: int = 50_000, delivery_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A signed CaurisFlux success for our reference, without CaurisFlux's own transaction
    id (as early as it can come: nobody knows that id yet)."""
    return signed_caurisflux_webhook(
        {
            "event": "payout.success",
            "data": {
                "externalReference": workflow_id,
                "status": "completed",
                "amount": amount,
                "currency": "XOF",
            },
        },
        delivery_id=delivery_id,
    )


def deliver(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=15) as http:
        return http.post("/webhooks/caurisflux", content=body, headers=headers)


async def inbox_state(handle: WorkflowHandle[Any, Any]) -> InboxState:
    state: InboxState = await handle.query(STATE_QUERY, result_type=InboxState)
    return state


async def until(check: Any, *, timeout: float, what: str) -> Any:
    """Await ``check()`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def events_signalled(client: Client, workflow_id: str, event_id: str) -> int:
    """How many ``provider_event`` signals in the workflow's history carry ``event_id``
    (payloads decrypted with the test client's codec)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    count = 0
    for event in history.events:
        if not event.HasField("workflow_execution_signaled_event_attributes"):
            continue
        attributes = event.workflow_execution_signaled_event_attributes
        if attributes.signal_name != PROVIDER_EVENT_SIGNAL:
            continue
        [decoded] = await client.data_converter.decode(attributes.input.payloads, [ProviderEvent])
        count += decoded.event_id == event_id
    return count


def notes(state: dict[str, Any]) -> list[str]:
    return [str(entry["note"]) for entry in state["timeline"]]


# ------------------------------------------------------------------------------ tests


async def test_mobilepay_webhook_that_beats_the_create_answer_is_kept_and_applied(
    stack: Stack, client: Client, slow_polls: str, reference: str
) -> None:
    """MOBILE-PAY executes the transfer, settles it and sends its one webhook (it never
    sends it again) while the answer to the create call is still held. The gateway cannot
    know the payout yet (its transaction id is published only once that answer arrives),
    so it keeps the event in the inbox and answers 2xx; the inbox delivers it once the
    payout is there, and the payout settles from the status read that webhook asked for.
    Scheduled reads are ten minutes away: only the webhook can settle it in time."""
    stack.fault("mobilepay", operation="transfers.local", kind="timeout_after_execute", seconds=2)
    body = payout_body(
        reference,
        phone=MOBILEPAY_SUCCEEDS,
        provider="mobilepay",
        country="CI",
        operator="orange_money",
        amount=25_000,
    )
    with httpx.Client(base_url=slow_polls, timeout=15) as http:
        answer = http.post(
            "/v1/payouts", json=body, headers={"Authorization": f"Bearer {ACME_KEY}"}
        )
    assert answer.status_code == 201, answer.text

    final = stack.wait_for_payout(reference, {"succeeded", "failed", "reconciling"}, timeout=60)

    assert final["status"] == "succeeded", final
    transaction_id = final["provider_transaction_id"]
    with stack.sandbox("mobilepay") as sandbox:
        deliveries = [
            d
            for d in sandbox.get("/_sandbox/webhooks").json()["deliveries"]
            if d["transactionId"] == transaction_id
        ]
    # The provider's only delivery was answered 2xx at once: no retry was needed.
    assert len(deliveries) == 1 and deliveries[0]["delivered"], deliveries
    assert deliveries[0]["attempts"] == 1 and 200 <= deliveries[0]["lastStatus"] < 300
    # It went through the inbox, which delivered it to this payout.
    handle = client.get_workflow_handle(
        webhook_inbox_workflow_id("mobilepay", transaction_id), result_type=InboxResult
    )
    result = await handle.result()
    assert result.outcome is InboxOutcome.DELIVERED
    assert result.workflow_id == final["workflow_id"] and len(result.delivered) == 1
    # And the payout settled from it: the read the (unsigned) webhook asked for.
    assert final["webhooks_received"] == 1
    # (MOBILE-PAY's status reads are walks of its list, shared by every pending payout.)
    assert notes(final)[-1] == "succeeded (read after an unverified webhook (list read))", notes(
        final
    )
    assert not any(note.startswith("poll") for note in notes(final)), notes(final)


async def test_caurisflux_webhook_for_a_payout_not_started_yet_is_delivered_when_it_starts(
    stack: Stack, client: Client, reference: str
) -> None:
    """A signed success for a reference whose workflow does not exist yet: kept (2xx), held
    while no workflow exists, then delivered when the payout starts. The payout hears it,
    and, a webhook being a hint, reads its status: the transfer stays ``processing`` at
    CaurisFlux, so the payout is not paid on the webhook's word."""
    workflow_id = payout_workflow_id("acme", reference)

    answer = deliver(stack.gateway_url, *caurisflux_success(workflow_id))

    assert answer.status_code == 200, answer.text
    inbox_id = webhook_inbox_workflow_id("caurisflux", workflow_id)
    assert answer.json() == {"status": "kept", "inbox": inbox_id}
    handle = client.get_workflow_handle(inbox_id, result_type=InboxResult)
    waiting = await until(
        lambda: _attempted(handle), timeout=15, what="a first look-up that finds nothing"
    )
    assert len(waiting.pending) == 1 and waiting.attempts >= 1

    post_payout(stack, payout_body(reference, phone=CAURISFLUX_STUCK))
    heard = wait_heard_and_read(stack, reference)

    assert heard["status"] == "pending", heard
    result = await handle.result()
    assert result.outcome is InboxOutcome.DELIVERED and result.workflow_id == workflow_id


#: What a payout notes when it hears a kept signed success (and asks for a status read).
HEARD = "signed payout.success: succeeded counts once a status read says so"


def wait_heard_and_read(stack: Stack, reference: str) -> dict[str, Any]:
    """The payout once it has heard the kept success and read its status for it."""

    def check() -> dict[str, Any] | None:
        with stack.gateway() as http:
            state: dict[str, Any] = http.get(f"/v1/payouts/{reference}").json()
        said = notes(state)
        read = "read to confirm a signed webhook: the provider still says "
        return state if HEARD in said and any(n.startswith(read) for n in said) else None

    heard: dict[str, Any] = wait_until(check, timeout=60, what="the kept success heard and read")
    return heard


async def _attempted(handle: WorkflowHandle[Any, Any]) -> InboxState | None:
    state = await inbox_state(handle)
    return state if "no workflow" in state.last_outcome else None


async def test_inbox_gives_up_at_its_horizon_visibly(
    stack: Stack, client: Client, short_horizon: str
) -> None:
    """A verified webhook for a reference nobody ever uses: kept until the horizon (here a
    few seconds), then the inbox fails with ``WebhookInboxGaveUp`` naming the route and the
    event, an error line in the worker's log, and operators find it by its search
    attributes."""
    workflow_id = payout_workflow_id("acme", f"NEVER-{uuid.uuid4().hex[:10]}")
    delivery_id = f"dlv-{uuid.uuid4().hex}"

    answer = deliver(short_horizon, *caurisflux_success(workflow_id, delivery_id=delivery_id))

    assert answer.status_code == 200 and answer.json()["status"] == "kept", answer.text
    inbox_id = webhook_inbox_workflow_id("caurisflux", workflow_id)
    handle = client.get_workflow_handle(inbox_id)
    started = time.monotonic()
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=60)
    assert time.monotonic() - started >= SHORT_HORIZON_S - 1
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == WEBHOOK_INBOX_GAVE_UP
    assert workflow_id in cause.message and delivery_id in cause.message
    assert "payout.success" in cause.message

    query = (
        "WorkflowType = 'WebhookInboxWorkflow' AND ExecutionStatus = 'Failed' AND "
        f"PaymentProvider = 'caurisflux' AND WorkflowId = '{inbox_id}'"
    )

    async def listed() -> list[str]:
        return [wf.id async for wf in client.list_workflows(query)]

    assert await until(listed, timeout=15, what="the failed inbox in visibility") == [inbox_id]
    worker = stack.processes["worker"]
    wait_until(
        lambda: any(
            "ERROR" in line and "webhook inbox gave up" in line and workflow_id in line
            for line in worker.tail(2000).splitlines()
        ),
        timeout=15,
        what="the give-up error line in the worker's log",
    )


async def test_the_same_webhook_kept_twice_is_applied_once(
    stack: Stack, client: Client, reference: str
) -> None:
    """The same delivery twice (a provider retry) before the payout exists: both answered
    2xx, the inbox keeps it once, and the payout's history holds one signal carrying it."""
    workflow_id = payout_workflow_id("acme", reference)
    delivery_id = f"dlv-{uuid.uuid4().hex}"
    body, headers = caurisflux_success(workflow_id, delivery_id=delivery_id)

    first, again = (
        deliver(stack.gateway_url, body, headers),
        deliver(stack.gateway_url, body, headers),
    )

    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == again.json()["status"] == "kept"
    handle = client.get_workflow_handle(
        webhook_inbox_workflow_id("caurisflux", workflow_id), result_type=InboxResult
    )

    async def both_seen() -> InboxState | None:
        state = await inbox_state(handle)
        return state if state.duplicates == 1 else None

    held = await until(both_seen, timeout=15, what="the duplicate counted")
    assert [e.event_id for e in held.pending] == [delivery_id]

    post_payout(stack, payout_body(reference, phone=CAURISFLUX_STUCK))
    heard = wait_heard_and_read(stack, reference)

    assert heard["status"] == "pending", heard
    result = await handle.result()
    assert result.delivered == [delivery_id] and result.duplicates == 1
    assert await events_signalled(client, workflow_id, delivery_id) == 1
    assert sum(n.startswith(HEARD) for n in notes(heard)) == 1


async def test_a_long_waiting_inbox_continues_as_new_and_still_delivers(
    stack: Stack, client: Client, reference: str
) -> None:
    """History stays bounded: past ``max_history_events`` the inbox continues as new with
    its events, and the next run delivers them once the payout starts."""
    workflow_id = payout_workflow_id("acme", reference)
    event = ProviderEvent(
        provider=ProviderName.CAURISFLUX,
        event_id=f"dlv-{uuid.uuid4().hex}",
        event_type="payout.success",
        external_reference=workflow_id,
        status=PaymentStatus.SUCCEEDED,
        raw_status="completed",
        amount=50_000,
        currency=Currency.XOF,
    )
    inbox_id = await inbox.keep(
        client,
        InboxRoute(provider=ProviderName.CAURISFLUX, workflow_id=workflow_id),
        event,
        horizon_s=600,
        task_queue=workflow_task_queue(PREFIX),
        max_history_events=20,
    )

    async def continued() -> bool:
        query = f"WorkflowId = '{inbox_id}'"
        return len([wf async for wf in client.list_workflows(query)]) > 1

    await until(continued, timeout=30, what="a second run")

    post_payout(stack, payout_body(reference, phone=CAURISFLUX_STUCK))
    heard = wait_heard_and_read(stack, reference)

    assert heard["status"] == "pending", heard
    result = await client.get_workflow_handle(inbox_id, result_type=InboxResult).result()
    assert result.delivered == [event.event_id] and result.attempts >= 3
