"""Payin refunds end to end: gateway → RefundWorkflow → NovaSend sandbox → signed
``refund.completed`` webhook → gateway → workflow, and the sandbox's ledger says how many
times money went back.

The deadlines (48 h settle, 7 days of reconciling) run on Temporal's time-skipping test
server, against the same NovaSend sandbox.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.providers import ProviderActivities
from momoflow.ids import (
    payin_workflow_id,
    provider_task_queue,
    refund_workflow_id,
    workflow_task_queue,
)
from momoflow.models import (
    PaymentStatus,
    ProviderEvent,
    ProviderName,
    RefundState,
    RefundWorkflowInput,
    TransactionStatus,
)
from momoflow.money import Country, Currency
from momoflow.processes import find_executable
from momoflow.providers.registry import open_providers
from momoflow.settings import CodecSettings, NovaSendSettings, Settings
from momoflow.temporal import data_converter, register_search_attributes
from tests import test_payin_flow
from tests.stack import ACME_KEY, GLOBEX_KEY, Stack, record_activities, wait_until
from tests.test_payin_flow import (
    MerchantEndpoint,
    payin_body,
    post_payin,
    wait_payin,
)
from workflows.refund import RefundWorkflow

#: The payin tests' merchant endpoint (a verifying notification receiver), as a fixture here.
merchant = test_payin_flow.merchant

REFUND_FINAL = {"succeeded", "failed", "reconciling"}
PAYIN_FINAL = {"succeeded", "failed", "declined", "expired", "late_succeeded", "reconciling"}


def post_refund(
    stack: Stack, reference: str, expected: int, *, key: str | None = None, **body: Any
) -> dict[str, Any]:
    with stack.gateway(key or ACME_KEY) as http:
        answer = http.post(f"/v1/payins/{reference}/refund", json=body or {"reason": "cancelled"})
    assert answer.status_code == expected, answer.text
    result: dict[str, Any] = answer.json()
    return result


def wait_refund(stack: Stack, reference: str, statuses: set[str]) -> dict[str, Any]:
    with stack.gateway() as http:

        def check() -> dict[str, Any] | None:
            answer = http.get(f"/v1/payins/{reference}/refund")
            if answer.status_code == 200 and answer.json()["status"] in statuses:
                state: dict[str, Any] = answer.json()
                return state
            return None

        # 90 s: a webhook that arrives before the refund's id is searchable is retried by
        # the sandbox after 60 s.
        result: dict[str, Any] = wait_until(check, timeout=90, what=f"refund of {reference}")
        return result


def succeeded_novasend_payin(stack: Stack, reference: str, **extra: Any) -> dict[str, Any]:
    post_payin(stack, payin_body(reference, "novasend", "direct", "+2250701231001", **extra))
    payin = wait_payin(stack, reference, PAYIN_FINAL)
    assert payin["status"] == "succeeded", payin["timeline"]
    return payin


def refund_calls(stack: Stack, reference: str) -> list[dict[str, Any]]:
    """The refund requests the NovaSend sandbox received for this payin."""
    path = f"/v1/payin/{payin_workflow_id('acme', reference)}/refund"
    return [r for r in stack.sandbox_requests("novasend") if r["path"] == path]


# --------------------------------------------------------------------------- through the gateway


def test_novasend_payin_is_refunded_once_and_the_merchant_is_notified(
    stack: Stack, merchant: MerchantEndpoint, reference: str
) -> None:
    succeeded_novasend_payin(stack, reference, notify_url=merchant.url)

    created = post_refund(stack, reference, 201, reason="order cancelled by the customer")
    refund_id = refund_workflow_id(payin_workflow_id("acme", reference))
    assert created["workflow_id"] == refund_id
    assert (created["status"], created["reference"]) == ("submitting", reference)
    assert (created["amount"], created["currency"]) == (10_000, "XOF")

    final = wait_refund(stack, reference, REFUND_FINAL)
    assert final["status"] == "succeeded", final["timeline"]
    assert final["provider_transaction_id"].startswith("rf_")
    assert final["failure"] is None
    assert any("webhook refund.completed" in e["note"] for e in final["timeline"])

    again = post_refund(stack, reference, 200, reason="asked twice")
    assert again["workflow_id"] == refund_id
    assert again["status"] == "succeeded"
    assert again["reason"] == "order cancelled by the customer"

    entry = stack.ledger_entry(refund_id, provider="novasend")
    assert entry is not None
    assert (entry["kind"], entry["executions"], entry["amount"]) == ("refund", 1, 10_000)
    assert len(refund_calls(stack, reference)) == 1

    # The payin's notify_url hears about its refund too.
    events = wait_until(lambda: merchant.events(refund_id), timeout=30, what="notification")
    assert [e["type"] for e in events] == ["refund.succeeded"]
    assert events[0]["data"]["provider_transaction_id"] == final["provider_transaction_id"]

    # Another merchant cannot see or refund this payin.
    post_refund(stack, reference, 404, key=GLOBEX_KEY)
    with stack.gateway(GLOBEX_KEY) as http:
        assert http.get(f"/v1/payins/{reference}/refund").status_code == 404


def test_caurisflux_payin_refund_names_the_manual_process(stack: Stack, reference: str) -> None:
    post_payin(stack, payin_body(reference, "caurisflux", "checkout", "+221771231011"))
    assert wait_payin(stack, reference, PAYIN_FINAL)["status"] == "succeeded"

    refused = post_refund(stack, reference, 422)

    assert refused["error"] == "refund_not_supported"
    assert "support@cauris-pay.com" in refused["message"]
    with stack.gateway() as http:
        assert http.get(f"/v1/payins/{reference}/refund").status_code == 404


def test_refund_of_an_unknown_payin_is_404(stack: Stack, reference: str) -> None:
    assert post_refund(stack, reference, 404)["error"] == "not_found"
    assert post_refund(stack, "not a reference", 404)["error"] == "not_found"
    with stack.gateway() as http:
        assert http.get(f"/v1/payins/{reference}/refund").status_code == 404


def test_failed_payin_is_not_refundable_and_nothing_is_sent(stack: Stack, reference: str) -> None:
    post_payin(stack, payin_body(reference, "novasend", "direct", "+2250701230001"))
    assert wait_payin(stack, reference, PAYIN_FINAL)["status"] == "failed"

    refused = post_refund(stack, reference, 409)

    assert refused["error"] == "payin_not_refundable"
    assert "failed" in refused["message"]
    assert refund_calls(stack, reference) == []


def test_invalid_refund_request_names_the_field(stack: Stack, reference: str) -> None:
    succeeded_novasend_payin(stack, reference)

    for body in ({"reason": "   "}, {"reason": "x" * 201}, {"reason": "ok", "amount": 5}):
        problems = post_refund(stack, reference, 422, **body)["problems"]
        assert problems and problems[0]["field"] in ("reason", "amount")
    assert refund_calls(stack, reference) == []


# --------------------------------------------------------------------------- deadlines


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def time_skipping(stack: Stack) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """A time-skipping Temporal with a RefundWorkflow worker that calls the real NovaSend
    sandbox. The sandbox's webhooks go to the stack's gateway, which cannot find these
    workflows: here a refund never hears its final webhook."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_executable("temporal-test-server"),
        data_converter=data_converter(CodecSettings()),
    )
    async with env:
        await register_search_attributes(env.client, "default")
        prefix = f"ts-{uuid.uuid4().hex[:8]}"
        settings = Settings(
            env="test",
            providers=[ProviderName.NOVASEND],
            novasend=NovaSendSettings(base_url=stack.sandbox_urls["novasend"], timeout_s=3),
        )
        async with open_providers(settings) as providers:
            activities = ProviderActivities(providers)
            async with (
                record_activities(stack) as records,
                Worker(
                    env.client,
                    task_queue=workflow_task_queue(prefix),
                    workflows=[RefundWorkflow],
                    activities=records,
                ),
                Worker(
                    env.client,
                    task_queue=provider_task_queue(ProviderName.NOVASEND, prefix),
                    activities=[activities.refund_payin],
                ),
            ):
                yield env, prefix


async def _start_refund(
    client: Client, prefix: str, reference: str, payin: dict[str, Any], *, workflow_id: str
) -> WorkflowHandle[Any, RefundState]:
    payin_id = payin_workflow_id("acme", reference)
    return await client.start_workflow(
        RefundWorkflow.run,
        RefundWorkflowInput(
            merchant="acme",
            payin_reference=reference,
            payin_workflow_id=payin_id,
            provider=ProviderName.NOVASEND,
            country=Country.CI,
            provider_transaction_id=payin["provider_transaction_id"],
            amount=10_000,
            currency=Currency.XOF,
            reason="test refund",
            requested_at=datetime.now(UTC),
        ),
        id=workflow_id,
        task_queue=workflow_task_queue(prefix),
    )


async def test_refund_without_a_final_webhook_reconciles_at_48_hours_then_closes(
    time_skipping: tuple[WorkflowEnvironment, str], stack: Stack, reference: str
) -> None:
    env, prefix = time_skipping
    payin = succeeded_novasend_payin(stack, reference)
    refund_id = refund_workflow_id(payin_workflow_id("acme", reference))
    handle = await _start_refund(env.client, prefix, reference, payin, workflow_id=refund_id)

    await env.sleep(timedelta(hours=47))
    state = await handle.query(RefundWorkflow.state)
    assert state.status is TransactionStatus.PENDING
    assert state.provider_transaction_id and state.provider_transaction_id.startswith("rf_")

    await env.sleep(timedelta(hours=2))
    state = await handle.query(RefundWorkflow.state)
    assert state.status is TransactionStatus.RECONCILING
    assert state.failure is not None and state.failure.code == "refund_outcome_unknown"
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    await env.sleep(timedelta(days=7, hours=1))
    result = await handle.result()
    assert result.status is TransactionStatus.RECONCILING
    entry = stack.ledger_entry(refund_id, provider="novasend")
    assert entry is not None and entry["executions"] == 1
    replay = await _replayer().replay_workflow(await handle.fetch_history())
    assert replay.replay_failure is None


async def test_refund_the_provider_already_holds_goes_to_reconciling_not_failed(
    time_skipping: tuple[WorkflowEnvironment, str], stack: Stack, reference: str
) -> None:
    env, prefix = time_skipping
    payin = succeeded_novasend_payin(stack, reference)
    post_refund(stack, reference, 201)
    assert wait_refund(stack, reference, REFUND_FINAL)["status"] == "succeeded"

    # Another refund of the same payin (another id, so another key): NovaSend says
    # "already refunded", which may be our own refund whose answer was lost.
    handle = await _start_refund(
        env.client, prefix, reference, payin, workflow_id=f"refund-other-{reference}"
    )
    await env.sleep(timedelta(minutes=1))
    state = await handle.query(RefundWorkflow.state)

    assert state.status is TransactionStatus.RECONCILING
    assert state.failure is not None
    assert state.failure.provider_code == "transaction_already_refunded"
    assert len(refund_calls(stack, reference)) == 2


async def test_refund_the_provider_refuses_fails_with_its_reason(
    time_skipping: tuple[WorkflowEnvironment, str], stack: Stack, reference: str
) -> None:
    env, prefix = time_skipping
    post_payin(stack, payin_body(reference, "novasend", "direct", "+2250701230001"))
    payin = wait_payin(stack, reference, PAYIN_FINAL)
    assert payin["status"] == "failed"

    handle = await _start_refund(
        env.client,
        prefix,
        reference,
        payin,
        workflow_id=refund_workflow_id(payin_workflow_id("acme", reference)),
    )
    result = await handle.result()

    assert result.status is TransactionStatus.FAILED
    assert result.failure is not None
    assert result.failure.provider_code == "transaction_not_refundable"
    assert result.provider_transaction_id is None


async def test_a_refund_webhook_for_another_amount_is_reconciling_never_succeeded(
    time_skipping: tuple[WorkflowEnvironment, str], stack: Stack, reference: str
) -> None:
    env, prefix = time_skipping
    payin = succeeded_novasend_payin(stack, reference)
    refund_id = refund_workflow_id(payin_workflow_id("acme", reference))
    handle = await _start_refund(env.client, prefix, reference, payin, workflow_id=refund_id)
    await env.sleep(timedelta(minutes=1))
    pending = await handle.query(RefundWorkflow.state)
    assert pending.status is TransactionStatus.PENDING

    # A signed success for half the payin: never a plain success, whatever comes next.
    for event_id, amount in (("evt-half", 5_000), ("evt-full", 10_000)):
        await handle.signal(
            RefundWorkflow.provider_event,
            ProviderEvent(
                provider=ProviderName.NOVASEND,
                event_id=event_id,
                event_type="refund.completed",
                provider_transaction_id=pending.provider_transaction_id,
                status=PaymentStatus.SUCCEEDED,
                raw_status="completed",
                amount=amount,
                currency=Currency.XOF,
            ),
        )
    await env.sleep(timedelta(hours=50))
    state = await handle.query(RefundWorkflow.state)

    assert state.status is TransactionStatus.RECONCILING
    assert state.failure is not None and state.failure.code == "amount_mismatch"
    assert (state.amount, state.provider_amount) == (10_000, 5_000)
    assert state.completed_at is None
    replay = await _replayer().replay_workflow(await handle.fetch_history())
    assert replay.replay_failure is None


# --------------------------------------------------------------------------- determinism


def _replayer() -> Replayer:
    return Replayer(workflows=[RefundWorkflow], data_converter=data_converter(CodecSettings()))


async def test_refund_histories_of_this_session_replay(
    client: Client, stack: Stack, reference: str
) -> None:
    succeeded_novasend_payin(stack, reference)
    post_refund(stack, reference, 201)
    assert wait_refund(stack, reference, REFUND_FINAL)["status"] == "succeeded"
    histories = [
        await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        async for wf in client.list_workflows("WorkflowType = 'RefundWorkflow'")
    ]

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    assert any(h.workflow_id.endswith(reference) for h in histories)
    results = await _replayer().replay_workflows(each(), raise_on_replay_failure=False)
    assert {wid: str(err) for wid, err in results.replay_failures.items()} == {}
