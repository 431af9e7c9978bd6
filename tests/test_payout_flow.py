"""Payouts end to end: gateway → Temporal → worker → CaurisFlux sandbox → webhook → gateway.

Everything is real: a Temporal dev server, the sandbox over HTTP on 127.0.0.1, the gateway
and worker processes. The sandbox's ledger says how many times money really moved.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowHandle

from momoflow.business_requests import PayoutRequest
from momoflow.ids import payout_workflow_id, status_reader_workflow_id, workflow_task_queue
from momoflow.models import PayoutState, PayoutTimings, ProviderName, TransactionStatus
from tests.stack import TEST_TIMINGS, Stack, signed_caurisflux_webhook, wait_until
from workflows.payout import PayoutWorkflow

FINAL = {"succeeded", "failed", "cancelled", "expired"}


def payout_body(reference: str, phone: str = "+221771230001", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": reference,
        "provider": "caurisflux",
        "country": "SN",
        "operator": "wave",
        "recipient": {"phone": phone, "name": "Awa Diallo"},
        "amount": 50_000,
        "currency": "XOF",
        "description": "test payout",
    }
    body.update(overrides)
    return body


def post_payout(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    with stack.gateway() as http:
        answer = http.post("/v1/payouts", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def wait_confirming_read(stack: Stack, reference: str) -> dict[str, Any]:
    """The payout once a signed final webhook made it read its status, and the provider
    still said it was not final."""

    def check() -> dict[str, Any] | None:
        with stack.gateway() as http:
            state: dict[str, Any] = http.get(f"/v1/payouts/{reference}").json()
        notes = " ".join(e["note"] for e in state["timeline"])
        return (
            state if "read to confirm a signed webhook: the provider still says" in notes else None
        )

    found: dict[str, Any] = wait_until(check, timeout=30, what="the confirming read")
    return found


def executions(stack: Stack, reference: str, merchant: str = "acme") -> int:
    entry = stack.ledger_entry(payout_workflow_id(merchant, reference))
    return 0 if entry is None else int(entry["executions"])


def test_payout_succeeds_by_webhook(stack: Stack, reference: str) -> None:
    created = post_payout(stack, payout_body(reference))
    assert created["status"] == "created"
    assert created["workflow_id"] == f"payout-acme-{reference}"
    assert created["recipient_phone_masked"] == "+221*****0001"

    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["webhooks_received"] >= 1
    # The signed webhook made the payout read its status, and the read settled it.
    notes = [entry["note"] for entry in final["timeline"]]
    assert any(n.startswith("signed payout.success: succeeded counts once") for n in notes)
    assert notes[-1] == "succeeded (read to confirm a signed webhook)", notes
    assert final["fees"] == 750 and final["net_amount"] == 49_250
    assert final["provider_reference"]
    assert executions(stack, reference) == 1


def test_a_webhook_that_beats_the_create_answer_is_confirmed_at_once(
    stack: Stack, reference: str
) -> None:
    """The provider executes the transfer and sends its webhook, and only then answers the
    create call (2 s later). The webhook waits in the payout until the answer is in, then
    its confirming read is made at once: the payout is settled by that read, not by the
    scheduled poll (before the ``read-asked-before-a-wait`` patch it waited for the poll)."""
    stack.fault(operation="payouts.initiate", kind="timeout_after_execute", seconds=2, count=1)
    post_payout(stack, payout_body(reference))

    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    notes = [entry["note"] for entry in final["timeline"]]
    accepted = next(i for i, n in enumerate(notes) if n.startswith("accepted by caurisflux"))
    signed = next(i for i, n in enumerate(notes) if n.startswith("signed payout.success"))
    # The webhook arrived during the create call; it is applied once the answer is in.
    assert signed > accepted, notes
    assert notes[-1] == "succeeded (read to confirm a signed webhook)", notes
    assert executions(stack, reference) == 1


def test_payout_succeeds_by_polling_when_webhooks_are_lost(stack: Stack, reference: str) -> None:
    stack.fault(kind="drop_webhooks", count=2)

    post_payout(stack, payout_body(reference))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["webhooks_received"] == 0
    assert final["status_polls"] >= 1
    assert executions(stack, reference) == 1


def test_declined_payout_fails_with_the_providers_reason(stack: Stack, reference: str) -> None:
    post_payout(stack, payout_body(reference, phone="+221770000000"))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "failed"
    assert final["failure"]["code"] == "invalid_recipient"
    assert final["failure"]["message"]


def test_insufficient_balance_is_a_final_decline_with_nothing_paid(
    stack: Stack, reference: str
) -> None:
    stack.configure_sandbox(balance=0)
    try:
        post_payout(stack, payout_body(reference))
        final = stack.wait_for_payout(reference, FINAL)
    finally:
        stack.configure_sandbox(balance=100_000_000)

    assert final["status"] == "failed"
    assert final["failure"]["code"] == "insufficient_balance"
    assert final["provider_transaction_id"] is None
    assert executions(stack, reference) == 0


def test_provider_5xx_is_retried_with_the_same_key_until_success(
    stack: Stack, reference: str
) -> None:
    stack.fault(operation="payouts.initiate", kind="error", status=503, count=2)

    post_payout(stack, payout_body(reference))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["submit_attempts"] == 3
    assert executions(stack, reference) == 1
    statuses = [
        r["statusCode"]
        for r in stack.sandbox_requests()
        if r["path"].endswith("/payouts/initiate")
        and r["idempotencyKey"] == expected_key(reference)
    ]
    assert statuses == [503, 503, 201]


def expected_key(reference: str) -> str:
    from momoflow.ids import idempotency_key

    return idempotency_key(payout_workflow_id("acme", reference), "initiate_payout")


def test_timeout_after_the_provider_executed_pays_exactly_once(
    stack: Stack, reference: str
) -> None:
    stack.fault(operation="payouts.initiate", kind="timeout_after_execute", seconds=30, count=1)

    post_payout(stack, payout_body(reference))
    final = stack.wait_for_payout(reference, FINAL, timeout=90)

    assert final["status"] == "succeeded"
    assert final["submit_attempts"] >= 2
    assert executions(stack, reference) == 1


def test_duplicate_reordered_and_late_webhooks_change_nothing(stack: Stack, reference: str) -> None:
    stack.fault(kind="duplicate_webhooks", count=4)
    stack.fault(kind="reorder_webhooks", count=1)

    post_payout(stack, payout_body(reference))
    final = stack.wait_for_payout(reference, FINAL)
    assert final["status"] == "succeeded"

    # A late, validly signed "failed" event for the finished payout is absorbed.
    body, headers = signed_caurisflux_webhook(
        {
            "event": "payout.failed",
            "data": {
                "transactionId": final["provider_transaction_id"],
                "externalReference": final["workflow_id"],
                "status": "failed",
                "errorCode": "provider_error",
            },
        }
    )
    with stack.gateway(key=None) as http:
        answer = http.post("/webhooks/caurisflux", content=body, headers=headers)
    assert answer.status_code == 200
    again = stack.wait_for_payout(reference, FINAL)
    assert again["status"] == "succeeded"
    assert again["failure"] is None
    assert executions(stack, reference) == 1


def test_bad_webhook_signature_is_refused_and_changes_nothing(stack: Stack, reference: str) -> None:
    post_payout(stack, payout_body(reference, phone="+221770000003"))  # never settles
    pending = stack.wait_for_payout(reference, {"pending"})
    body, headers = signed_caurisflux_webhook(
        {
            "event": "payout.success",
            "data": {
                "transactionId": pending["provider_transaction_id"],
                "externalReference": pending["workflow_id"],
                "status": "completed",
            },
        },
        secret="not-the-secret",
    )
    with stack.gateway(key=None) as http:
        answer = http.post("/webhooks/caurisflux", content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "webhook_mismatch"
    with stack.gateway() as http:
        state = http.get(f"/v1/payouts/{reference}").json()
    assert state["status"] == "pending"
    assert state["webhooks_received"] <= pending["webhooks_received"] + 1


def test_a_signed_success_the_provider_still_shows_pending_completes_nothing(
    stack: Stack, reference: str
) -> None:
    """A webhook is a hint, the provider's API the truth: a validly signed success for a
    payout the provider still shows processing makes it read its status, and that read
    (processing) decides. Nothing of the webhook is taken, not even its reference."""
    post_payout(stack, payout_body(reference, phone="+221770000003"))
    pending = stack.wait_for_payout(reference, {"pending"})
    body, headers = signed_caurisflux_webhook(
        {
            "event": "payout.success",
            "data": {
                "transactionId": pending["provider_transaction_id"],
                "externalReference": pending["workflow_id"],
                "providerTransactionId": "WAVE-PAY-777",
                "status": "completed",
                "amount": 50_000,
                "currency": "XOF",
            },
        }
    )
    with stack.gateway(key=None) as http:
        assert http.post("/webhooks/caurisflux", content=body, headers=headers).status_code == 200

    state = wait_confirming_read(stack, reference)
    assert state["status"] == "pending" and state["completed_at"] is None
    assert state["provider_reference"] != "WAVE-PAY-777"
    assert executions(stack, reference) == 1


def test_webhook_with_a_different_amount_is_never_succeeded(stack: Stack, reference: str) -> None:
    post_payout(stack, payout_body(reference, phone="+221770000003"))
    pending = stack.wait_for_payout(reference, {"pending"})
    body, headers = signed_caurisflux_webhook(
        {
            "event": "payout.success",
            "data": {
                "transactionId": pending["provider_transaction_id"],
                "externalReference": pending["workflow_id"],
                "status": "completed",
                "amount": 1,
                "currency": "XOF",
            },
        }
    )
    with stack.gateway(key=None) as http:
        assert http.post("/webhooks/caurisflux", content=body, headers=headers).status_code == 200

    # A signed final webhook is a hint: the status read decides, and it says "processing"
    # for the 50,000 asked. The 1 XOF of the webhook is never recorded, let alone paid.
    state = wait_confirming_read(stack, reference)
    assert state["status"] in ("pending", "reconciling"), state
    assert state["provider_amount"] in (None, 50_000)
    assert state["completed_at"] is None
    assert executions(stack, reference) == 1


def test_payout_with_no_final_answer_goes_to_reconciling_never_failed(
    stack: Stack, reference: str
) -> None:
    post_payout(stack, payout_body(reference, phone="+221770000003"))
    state = stack.wait_for_payout(reference, {"reconciling", *FINAL}, timeout=90)

    assert state["status"] == "reconciling"
    assert state["failure"]["code"] == "settlement_unknown"
    assert state["completed_at"] is None
    assert any("final read" in e["note"] for e in state["timeline"]) or state["status_polls"] >= 2
    assert executions(stack, reference) == 1


def test_same_reference_returns_the_existing_payout_and_pays_once(
    stack: Stack, reference: str
) -> None:
    body = payout_body(reference)
    first = post_payout(stack, body)
    with stack.gateway() as http:
        again = http.post("/v1/payouts", json=body)
        different = http.post("/v1/payouts", json={**body, "amount": 60_000})
    assert again.status_code == 200
    assert again.json()["workflow_id"] == first["workflow_id"]
    assert different.status_code == 409
    assert different.json()["error"] == "reference_conflict"

    stack.wait_for_payout(reference, FINAL)
    with stack.gateway() as http:
        after = http.post("/v1/payouts", json=body)
    assert after.status_code == 200
    assert after.json()["status"] == "succeeded"
    assert executions(stack, reference) == 1


async def test_payout_survives_worker_crash_mid_create(
    stack: Stack, client: Client, reference: str
) -> None:
    prefix = f"crash-{uuid.uuid4().hex[:8]}"
    first = stack.start_worker(f"{prefix}-a", prefix=prefix)
    stack.fault(operation="payouts.initiate", kind="timeout_after_execute", seconds=60, count=1)
    workflow_id = payout_workflow_id("acme", reference)
    request = PayoutRequest.model_validate(payout_body(reference))
    payout_input = request.to_input(
        merchant="acme",
        secret="test",
        requested_at=datetime.now(UTC),
        timings=PayoutTimings.model_validate(TEST_TIMINGS),
    )
    payout_input.provider_callback_url = f"{stack.gateway_url}/webhooks/caurisflux"
    handle = await client.start_workflow(
        PayoutWorkflow.run,
        payout_input,
        id=workflow_id,
        task_queue=workflow_task_queue(prefix),
    )
    # The provider has executed the transfer, but its answer never reaches the worker.
    wait_until(lambda: stack.ledger_entry(workflow_id), timeout=30, what="the transfer")
    first.kill()

    second = stack.start_worker(f"{prefix}-b", prefix=prefix)
    try:
        result: PayoutState = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        second.stop()

    assert result.status is TransactionStatus.SUCCEEDED
    assert result.submit_attempts >= 2
    assert executions(stack, reference) == 1


async def test_mobilepay_reads_resume_soon_after_a_worker_dies_during_a_list_read(
    stack: Stack, client: Client, reference: str
) -> None:
    """MOBILE-PAY's status reads are one shared list read (``StatusReaderWorkflow``). A
    worker killed while that read is in flight is noticed by its missing heartbeats, after
    30 s, and the read is made again on the next worker: MOBILE-PAY's payouts wait seconds,
    not the read's whole five-minute timeout."""
    prefix = f"crash-{uuid.uuid4().hex[:8]}"

    async def start(ref: str) -> WorkflowHandle[Any, PayoutState]:
        body = payout_body(
            ref, phone="+2250701231001", provider="mobilepay", country="CI", operator="wave"
        )
        payout_input = PayoutRequest.model_validate(body).to_input(
            merchant="acme",
            secret="test",
            requested_at=datetime.now(UTC),
            timings=PayoutTimings.model_validate(TEST_TIMINGS),
        )
        return await client.start_workflow(
            PayoutWorkflow.run,
            payout_input,
            id=payout_workflow_id("acme", ref),
            task_queue=workflow_task_queue(prefix),
        )

    def list_read_in_flight() -> bool:
        with stack.sandbox("mobilepay") as http:
            return not http.get("/_sandbox/faults").json()["faults"]

    first = stack.start_worker(f"{prefix}-a", prefix=prefix)
    second = None
    reader = client.get_workflow_handle(status_reader_workflow_id(ProviderName.MOBILEPAY, prefix))
    try:
        # A first payout: the reader learns the plan's budget from a read that succeeds (a
        # reader that never read paces itself to the smallest plan).
        warm = await start(f"{reference}-warm")
        assert (await asyncio.wait_for(warm.result(), timeout=60)).status.value == "succeeded"
        # The next list read is held 2.5 s (under the adapter's 3 s timeout); the sandbox
        # takes the fault off its list as that read arrives, and the worker dies then.
        stack.fault("mobilepay", operation="transactions.list", kind="delay", seconds=2.5)
        handle = await start(reference)
        wait_until(list_read_in_flight, timeout=60, what="the list read", every=0.05)
        first.kill()
        second = stack.start_worker(f"{prefix}-b", prefix=prefix)
        result = await asyncio.wait_for(handle.result(), timeout=120)
    finally:
        if second is not None:
            second.stop()
        first.stop()
        await reader.terminate("test over")

    assert result.status is TransactionStatus.SUCCEEDED
    ledger = stack.ledger_entry(payout_workflow_id("acme", reference), provider="mobilepay")
    assert ledger is not None and int(ledger["executions"]) == 1


def test_rate_limited_create_waits_for_retry_after_then_pays_once(
    stack: Stack, reference: str
) -> None:
    stack.fault(operation="payouts.initiate", kind="error", status=429, seconds=3, count=1)

    post_payout(stack, payout_body(reference))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded"
    assert final["submit_attempts"] == 2
    calls = [
        r
        for r in stack.sandbox_requests()
        if r["path"].endswith("/payouts/initiate")
        and r["idempotencyKey"] == expected_key(reference)
    ]
    assert [c["statusCode"] for c in calls] == [429, 201]
    waited = datetime.fromisoformat(calls[1]["at"]) - datetime.fromisoformat(calls[0]["at"])
    # Temporal's own back-off would retry after 1 s; the provider asked for 3 s.
    assert waited.total_seconds() >= 2.9
    assert executions(stack, reference) == 1


async def test_payouts_are_findable_by_search_attributes(
    stack: Stack, client: Client, reference: str
) -> None:
    post_payout(stack, payout_body(reference, phone="+221770000000"))
    stack.wait_for_payout(reference, FINAL)

    query = (
        f'MerchantId = "acme" AND MerchantReference = "{reference}" AND '
        'PaymentStatus = "failed" AND PaymentProvider = "caurisflux" AND '
        'PaymentCountry = "SN" AND PaymentAmount = 50000 AND PaymentDirection = "payout"'
    )

    async def found() -> list[str]:
        return [wf.id async for wf in client.list_workflows(query)]

    deadline = asyncio.get_running_loop().time() + 20
    ids: list[str] = []
    while asyncio.get_running_loop().time() < deadline and not ids:
        ids = await found()
        if not ids:
            await asyncio.sleep(0.3)  # visibility is eventually consistent
    assert ids == [payout_workflow_id("acme", reference)]


def test_refusal_after_an_unknown_attempt_is_read_before_anything_is_final(
    stack: Stack, reference: str
) -> None:
    """The first create executes but its answer is lost; the re-send is refused (400). The
    refusal proves nothing: NovaSend's record, read by our reference, shows the payout."""
    for operation in ("payout.wallet", "payout.direct"):
        stack.fault("novasend", operation=operation, kind="timeout_after_execute", seconds=10)
    for operation in ("payout.wallet", "payout.direct"):
        stack.fault("novasend", operation=operation, kind="error", status=400)
    body = payout_body(
        reference, phone="+2250701231015", provider="novasend", country="CI", operator="wave"
    )
    post_payout(stack, body)
    final = stack.wait_for_payout(reference, {"reconciling", *FINAL}, timeout=90)

    assert final["status"] == "succeeded", final["failure"]
    assert final["submit_attempts"] == 0  # no create answer: the read found it
    assert any("refused" in e["note"] for e in final["timeline"])
    entry = stack.ledger_entry(payout_workflow_id("acme", reference), "novasend")
    assert entry is not None and entry["executions"] == 1


def test_refusal_after_an_unknown_attempt_without_a_readable_record_is_reconciling(
    stack: Stack, reference: str
) -> None:
    """CaurisFlux cannot be read without its id: a 400 after a 503 is ``reconciling``."""
    stack.fault(operation="payouts.initiate", kind="error", status=503, count=1)
    stack.fault(operation="payouts.initiate", kind="error", status=400, count=1)
    post_payout(stack, payout_body(reference))
    final = stack.wait_for_payout(reference, {"reconciling", *FINAL}, timeout=60)

    assert final["status"] == "reconciling"
    assert final["failure"]["code"] == "create_outcome_unknown"
    assert "could not be read" in final["failure"]["message"]
    assert executions(stack, reference) == 0


def test_a_refusal_at_the_first_attempt_is_still_failed(stack: Stack, reference: str) -> None:
    stack.fault(operation="payouts.initiate", kind="error", status=400, count=1)
    post_payout(stack, payout_body(reference))
    final = stack.wait_for_payout(reference, {"reconciling", *FINAL}, timeout=60)

    assert final["status"] == "failed"
    assert executions(stack, reference) == 0
