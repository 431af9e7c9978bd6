"""The amount processed is the amount recorded.

A provider that reports a success for another amount than the one asked (seed 004: 300
asked, ``"153.00"`` completed) must never make momoflow report ``succeeded``: the payout or
payin goes to ``reconciling`` with ``failure.code = amount_mismatch``, and both amounts are in
its state.

The provider here is the real CaurisFlux sandbox behind a proxy that rewrites the amount of
every status answer (what a provider with that bug sends); webhooks are dropped, so the
status read decides. The workflows run on a worker in this process, on a queue prefix of
their own, against the session's Temporal dev server.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.providers import ProviderActivities
from momoflow.business_requests import PayinRequest, PayoutRequest
from momoflow.contract import RESOLVE_UPDATE
from momoflow.ids import (
    payin_workflow_id,
    payout_workflow_id,
    provider_task_queue,
    workflow_task_queue,
)
from momoflow.models import (
    ManualResolution,
    PayinTimings,
    PayoutTimings,
    ProviderName,
    ResolutionOutcome,
    TransactionStatus,
)
from momoflow.providers.caurisflux import CaurisFluxClient, CaurisFluxCredentials
from momoflow.records.journal import JournalEntry
from momoflow.records.store import RecordStore, StoredRecord
from momoflow.records.writes import Kind
from momoflow.sandbox.shared.serving import ThreadedServer
from tests.stack import (
    PUBLIC_KEY,
    SECRET_KEY,
    TEST_PAYIN_TIMINGS,
    TEST_TIMINGS,
    WEBHOOK_SECRET,
    Stack,
    record_activities,
)
from tests.test_payin_flow import payin_body
from tests.test_payout_flow import executions, payout_body
from workflows.payin import PayinWorkflow
from workflows.payout import PayoutWorkflow

ASKED = 300
PROCESSED = 153


def _rewrite(value: Any) -> Any:
    """Every ``amount`` in a status answer becomes 153, in the answer's own format."""
    if isinstance(value, dict):
        return {
            k: (
                ("153.00" if isinstance(v, str) else PROCESSED)
                if k == "amount" and v is not None
                else _rewrite(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v) for v in value]
    return value


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def short_paying(stack: Stack, client: Client) -> AsyncIterator[str]:
    """A worker whose CaurisFlux status reads say 153 was processed; yields its prefix."""
    upstream = stack.sandbox_url

    async def forward(request: Request) -> Response:
        async with httpx.AsyncClient(base_url=upstream, timeout=10) as http:
            answer = await http.request(
                request.method,
                request.url.path,
                params=request.query_params,
                content=await request.body(),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
        body = answer.content
        if request.method == "GET" and answer.status_code == 200:
            body = json.dumps(_rewrite(answer.json())).encode()
        headers = {"content-type": answer.headers.get("content-type", "application/json")}
        return Response(body, status_code=answer.status_code, headers=headers)

    app = Starlette(
        routes=[Route("/{path:path}", forward, methods=["GET", "POST", "PUT", "DELETE"])]
    )
    prefix = f"amt-{uuid.uuid4().hex[:8]}"
    with ThreadedServer(app) as proxy:
        async with httpx.AsyncClient(timeout=5) as http:
            activities = ProviderActivities(
                {
                    ProviderName.CAURISFLUX: CaurisFluxClient(
                        http,
                        base_url=f"{proxy.url}/api/v1",
                        credentials=CaurisFluxCredentials(
                            public_key=PUBLIC_KEY,
                            secret_key=SECRET_KEY,
                            webhook_secret=WEBHOOK_SECRET,
                        ),
                    )
                }
            )
            async with (
                record_activities(stack) as records,
                Worker(
                    client,
                    task_queue=workflow_task_queue(prefix),
                    workflows=[PayoutWorkflow, PayinWorkflow],
                    activities=records,
                ),
                Worker(
                    client,
                    task_queue=provider_task_queue(ProviderName.CAURISFLUX, prefix),
                    activities=activities.all(),
                ),
            ):
                yield prefix


async def recorded(stack: Stack, kind: Kind, reference: str, statuses: set[str]) -> StoredRecord:
    """The transaction's record once its status is one of ``statuses``."""
    store = RecordStore.connect(stack.database_url)
    deadline = asyncio.get_running_loop().time() + 60
    try:
        while True:
            record = await store.get(kind, "acme", reference)
            if record is not None and record.status.value in statuses:
                return record
            assert asyncio.get_running_loop().time() < deadline, f"not recorded: {record}"
            await asyncio.sleep(0.2)
    finally:
        await store.close()


async def journal(stack: Stack, record_id: int) -> list[JournalEntry]:
    store = RecordStore.connect(stack.database_url)
    try:
        return await store.journal(record_id)
    finally:
        await store.close()


async def history(stack: Stack, record_id: int) -> list[dict[str, Any]]:
    store = RecordStore.connect(stack.database_url)
    try:
        return await store.timeline(record_id)
    finally:
        await store.close()


def lines(entry: JournalEntry) -> dict[str, int]:
    return {line.account: line.amount for line in entry.lines}


async def _until_settled(handle: WorkflowHandle[Any, Any], query: Any) -> Any:
    deadline = asyncio.get_running_loop().time() + 60
    state = await handle.query(query)
    while state.status is not TransactionStatus.RECONCILING and not state.status.is_final:
        assert asyncio.get_running_loop().time() < deadline, f"still {state.status}"
        await asyncio.sleep(0.2)
        state = await handle.query(query)
    return state


async def test_a_payout_read_as_completed_for_153_of_300_is_never_succeeded(
    stack: Stack, client: Client, short_paying: str, reference: str
) -> None:
    stack.fault(kind="drop_webhooks", count=3)
    request = PayoutRequest.model_validate(payout_body(reference, amount=ASKED))
    payout_input = request.to_input(
        merchant="acme",
        secret="test",
        requested_at=datetime.now(UTC),
        timings=PayoutTimings.model_validate(TEST_TIMINGS),
    )
    handle = await client.start_workflow(
        PayoutWorkflow.run,
        payout_input,
        id=payout_workflow_id("acme", reference),
        task_queue=workflow_task_queue(short_paying),
    )

    state = await _until_settled(handle, PayoutWorkflow.state)

    assert state.status is TransactionStatus.RECONCILING
    assert state.failure is not None and state.failure.code == "amount_mismatch"
    assert (state.amount, state.provider_amount) == (ASKED, PROCESSED)
    assert "153 XOF" in state.failure.message and "300 XOF" in state.failure.message
    assert state.completed_at is None
    assert executions(stack, reference) == 1
    # The record store holds what the provider says it moved in suspense...
    record = await recorded(stack, Kind.PAYOUT, reference, {"reconciling"})
    held = {e.key: lines(e) for e in await journal(stack, record.id)}
    assert held == {
        "amount_mismatch": {
            "provider:caurisflux:suspense": PROCESSED,
            "provider:caurisflux:float": -PROCESSED,
        }
    }
    # ...until an operator resolves it: as paid, for what the provider processed.
    await handle.execute_update(
        RESOLVE_UPDATE,
        ManualResolution(
            outcome=ResolutionOutcome.PAID,
            reason="provider statement: 153 XOF sent",
            operator="fatou",
        ),
    )
    record = await recorded(stack, Kind.PAYOUT, reference, {"succeeded"})
    cleared = {e.key: lines(e) for e in await journal(stack, record.id)}
    assert cleared == {
        **held,
        "amount_mismatch_cleared": {
            "recipients": PROCESSED,
            "provider:caurisflux:suspense": -PROCESSED,
        },
    }
    timeline = await history(stack, record.id)
    assert any(e["actor"] == "operator:fatou" and e["status"] == "succeeded" for e in timeline)


@pytest.mark.parametrize("phone", ["+221771231041"])
async def test_a_payin_read_as_completed_for_153_of_300_is_never_succeeded(
    stack: Stack, client: Client, short_paying: str, reference: str, phone: str
) -> None:
    stack.fault(kind="drop_webhooks", count=3)
    request = PayinRequest.model_validate(
        payin_body(reference, "caurisflux", "direct", phone, amount=ASKED)
    )
    payin_input = request.to_input(
        merchant="acme",
        secret="test",
        requested_at=datetime.now(UTC),
        timings=PayinTimings.model_validate(TEST_PAYIN_TIMINGS),
    )
    handle = await client.start_workflow(
        PayinWorkflow.run,
        payin_input,
        id=payin_workflow_id("acme", reference),
        task_queue=workflow_task_queue(short_paying),
    )

    state = await _until_settled(handle, PayinWorkflow.state)

    assert state.status is TransactionStatus.RECONCILING
    assert state.failure is not None and state.failure.code == "amount_mismatch"
    assert (state.amount, state.provider_amount) == (ASKED, PROCESSED)
    record = await recorded(stack, Kind.PAYIN, reference, {"reconciling"})
    [held] = await journal(stack, record.id)
    assert held.key == "amount_mismatch"
    assert lines(held) == {
        "provider:caurisflux:float": PROCESSED,
        "provider:caurisflux:suspense": -PROCESSED,
    }
    await handle.terminate("test over")
