"""The record store against real flows: the session stack's PostgreSQL, Temporal, sandboxes,
gateway and worker.

Every payout, payin and refund is written to PostgreSQL by its workflow; the start path
claims the record first. These tests show that a transaction outlives its workflow (read
and never paid again once Temporal deleted its workflow), that reads need no worker, that
the journal is right for each kind of flow, and that a database outage refuses new
requests while running payouts go on and their records catch up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from momoflow.business_requests import PayoutRequest
from momoflow.ids import payin_workflow_id, payout_workflow_id
from momoflow.models import PayoutState, PayoutTimings
from momoflow.records.journal import JournalEntry
from momoflow.records.schema import transactions
from momoflow.records.store import RecordStore, StoredRecord
from momoflow.records.writes import Kind
from tests.stack import Stack, wait_until
from tests.test_campaigns import line, report, submit, wait_phase
from tests.test_payin_flow import payin_body, post_payin, wait_payin
from tests.test_payout_flow import payout_body, post_payout

#: Sandbox numbers: paid after the settle delay; refused at once (CaurisFlux).
PAID = "+221771231011"
DECLINED = "+221770000000"
#: Never settles at the provider: the payout ends ``reconciling`` (test deadlines).
UNSETTLED = "+221770000003"


def _run(coro: Any) -> Any:
    """Run a coroutine on a loop of its own, in a thread of its own (the session's event
    loop may be running: it belongs to pytest-asyncio)."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coro).result(timeout=60)


async def _record(stack: Stack, kind: Kind, reference: str) -> StoredRecord | None:
    store = RecordStore.connect(stack.database_url)
    try:
        return await store.get(kind, "acme", reference)
    finally:
        await store.close()


async def _journal(stack: Stack, record_id: int) -> list[JournalEntry]:
    store = RecordStore.connect(stack.database_url)
    try:
        return await store.journal(record_id)
    finally:
        await store.close()


async def _timeline(stack: Stack, record_id: int) -> list[dict[str, Any]]:
    store = RecordStore.connect(stack.database_url)
    try:
        return await store.timeline(record_id)
    finally:
        await store.close()


def recorded(stack: Stack, kind: Kind, reference: str, statuses: set[str]) -> StoredRecord:
    """The record once its status is one of ``statuses``."""

    def check() -> StoredRecord | None:
        record = _run(_record(stack, kind, reference))
        return record if record is not None and record.status.value in statuses else None

    found: StoredRecord = wait_until(
        check, timeout=60, what=f"{kind.value} {reference} recorded as {sorted(statuses)}"
    )
    return found


def lines(entry: JournalEntry) -> dict[str, int]:
    return {line.account: line.amount for line in entry.lines}


async def delete_workflow(client: Client, workflow_id: str) -> None:
    """What Temporal's retention does to a closed workflow, now (the API call behind
    ``temporal workflow delete``)."""
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        )
    )


async def _deleted(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        return exc.status == RPCStatusCode.NOT_FOUND
    return False


async def _until_deleted(client: Client, workflow_id: str) -> None:
    """Temporal deletes asynchronously (a task of its history service)."""
    deadline = asyncio.get_running_loop().time() + 120
    while not await _deleted(client, workflow_id):
        assert asyncio.get_running_loop().time() < deadline, "the workflow was not deleted"
        await asyncio.sleep(0.2)


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with stack.gateway() as client:
        yield client


async def test_a_payout_outlives_its_workflow_and_is_never_paid_again(
    stack: Stack, client: Client, http: httpx.Client, reference: str
) -> None:
    body = payout_body(reference, phone=PAID)
    post_payout(stack, body)
    final = stack.wait_for_payout(reference, {"succeeded"})
    workflow_id = payout_workflow_id("acme", reference)
    await client.get_workflow_handle(workflow_id).result()
    await delete_workflow(client, workflow_id)

    await _until_deleted(client, workflow_id)

    read = http.get(f"/v1/payouts/{reference}")
    assert read.status_code == 200, read.text
    assert read.json() == final

    again = http.post("/v1/payouts", json=body)
    assert again.status_code == 200, again.text
    assert again.json() == final
    other = http.post("/v1/payouts", json={**body, "amount": body["amount"] + 1})
    assert other.status_code == 409
    assert other.json()["error"] == "reference_conflict"
    # Nothing was started again, and the provider paid once.
    assert await _deleted(client, workflow_id)
    entry = stack.ledger_entry(workflow_id)
    assert entry is not None and entry["executions"] == 1, entry


def test_reads_come_from_the_store_with_the_worker_stopped(
    stack: Stack, http: httpx.Client, reference: str
) -> None:
    settled = f"{reference}-paid"
    unsettled = f"{reference}-open"
    post_payout(stack, payout_body(settled, phone=PAID))
    post_payout(stack, payout_body(unsettled, phone=UNSETTLED))
    final = stack.wait_for_payout(settled, {"succeeded"})
    recorded(stack, Kind.PAYOUT, unsettled, {"pending"})
    worker = stack.processes["worker"]
    worker.stop()
    try:
        read = http.get(f"/v1/payouts/{settled}")
        assert read.status_code == 200 and read.json() == final
        # Still moving: its workflow cannot answer (no worker), its record does.
        moving = http.get(f"/v1/payouts/{unsettled}")
        assert moving.status_code == 200, moving.text
        assert moving.json()["status"] == "pending"
        assert moving.json()["reference"] == unsettled
    finally:
        stack.restart("worker", crash=False)
        stack.processes["worker"].wait_until(
            lambda: "momoflow worker ready" in stack.processes["worker"].tail(100),
            timeout=60,
            what="polling",
        )


def test_each_flow_posts_a_balanced_journal(
    stack: Stack, client: Client, http: httpx.Client, reference: str
) -> None:
    paid, declined = f"{reference}-paid", f"{reference}-declined"
    post_payout(stack, payout_body(paid, phone=PAID))
    post_payout(stack, payout_body(declined, phone=DECLINED))
    payin = f"{reference}-payin"
    post_payin(stack, payin_body(payin, "caurisflux", "checkout", "+221771231021"))
    late = f"{reference}-late"
    post_payin(stack, payin_body(late, "novasend", "direct", "+2250701230004"))

    record = recorded(stack, Kind.PAYOUT, paid, {"succeeded"})
    state = record.state
    [settled] = _run(_journal(stack, record.id))
    amount, fees, net = state["amount"], state["fees"] or 0, state["net_amount"]
    assert settled.key == "settled" and settled.currency == "XOF"
    # CaurisFlux names the net amount: its fee is inside the amount, taken from the float.
    expected = (
        {
            "recipients": net,
            "provider:caurisflux:fees": amount - net,
            "provider:caurisflux:float": -amount,
        }
        if net is not None
        else {
            "recipients": amount,
            "provider:caurisflux:fees": fees,
            "provider:caurisflux:float": -(amount + fees),
        }
    )
    assert lines(settled) == {account: value for account, value in expected.items() if value}

    record = recorded(stack, Kind.PAYOUT, declined, {"failed"})
    assert _run(_journal(stack, record.id)) == []

    wait_payin(stack, payin, {"succeeded"}, timeout=90)
    record = recorded(stack, Kind.PAYIN, payin, {"succeeded"})
    [received] = _run(_journal(stack, record.id))
    assert lines(received)["customers"] == -record.state["amount"]
    assert sum(lines(received).values()) == 0

    wait_payin(stack, late, {"late_succeeded"}, timeout=120)
    record = recorded(stack, Kind.PAYIN, late, {"late_succeeded"})
    [correction] = _run(_journal(stack, record.id))
    assert correction.key == "late_success"
    assert sum(lines(correction).values()) == 0
    assert stack.journal_problems() == []


def test_with_the_database_down_new_requests_start_nothing_and_running_payouts_finish(
    stack: Stack, http: httpx.Client, reference: str
) -> None:
    running = f"{reference}-running"
    post_payout(stack, payout_body(running, phone=PAID))
    recorded(stack, Kind.PAYOUT, running, {"pending", "succeeded"})
    refused = f"{reference}-refused"
    postgres = stack.processes["postgres"]
    postgres.kill()
    try:
        answer = http.post("/v1/payouts", json=payout_body(refused, phone=PAID))
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "records_unavailable"
        # The running payout is paid at the provider meanwhile.
        wait_until(
            lambda: stack.ledger_entry(payout_workflow_id("acme", running)),
            timeout=60,
            what="the running payout paid at the provider",
        )
    finally:
        stack.restart("postgres", crash=True)
    record = recorded(stack, Kind.PAYOUT, running, {"succeeded"})
    assert record.seq >= 2
    assert _run(_record(stack, Kind.PAYOUT, refused)) is None
    assert stack.ledger_entry(payout_workflow_id("acme", refused)) is None
    # Nothing reached Temporal either.
    assert http.get(f"/v1/payouts/{refused}").status_code == 404


def test_a_payin_record_names_its_kind_and_reference(stack: Stack, reference: str) -> None:
    post_payin(stack, payin_body(reference, "caurisflux", "checkout", "+221771231021"))
    record = recorded(stack, Kind.PAYIN, reference, {"pending", "succeeded"})
    assert record.workflow_id == payin_workflow_id("acme", reference)
    assert record.kind is Kind.PAYIN and record.started


async def test_a_campaign_never_pays_a_reference_the_record_store_holds(
    stack: Stack, client: Client, reference: str
) -> None:
    """References are taken for ever. Pre-flight refuses one the record store holds even
    when Temporal has no workflow for it; and a reference taken after pre-flight, whose
    workflow is then deleted, is claimed by the line's payout before any provider call,
    found taken, and skipped: paid once, not twice."""
    recorded_only = f"{reference}-old"
    store = RecordStore.connect(stack.database_url)
    try:
        old = PayoutRequest.model_validate(payout_body(recorded_only, phone=PAID))
        old_input = old.to_input(
            merchant="acme", secret="old", requested_at=datetime.now(UTC), timings=PayoutTimings()
        )
        claim = await store.claim(
            Kind.PAYOUT,
            PayoutState.initial(payout_workflow_id("acme", recorded_only), old_input),
            fingerprint="from-an-earlier-year",
            actor="api:acme",
        )
        await store.mark_started(claim.record.id)
    finally:
        await store.close()
    taken_later, fresh = f"{reference}-later", f"{reference}-new"
    rows = [
        line(recorded_only, "caurisflux", 1),
        line(taken_later, "caurisflux", 2, amount=50_000),
        line(fresh, "caurisflux", 3),
    ]
    campaign, answer = submit(stack, rows)
    assert answer.status_code == 201, answer.text
    waiting = wait_phase(stack, campaign, {"awaiting_approval"})
    assert waiting["valid_lines"] == 2 and waiting["invalid_lines"] == 1

    # Meanwhile the merchant pays ``taken_later`` through the API, and Temporal's
    # retention deletes that payout's workflow.
    post_payout(stack, payout_body(taken_later, phone=PAID))
    final = stack.wait_for_payout(taken_later, {"succeeded"})
    workflow_id = payout_workflow_id("acme", taken_later)
    await client.get_workflow_handle(workflow_id).result()
    await delete_workflow(client, workflow_id)
    await _until_deleted(client, workflow_id)

    with stack.gateway() as http:
        approved = http.post(
            f"/v1/campaigns/{campaign}/approve", json={"approved_by": "Fatou (finance)"}
        )
    assert approved.status_code == 200, approved.text
    done = wait_phase(stack, campaign, {"completed"}, timeout=180)
    outcomes = {row["reference"]: row for row in report(stack, campaign)}
    assert outcomes[recorded_only]["status"] == "invalid"
    assert outcomes[recorded_only]["error_code"] == "unique_reference"
    assert outcomes[taken_later]["status"] == "skipped", str(outcomes[taken_later])
    assert outcomes[taken_later]["error_code"] == "duplicate_reference"
    assert outcomes[fresh]["status"] == "succeeded"
    assert done["skipped_lines"] == 1
    entry = stack.ledger_entry(workflow_id)
    assert entry is not None and entry["executions"] == 1
    assert stack.ledger_entry(payout_workflow_id("acme", recorded_only)) is None
    # The merchant's payout's record is as it was.
    with stack.gateway() as http:
        assert http.get(f"/v1/payouts/{taken_later}").json() == final


async def test_records_verify_repairs_a_lagging_record_and_removes_an_orphan_claim(
    stack: Stack, client: Client, reference: str
) -> None:
    """A record left behind by its workflow (a write lost with the database), and a claim
    whose workflow never started (the gateway died between the two): ``momoflow records
    verify`` brings the first up to its workflow and removes the second."""
    post_payout(stack, payout_body(reference, phone=PAID))
    final = stack.wait_for_payout(reference, {"succeeded"})
    await client.get_workflow_handle(payout_workflow_id("acme", reference)).result()
    orphan = f"{reference}-orphan"
    store = RecordStore.connect(stack.database_url)
    try:
        lagging = PayoutState.model_validate(
            {**final, "status": "pending", "completed_at": None, "updated_at": final["created_at"]}
        )
        async with store.engine.begin() as conn:
            await conn.execute(
                update(transactions)
                .where(transactions.c.workflow_id == payout_workflow_id("acme", reference))
                .values(
                    status="pending",
                    state=lagging.model_dump(mode="json"),
                    updated_at=lagging.updated_at,
                )
            )
        claimed = PayoutState.model_validate(
            {
                **final,
                "reference": orphan,
                "workflow_id": payout_workflow_id("acme", orphan),
                "status": "created",
                "created_at": datetime.now(UTC) - timedelta(minutes=20),
            }
        )
        await store.claim(Kind.PAYOUT, claimed, fingerprint="fp", actor="api:acme")
    finally:
        await store.close()

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "momoflow.cli", "records", "verify", "--since-hours", "1", "--json"],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert payout_workflow_id("acme", reference) in report["repaired"], report
    assert payout_workflow_id("acme", orphan) in report["orphans_removed"], report
    with stack.gateway() as http:
        assert http.get(f"/v1/payouts/{reference}").json() == final
    assert await _stored(stack, orphan) is None


async def _stored(stack: Stack, reference: str) -> StoredRecord | None:
    store = RecordStore.connect(stack.database_url)
    try:
        return await store.get(Kind.PAYOUT, "acme", reference)
    finally:
        await store.close()
