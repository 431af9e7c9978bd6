"""Payout deadlines at their production values, on Temporal's time-skipping test server.

Hours of timers pass in seconds; the activities still call the real CaurisFlux sandbox over
HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.providers import ProviderActivities
from momoflow.business_requests import PayoutRequest
from momoflow.ids import payout_workflow_id, provider_task_queue, workflow_task_queue
from momoflow.models import PayoutTimings, ProviderName, TransactionStatus
from momoflow.processes import find_executable
from momoflow.providers.caurisflux import CaurisFluxClient, CaurisFluxCredentials
from momoflow.providers.novasend import NovaSendClient, NovaSendCredentials
from momoflow.settings import CodecSettings
from momoflow.temporal import data_converter, register_search_attributes
from tests.stack import PUBLIC_KEY, SECRET_KEY, WEBHOOK_SECRET, Stack, record_activities
from tests.test_payout_flow import executions, payout_body
from workflows.payin import PayinWorkflow
from workflows.payout import PayoutWorkflow


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def time_skipping(stack: Stack) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_executable("temporal-test-server"),
        data_converter=data_converter(CodecSettings()),
    )
    async with env:
        await register_search_attributes(env.client, "default")
        prefix = f"ts-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(timeout=5) as http:
            activities = ProviderActivities(
                {
                    ProviderName.NOVASEND: NovaSendClient(
                        http,
                        base_url=stack.sandbox_urls["novasend"],
                        credentials=NovaSendCredentials(
                            api_key="nsk_test_momoflow",
                            api_client="nsc_test_momoflow",
                            webhook_secret="nswh_momoflow_sandbox",
                        ),
                    ),
                    ProviderName.CAURISFLUX: CaurisFluxClient(
                        http,
                        base_url=f"{stack.sandbox_url}/api/v1",
                        credentials=CaurisFluxCredentials(
                            public_key=PUBLIC_KEY,
                            secret_key=SECRET_KEY,
                            webhook_secret=WEBHOOK_SECRET,
                        ),
                    ),
                }
            )
            async with (
                record_activities(stack) as records,
                Worker(
                    env.client,
                    task_queue=workflow_task_queue(prefix),
                    workflows=[PayoutWorkflow, PayinWorkflow],
                    activities=records,
                ),
                Worker(
                    env.client,
                    task_queue=provider_task_queue(ProviderName.NOVASEND, prefix),
                    activities=activities.all(),
                ),
                Worker(
                    env.client,
                    task_queue=provider_task_queue(ProviderName.CAURISFLUX, prefix),
                    activities=activities.all(),
                ),
            ):
                yield env, prefix


async def _start(client: Client, prefix: str, reference: str, phone: str):  # type: ignore[no-untyped-def]
    request = PayoutRequest.model_validate(payout_body(reference, phone=phone))
    payout_input = request.to_input(
        merchant="acme", secret="test", requested_at=datetime.now(UTC), timings=PayoutTimings()
    )
    return await client.start_workflow(
        PayoutWorkflow.run,
        payout_input,
        id=payout_workflow_id("acme", reference),
        task_queue=workflow_task_queue(prefix),
    )


async def test_unsettled_payout_reconciles_after_two_hours_and_resolves_later(
    time_skipping: tuple[WorkflowEnvironment, str], stack: Stack, reference: str
) -> None:
    env, prefix = time_skipping
    client = env.client
    handle = await _start(client, prefix, reference, phone="+221770000003")

    await env.sleep(timedelta(hours=2, minutes=30))

    state = await handle.query(PayoutWorkflow.state)
    assert state.status is TransactionStatus.RECONCILING
    assert state.failure is not None and state.failure.code == "settlement_unknown"
    assert state.status_polls >= 20  # 5 s, 10 s, ... then every 5 min for two hours
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    # The provider settles it later; the hourly reconciliation read picks it up.
    with stack.sandbox() as http:
        http.post(
            f"/_sandbox/transactions/{state.provider_transaction_id}/settle",
            json={"status": "completed"},
        ).raise_for_status()
    await env.sleep(timedelta(hours=1, minutes=5))
    result = await handle.result()
    assert result.status is TransactionStatus.SUCCEEDED
    assert executions(stack, reference) == 1


async def test_create_outcome_unknown_for_an_hour_goes_to_reconciling(
    time_skipping: tuple[WorkflowEnvironment, str], stack: Stack, reference: str
) -> None:
    env, prefix = time_skipping
    client = env.client
    stack.fault(operation="payouts.initiate", kind="error", status=502, count=100_000)
    handle = await _start(client, prefix, reference, phone="+221771230001")

    await env.sleep(timedelta(hours=1, minutes=10))

    state = await handle.query(PayoutWorkflow.state)
    assert state.status is TransactionStatus.RECONCILING
    assert state.failure is not None and state.failure.code == "create_outcome_unknown"
    assert executions(stack, reference) == 0


async def _start_payin(env: WorkflowEnvironment, prefix: str, reference: str, phone: str):  # type: ignore[no-untyped-def]
    from momoflow.business_requests import PayinRequest
    from momoflow.ids import payin_workflow_id
    from momoflow.models import PayinTimings

    request = PayinRequest.model_validate(
        {
            "reference": reference,
            "provider": "novasend",
            "mode": "direct",
            "country": "CI",
            "operator": "wave",
            "customer": {"phone": phone, "name": "Aya"},
            "amount": 10_000,
            "currency": "XOF",
            "return_url": "https://shop.example/ok",
        }
    )
    payin_input = request.to_input(
        merchant="acme", secret="test", requested_at=datetime.now(UTC), timings=PayinTimings()
    )
    return await env.client.start_workflow(
        PayinWorkflow.run,
        payin_input,
        id=payin_workflow_id("acme", reference),
        task_queue=workflow_task_queue(prefix),
    )


async def _sandbox_settled(env: WorkflowEnvironment, stack: Stack, handle, word: str) -> None:  # type: ignore[no-untyped-def]
    """Wait, in real time, until the NovaSend sandbox shows ``word`` for this payin: the
    sandbox runs on real time while the workflow's clock is skipped."""
    from tests.stack import wait_until

    deadline = asyncio.get_running_loop().time() + 30
    state = await handle.query(PayinWorkflow.state)
    while state.provider_transaction_id is None:
        assert asyncio.get_running_loop().time() < deadline, "payin never created"
        await asyncio.sleep(0.1)
        state = await handle.query(PayinWorkflow.state)

    def shows() -> bool:
        with stack.sandbox("novasend") as http:
            entry = http.get(f"/_sandbox/transactions/{state.provider_transaction_id}").json()
        return bool(entry.get("state") == word)

    wait_until(shows, timeout=30, what=f"the sandbox to show {word}")


async def test_failed_payin_that_succeeds_within_48h_is_corrected(
    time_skipping: tuple[WorkflowEnvironment, str], stack: Stack, reference: str
) -> None:
    env, prefix = time_skipping
    # ...0004 at the NovaSend sandbox: fails, then (seconds later, real time) succeeds.
    handle = await _start_payin(env, prefix, reference, "+2250701230004")
    await _sandbox_settled(env, stack, handle, "failed")
    await env.sleep(timedelta(minutes=1))
    assert (await handle.query(PayinWorkflow.state)).status is TransactionStatus.FAILED

    await _sandbox_settled(env, stack, handle, "completed")
    await env.sleep(timedelta(hours=7))  # the next 6-hourly read in the 48 h window sees it
    result = await handle.result()
    assert result.status is TransactionStatus.LATE_SUCCEEDED
    assert [(c.from_status, c.to_status) for c in result.corrections] == [
        (TransactionStatus.FAILED, TransactionStatus.LATE_SUCCEEDED)
    ]


async def test_failed_payin_closes_after_the_48h_window_without_a_reversal(
    time_skipping: tuple[WorkflowEnvironment, str], stack: Stack, reference: str
) -> None:
    env, prefix = time_skipping
    handle = await _start_payin(env, prefix, reference, "+2250701230005")
    await _sandbox_settled(env, stack, handle, "failed")
    await env.sleep(timedelta(hours=49))
    result = await handle.result()
    assert result.status is TransactionStatus.FAILED
    assert result.corrections == []
    assert result.status_polls >= 8  # one read every 6 h during the window
