"""Conflicting final events for one OPEN payout: the first final one wins.

Each test reaches a point where the payout workflow is busy (a create call held by the
sandbox, the final status read, a reconciliation read, a merchant notification being
retried). There the CaurisFlux sandbox settles the transfer (its own signed webhook) and the
test plays the provider with a validly signed webhook that says the opposite; while
reconciling, where the read that is out would itself settle a transfer settled meanwhile,
the test plays both webhooks. Both events reach
the open workflow; the outcome must be the first final one, and the sandbox's ledger and the
merchant's notifications must agree with it.

Each of these tests fails when the "already final" check of ``_vet_event``
(``workflows/base.py``) is removed. They run with signed final webhooks settling directly
(``confirm_final_webhooks`` off, a provider setting), where that check is what holds; with
confirmation on, a final webhook only asks for a status read, and the read decides.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowHandle

from momoflow.business_requests import PayoutRequest
from momoflow.contract import RECHECK_SIGNAL
from momoflow.ids import payout_workflow_id, workflow_task_queue
from momoflow.models import PayoutTimings, RecheckRequest
from momoflow.notifications import verify
from momoflow.sandbox.shared.serving import ThreadedServer
from tests.stack import (
    ACME_NOTIFY_SECRET,
    MERCHANT_HOST,
    TEST_TIMINGS,
    Stack,
    signed_caurisflux_webhook,
    wait_until,
)
from tests.test_payout_flow import executions, payout_body
from workflows.payout import PayoutWorkflow

#: The CaurisFlux sandbox never settles this number by itself: only the test does.
NEVER_SETTLES = "+221770000003"
FINAL = {"succeeded", "failed", "cancelled", "expired"}


@dataclass
class MerchantEndpoint:
    """A merchant's notification endpoint that answers 503 while ``down``."""

    url: str = ""
    down: bool = True
    refused: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def types(self, workflow_id: str) -> list[str]:
        with self.lock:
            return [e["type"] for e in self.received if e["data"]["workflow_id"] == workflow_id]


@pytest.fixture
def merchant() -> Iterator[MerchantEndpoint]:
    endpoint = MerchantEndpoint()

    async def receive(request: Request) -> Response:
        body = await request.body()
        verify(ACME_NOTIFY_SECRET, body, request.headers.get("momoflow-signature"), now=time.time())
        with endpoint.lock:
            if endpoint.down:
                endpoint.refused += 1
                return Response(status_code=503)
            endpoint.received.append(json.loads(body))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/events", receive, methods=["POST"])])
    with ThreadedServer(app, host=MERCHANT_HOST) as server:
        endpoint.url = f"{server.url}/events"
        yield endpoint


# --------------------------------------------------------------------------- helpers


def state_of(stack: Stack, reference: str) -> dict[str, Any]:
    with stack.gateway() as http:
        answer = http.get(f"/v1/payouts/{reference}")
    answer.raise_for_status()
    state: dict[str, Any] = answer.json()
    return state


def settle_at_sandbox(stack: Stack, transaction_id: str, outcome: str) -> None:
    """The provider settles the transfer for real and sends its own signed webhook; returns
    once that webhook was delivered (accepted by the gateway, so signalled)."""
    body: dict[str, Any] = {"status": outcome}
    if outcome == "failed":
        body["errorCode"] = "provider_error"
    with stack.sandbox() as http:
        http.post(f"/_sandbox/transactions/{transaction_id}/settle", json=body).raise_for_status()

    def delivered() -> bool:
        with stack.sandbox() as http:
            deliveries = http.get("/_sandbox/webhooks").json()["deliveries"]
        return any(
            d["transactionId"] == transaction_id
            and d["delivered"]
            and d["event"] in ("payout.success", "payout.failed")
            for d in deliveries
        )

    wait_until(delivered, timeout=20, what=f"the sandbox's {outcome} webhook to be delivered")


def send_opposite(stack: Stack, workflow_id: str, transaction_id: str, outcome: str) -> None:
    """Play the provider: a validly signed webhook saying ``outcome`` for the same payout."""
    data: dict[str, Any] = {
        "transactionId": transaction_id,
        "externalReference": workflow_id,
        "status": "completed" if outcome == "completed" else "failed",
        "amount": 50_000,
        "currency": "XOF",
    }
    if outcome == "failed":
        data["errorCode"] = "provider_error"
    event = "payout.success" if outcome == "completed" else "payout.failed"
    body, headers = signed_caurisflux_webhook({"event": event, "data": data})
    with stack.gateway(key=None) as http:
        answer = http.post("/webhooks/caurisflux", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def wait_absorbed(
    stack: Stack, reference: str, expected: str, ignored_event: str
) -> dict[str, Any]:
    """The payout's outcome once the second event was heard: either it was ignored
    ("already <expected>") or it overwrote the first outcome (the bug)."""
    note = f"ignored {ignored_event}: already {expected}"

    def settled() -> dict[str, Any] | None:
        state = state_of(stack, reference)
        if state["status"] not in FINAL:
            return None
        overwritten = state["status"] != expected
        return state if overwritten or any(note in e["note"] for e in state["timeline"]) else None

    state: dict[str, Any] = wait_until(settled, timeout=60, what=f"{reference} to absorb")
    return state


async def start_payout(
    stack: Stack, client: Client, reference: str, notify_url: str | None = None, **timings: Any
) -> WorkflowHandle[Any, Any]:
    """A payout started the way the gateway starts one, with its own short timings."""
    body = payout_body(reference, phone=NEVER_SETTLES)
    if notify_url:
        body["notify_url"] = notify_url
    request = PayoutRequest.model_validate(body)
    payout_input = request.to_input(
        merchant="acme",
        secret="test",
        requested_at=datetime.now(UTC),
        timings=PayoutTimings.model_validate({**TEST_TIMINGS, **timings}),
        # Signed final webhooks settle directly here (MOMOFLOW_CAURISFLUX__CONFIRM_PAYOUT_
        # WEBHOOKS off): what these tests hold is the "already final" check itself.
        confirm_final_webhooks=False,
    )
    payout_input.provider_callback_url = f"{stack.gateway_url}/webhooks/caurisflux"
    return await client.start_workflow(
        PayoutWorkflow.run,
        payout_input,
        id=payout_workflow_id("acme", reference),
        task_queue=workflow_task_queue("momoflow-test"),
    )


def hold_status_reads(stack: Stack) -> None:
    """The next status read is answered only after three 503s (about 7 s of retries)."""
    stack.fault(operation="payments.status", kind="error", status=503, count=3)


def ledger_status(stack: Stack, reference: str) -> str:
    entry = stack.ledger_entry(payout_workflow_id("acme", reference))
    assert entry is not None
    return str(entry["status"])


# --------------------------------------------------------------------------- tests


async def test_success_then_failure_during_a_create_call_held_by_the_provider(
    stack: Stack, client: Client, reference: str
) -> None:
    # The transfer executes, its answer is held past the client's timeout, and the re-sends
    # meet three 503s: the create call stays open for about ten seconds.
    stack.fault(operation="payouts.initiate", kind="timeout_after_execute", seconds=30, count=1)
    stack.fault(operation="payouts.initiate", kind="error", status=503, count=3)
    await start_payout(stack, client, reference)
    workflow_id = payout_workflow_id("acme", reference)
    entry = wait_until(lambda: stack.ledger_entry(workflow_id), timeout=30, what="the transfer")
    transaction_id = str(entry["transactionId"])

    settle_at_sandbox(stack, transaction_id, "completed")
    send_opposite(stack, workflow_id, transaction_id, "failed")
    assert state_of(stack, reference)["status"] == "submitting"  # both wait in the inbox

    final = wait_absorbed(stack, reference, "succeeded", "payout.failed")
    assert final["status"] == "succeeded"
    assert final["failure"] is None
    assert not any(e["status"] == "failed" for e in final["timeline"])
    assert executions(stack, reference) == 1
    assert ledger_status(stack, reference) == "completed"


async def test_failure_then_success_during_the_final_status_read(
    stack: Stack, client: Client, reference: str
) -> None:
    # One poll at the 3 s deadline, then the final read, which the provider holds.
    handle = await start_payout(stack, client, reference, settle_timeout_s=3, poll_schedule_s=[60])
    pending = wait_until(
        lambda: (s := state_of(stack, reference))["status"] == "pending" and s,
        timeout=30,
        what="pending",
    )
    stack.fault(operation="payments.status", kind="delay", seconds=0.1, count=1)
    hold_status_reads(stack)
    wait_until(
        lambda: state_of(stack, reference)["status_polls"] >= 2, timeout=30, what="the final read"
    )
    transaction_id = pending["provider_transaction_id"]

    settle_at_sandbox(stack, transaction_id, "failed")
    send_opposite(stack, handle.id, transaction_id, "completed")
    assert state_of(stack, reference)["status"] == "pending"  # the final read is still out

    final = wait_absorbed(stack, reference, "failed", "payout.success")
    assert final["status"] == "failed"
    assert final["failure"]["code"] == "provider_error"
    assert not any(e["status"] == "reconciling" for e in final["timeline"])
    assert ledger_status(stack, reference) == "failed"


async def test_success_then_failure_while_reconciling(
    stack: Stack, client: Client, reference: str
) -> None:
    handle = await start_payout(stack, client, reference, settle_timeout_s=2, poll_schedule_s=[1])
    reconciling = wait_until(
        lambda: (s := state_of(stack, reference))["status"] == "reconciling" and s,
        timeout=30,
        what="reconciling",
    )
    polls = reconciling["status_polls"]
    hold_status_reads(stack)
    await handle.signal(RECHECK_SIGNAL, RecheckRequest(requested_by="test"))
    wait_until(
        lambda: state_of(stack, reference)["status_polls"] > polls, timeout=20, what="the recheck"
    )
    transaction_id = reconciling["provider_transaction_id"]

    # The read comes back "pending" (the sandbox never settles this number), so both
    # events wait for the loop: played by the test, each validly signed.
    send_opposite(stack, handle.id, transaction_id, "completed")
    send_opposite(stack, handle.id, transaction_id, "failed")
    assert state_of(stack, reference)["status"] == "reconciling"

    final = wait_absorbed(stack, reference, "succeeded", "payout.failed")
    assert final["status"] == "succeeded"
    assert final["failure"] is None
    assert executions(stack, reference) == 1


async def test_failure_then_success_while_a_notification_is_being_retried(
    stack: Stack, client: Client, merchant: MerchantEndpoint, reference: str
) -> None:
    handle = await start_payout(
        stack, client, reference, notify_url=merchant.url, settle_timeout_s=2, poll_schedule_s=[1]
    )
    reconciling = wait_until(
        lambda: (s := state_of(stack, reference))["status"] == "reconciling" and s,
        timeout=30,
        what="reconciling",
    )
    wait_until(lambda: merchant.refused >= 1, timeout=30, what="a refused notification")
    polls = reconciling["status_polls"]
    hold_status_reads(stack)
    await handle.signal(RECHECK_SIGNAL, RecheckRequest(requested_by="test"))
    wait_until(
        lambda: state_of(stack, reference)["status_polls"] > polls, timeout=20, what="the recheck"
    )
    transaction_id = reconciling["provider_transaction_id"]

    send_opposite(stack, handle.id, transaction_id, "failed")
    send_opposite(stack, handle.id, transaction_id, "completed")
    (retried,) = state_of(stack, reference)["notifications"]
    assert (retried["event_type"], retried["status"]) == ("payout.reconciling", "pending")

    final = wait_absorbed(stack, reference, "failed", "payout.success")
    assert final["status"] == "failed"
    with merchant.lock:
        merchant.down = False
    wait_until(lambda: len(merchant.types(handle.id)) >= 2, timeout=90, what="both notifications")
    await handle.result()  # it ends once both are delivered
    assert sorted(merchant.types(handle.id)) == ["payout.failed", "payout.reconciling"]
    delivered = state_of(stack, reference)
    assert [n["event_type"] for n in delivered["notifications"]] == [
        "payout.reconciling",
        "payout.failed",
    ]
    assert delivered["status"] == "failed"
    assert executions(stack, reference) == 1
