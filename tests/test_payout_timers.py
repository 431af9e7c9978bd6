"""Payout deadlines at their production values, on Temporal's time-skipping test server.

Hours of timers pass in seconds; the activities still call the real CaurisFlux sandbox over
HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.providers import ProviderActivities
from momoflow.ids import payout_workflow_id, provider_task_queue, workflow_task_queue
from momoflow.models import PayoutTimings, ProviderName, TransactionStatus
from momoflow.processes import find_executable
from momoflow.providers.caurisflux import CaurisFluxClient, CaurisFluxCredentials
from momoflow.requests import PayoutRequest
from momoflow.temporal import register_search_attributes
from tests.stack import PUBLIC_KEY, SECRET_KEY, WEBHOOK_SECRET, Stack
from tests.test_payout_flow import executions, payout_body
from workflows.payout import PayoutWorkflow


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def time_skipping(stack: Stack) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_executable("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    async with env:
        await register_search_attributes(env.client, "default")
        prefix = f"ts-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(timeout=5) as http:
            activities = ProviderActivities(
                {
                    ProviderName.CAURISFLUX: CaurisFluxClient(
                        http,
                        base_url=f"{stack.sandbox_url}/api/v1",
                        credentials=CaurisFluxCredentials(
                            public_key=PUBLIC_KEY,
                            secret_key=SECRET_KEY,
                            webhook_secret=WEBHOOK_SECRET,
                        ),
                    )
                }
            )
            async with (
                Worker(
                    env.client,
                    task_queue=workflow_task_queue(prefix),
                    workflows=[PayoutWorkflow],
                ),
                Worker(
                    env.client,
                    task_queue=provider_task_queue(ProviderName.CAURISFLUX, prefix),
                    activities=[
                        activities.quote_payout,
                        activities.initiate_payout,
                        activities.fetch_payout_status,
                    ],
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
