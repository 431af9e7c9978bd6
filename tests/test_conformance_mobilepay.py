"""MOBILE-PAY pays nobody twice when a transfer's answer is lost (issue 13).

MOBILE-PAY has no idempotency (seed 003): a transfer sent twice executes twice. The first
transfer executes, its answer hangs (or comes back as a 5xx), and MOBILE-PAY's list may
lag behind the write and keep only the start of the description. Whatever happens, each
payout executes at most ONCE at the provider, and ends ``succeeded`` (found by the marker
that opens its description) or ``reconciling`` with a clear reason. A transfer is sent
again only when the earlier attempt provably never reached MOBILE-PAY: here, a connection
refused because nothing listened on the port yet.

Real parts: the session's Temporal dev server, a MOBILE-PAY simulator per test (over real
HTTP, with its list lag and description truncation), and PayoutWorkflow with the
provider activities and the batched status reads as ``momoflow worker`` runs them, in
this process on a queue prefix of their own, so that the adapter's consistency window
can be seconds instead of minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.providers import ProviderActivities
from activities.status_reads import StatusReadActivities
from momoflow.business_requests import PayoutRequest
from momoflow.contract import RECHECK_SIGNAL, STATE_QUERY
from momoflow.ids import (
    payout_workflow_id,
    provider_task_queue,
    status_reader_workflow_id,
    status_reads_task_queue,
    workflow_task_queue,
)
from momoflow.models import (
    PayoutState,
    PayoutTimings,
    ProviderName,
    RecheckRequest,
    TransactionStatus,
)
from momoflow.processes import free_port
from momoflow.providers.mobilepay import MobilePayClient, MobilePayCredentials
from momoflow.providers.mobilepay.mapping import MARKER_LENGTH, marker
from momoflow.sandbox.mobilepay import MobilePaySandboxConfig, create_app
from momoflow.sandbox.shared import ThreadedServer
from momoflow.status_reads import ReadBudget, ReaderState
from tests.stack import MOBILEPAY_WEBHOOK_TOKEN, TEST_TIMINGS, Stack, record_activities
from workflows.payout import PayoutWorkflow
from workflows.status_reads import StatusReaderWorkflow

#: A merchant of this module only: its payouts never show in other tests' lists.
MERCHANT = "mpconf"
#: Completes after the settle delay (the sandbox's test numbers).
PHONE = "+2250701231001"
AMOUNT = 25_000
#: The adapter's own HTTP timeout: shorter than the hang of ``timeout_after_execute``.
CALL_TIMEOUT_S = 2.0
#: What the description keeps under truncation: the marker and a little more.
KEPT = MARKER_LENGTH + 3
SETTLED = {"succeeded", "failed", "cancelled", "reconciling"}


@contextmanager
def _sandbox(port: int = 0, **config: Any) -> Iterator[ThreadedServer]:
    """A MOBILE-PAY simulator that echoes no ``metadata`` (M1 documents none), so only the
    description can tell a transfer is ours; no webhooks: the status reads decide."""
    settings = MobilePaySandboxConfig(
        **{"settle_delay": 0.5, "rate_limit_per_hour": 0, "echo_metadata": False, **config}
    )
    with ThreadedServer(create_app(settings), port=port) as server:
        yield server


@asynccontextmanager
async def _worker(
    client: Client, stack: Stack, base_url: str, *, window_s: float, read_interval_s: float = 0.5
) -> AsyncIterator[str]:
    """Workflow and MOBILE-PAY activity workers on a fresh prefix; yields the prefix.
    The shared status reads walk the list at most every ``read_interval_s``."""
    prefix = f"mp13-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S) as http:
        adapter = MobilePayClient(
            http,
            base_url=f"{base_url}/api/v1",
            credentials=MobilePayCredentials(
                api_token="mp_test_momoflow", webhook_token=MOBILEPAY_WEBHOOK_TOKEN
            ),
            merchant_id="momoflow",
            consistency_window_s=window_s,
        )
        providers = {ProviderName.MOBILEPAY: adapter}
        activities = ProviderActivities(providers)
        reads = StatusReadActivities(
            client,
            providers,
            lambda _: ReadBudget(per_hour=3_600_000, min_interval_s=read_interval_s),
        )
        async with (
            record_activities(stack) as records,
            Worker(
                client,
                task_queue=workflow_task_queue(prefix),
                workflows=[PayoutWorkflow, StatusReaderWorkflow],
                activities=[reads.request_status_read, *records],
            ),
            Worker(
                client,
                task_queue=provider_task_queue(ProviderName.MOBILEPAY, prefix),
                activities=activities.all(),
            ),
            Worker(
                client,
                task_queue=status_reads_task_queue(ProviderName.MOBILEPAY, prefix),
                activities=[reads.sweep_status_reads],
            ),
        ):
            yield prefix


@asynccontextmanager
async def _payout(client: Client, prefix: str) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    """Start a payout to :data:`PHONE`; a payout left open is terminated afterwards, so
    that no sweep of a later test waits for a worker that is gone."""
    reference = f"MP-{uuid.uuid4().hex[:12]}"
    request = PayoutRequest.model_validate(
        {
            "reference": reference,
            "provider": "mobilepay",
            "country": "CI",
            "operator": "orange_money",
            "recipient": {"phone": PHONE, "name": "Kouadio Yao"},
            "amount": AMOUNT,
            "currency": "XOF",
            "description": "Salaire mars, prime comprise",
        }
    )
    payout_input = request.to_input(
        merchant=MERCHANT,
        secret="test",
        requested_at=datetime.now(UTC),
        timings=PayoutTimings.model_validate(TEST_TIMINGS),
    )
    handle = await client.start_workflow(
        PayoutWorkflow.run,
        payout_input,
        id=payout_workflow_id(MERCHANT, reference),
        task_queue=workflow_task_queue(prefix),
    )
    try:
        yield handle
    finally:
        if (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
            try:
                await handle.terminate("test over")
            except RPCError as exc:
                # It completed in between (its last record write landed meanwhile).
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise


async def _state_in(
    handle: WorkflowHandle[Any, Any], statuses: set[str], *, timeout: float = 60
) -> PayoutState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state: PayoutState = await handle.query(PayoutWorkflow.state)
        if state.status.value in statuses:
            return state
        assert loop.time() < deadline, f"still {state.status.value}: {state.timeline}"
        await asyncio.sleep(0.2)


async def _until(check: Any, *, timeout: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def _control(server: ThreadedServer) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/_sandbox", timeout=10)


def _executions(server: ThreadedServer, workflow_id: str) -> int:
    with _control(server) as http:
        answer = http.get(f"/ledger/{workflow_id}")
    return 0 if answer.status_code == 404 else int(answer.json()["executions"])


def _requests(server: ThreadedServer) -> list[dict[str, Any]]:
    with _control(server) as http:
        requests: list[dict[str, Any]] = http.get("/requests").json()["requests"]
    return requests


def _transfer_posts(server: ThreadedServer) -> list[dict[str, Any]]:
    return [r for r in _requests(server) if r["method"] == "POST" and "/transfers/" in r["path"]]


def _hang_first_transfer(server: ThreadedServer) -> None:
    """The first transfer executes, then its answer hangs past the adapter's timeout."""
    with _control(server) as http:
        http.post(
            "/faults",
            json={"kind": "timeout_after_execute", "operation": "transfers.local", "seconds": 15},
        ).raise_for_status()


@pytest.mark.parametrize(
    ("list_lag", "kept"),
    [(5.0, None), (0.0, KEPT), (5.0, KEPT)],
    ids=["list-lag", "truncated-description", "lag-and-truncation"],
)
async def test_lost_answer_is_found_by_its_marker_and_paid_once(
    client: Client, stack: Stack, list_lag: float, kept: int | None
) -> None:
    with _sandbox(list_lag=list_lag, description_max_chars=kept) as server:
        _hang_first_transfer(server)
        async with (
            _worker(client, stack, server.url, window_s=30) as prefix,
            _payout(client, prefix) as handle,
        ):
            final = await _state_in(handle, SETTLED)

            assert final.status is TransactionStatus.SUCCEEDED, final.timeline
            assert final.submit_attempts >= 2
            assert _executions(server, handle.id) == 1
            assert len(_transfer_posts(server)) == 1
            with _control(server) as http:
                listed = http.get(f"/transactions/{final.provider_transaction_id}").json()
            assert listed["description"].startswith(marker(handle.id))
            assert listed["metadata"] is None
            if kept is not None:
                # The "[ref …]" tag at the end was cut off; the marker was enough.
                assert len(listed["description"]) == kept
                assert handle.id not in listed["description"]


async def test_a_transfer_still_invisible_after_the_window_is_reconciling_never_resent(
    client: Client,
    stack: Stack,
) -> None:
    with _sandbox(list_lag=12.0, description_max_chars=KEPT) as server:
        _hang_first_transfer(server)
        async with (
            _worker(client, stack, server.url, window_s=3) as prefix,
            _payout(client, prefix) as handle,
        ):
            held = await _state_in(handle, SETTLED)

            assert held.status is TransactionStatus.RECONCILING, held.timeline
            assert held.failure is not None
            assert held.failure.code == "provider_conflict"
            assert marker(handle.id) in held.failure.message
            assert "never sent again" in held.failure.message
            assert _executions(server, handle.id) == 1
            assert len(_transfer_posts(server)) == 1

            # Reconciling is no end: once MOBILE-PAY lists it, a recheck finds it.
            async def listed() -> bool:
                with _control(server) as http:
                    found = http.get(f"/ledger/{handle.id}").json()["transactionId"]
                async with httpx.AsyncClient(base_url=f"{server.url}/api/v1") as api:
                    page = await api.get(
                        "/transactions", headers={"Authorization": "Bearer mp_test_momoflow"}
                    )
                return any(item["id"] == found for item in page.json()["data"])

            await _until(listed, timeout=30, what="the transfer in the list")
            try:
                await handle.signal(RECHECK_SIGNAL, RecheckRequest(requested_by="test"))
            except RPCError as exc:
                # The reader's late answer to an earlier read found it first, and the
                # payout has ended: as good, as long as it was not sent again (below).
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            final = await _state_in(handle, {"succeeded"}, timeout=30)

            assert final.failure is None
            assert _executions(server, handle.id) == 1
            assert len(_transfer_posts(server)) == 1


async def test_a_5xx_after_sending_is_no_proof_and_nothing_is_sent_again(
    client: Client,
    stack: Stack,
) -> None:
    with _sandbox() as server:
        with _control(server) as http:
            # MOBILE-PAY answers 502 (here without executing: momoflow cannot know that).
            http.post(
                "/faults", json={"kind": "error", "operation": "transfers.local", "status": 502}
            ).raise_for_status()
        async with (
            _worker(client, stack, server.url, window_s=2) as prefix,
            _payout(client, prefix) as handle,
        ):
            held = await _state_in(handle, SETTLED)

            assert held.status is TransactionStatus.RECONCILING, held.timeline
            assert held.failure is not None and "never sent again" in held.failure.message
            assert [p["statusCode"] for p in _transfer_posts(server)] == [502]
            assert _executions(server, handle.id) == 0


async def test_a_refused_connection_is_proof_and_the_resend_pays_once(
    client: Client, stack: Stack
) -> None:
    port = free_port()
    # Nothing listens on the port yet: the first attempt's connection is refused, so its
    # request provably never left momoflow.
    async with (
        _worker(client, stack, f"http://127.0.0.1:{port}", window_s=30) as prefix,
        _payout(client, prefix) as handle,
    ):

        async def refused_once() -> bool:
            # Retried, with the proof the first attempt left in its heartbeat details.
            description = await handle.describe()
            return any(
                activity.attempt >= 2 and activity.HasField("heartbeat_details")
                for activity in description.raw_description.pending_activities
            )

        await _until(refused_once, timeout=30, what="a refused first attempt")
        with _sandbox(port=port) as server:
            final = await _state_in(handle, SETTLED)

            assert final.status is TransactionStatus.SUCCEEDED, final.timeline
            assert final.submit_attempts >= 2
            assert _executions(server, handle.id) == 1
            assert [p["statusCode"] for p in _transfer_posts(server)] == [201]
            with _control(server) as http:
                calls = http.get("/requests").json()["requests"]
            # The proof let the next attempt send at once: no search came before the
            # transfer (the list is read afterwards, for the status only).
            assert calls[0]["method"] == "POST" and "/transfers/" in calls[0]["path"]


async def test_pending_payouts_share_list_reads_and_every_request_is_counted(
    client: Client,
    stack: Stack,
) -> None:
    """Issue 13, part 7: MOBILE-PAY's plan counts HTTP requests. The status reads of all
    pending payouts go through one reader, which walks the list once for all of them and
    counts every request it sends, so the budget holds in requests."""
    count = 6
    with _sandbox(settle_delay=6.0) as server:
        async with _worker(client, stack, server.url, window_s=3, read_interval_s=2.0) as prefix:
            async with contextlib.AsyncExitStack() as payouts:
                handles = [
                    await payouts.enter_async_context(_payout(client, prefix)) for _ in range(count)
                ]
                states = [await _state_in(h, SETTLED, timeout=90) for h in handles]
                reader = client.get_workflow_handle(
                    status_reader_workflow_id(ProviderName.MOBILEPAY, prefix)
                )
                seen: ReaderState = await reader.query(STATE_QUERY, result_type=ReaderState)
                await reader.terminate("test over")
        executions = [_executions(server, handle.id) for handle in handles]
        requests = _requests(server)

    assert [s.status for s in states] == [TransactionStatus.SUCCEEDED] * count
    assert executions == [1] * count
    reads = sum(s.status_polls for s in states)
    list_gets = [
        r for r in requests if r["method"] == "GET" and r["path"].endswith("/transactions")
    ]
    # Every request the reader sent is in its spending, and only those went to the list.
    assert seen.requests_last_hour == len(list_gets)
    # One walk answers many reads: fewer walks than reads, and one page each here.
    assert 1 <= seen.sweeps < reads, (seen, reads)
    assert len(list_gets) == seen.sweeps
    assert all("list read" in " ".join(e.note for e in s.timeline) for s in states)
