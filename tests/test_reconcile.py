"""Reconciliation end to end: the sweep on its schedule, manual resolution through the CLI
and the update, and the daily report against the sandboxes' own records.

Payouts are driven into ``reconciling`` with the sandboxes' test numbers that never settle
(``…0003``); the provider settles them later through ``/_sandbox/transactions/{id}/settle``
with its webhooks dropped, so that only a status read can tell. Every process is real: the
session's Temporal dev server, sandboxes, gateway and worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError
from temporalio.worker import Replayer

from momoflow.ids import payout_workflow_id
from momoflow.models import (
    Direction,
    ListedTransaction,
    ManualResolution,
    PaymentStatus,
    ProviderName,
    ResolutionOutcome,
    TransactionStatus,
)
from momoflow.money import Currency
from momoflow.providers.mobilepay.mapping import marker, to_listed_transaction
from momoflow.providers.mobilepay.wire import MobilePayTransactionItem
from momoflow.reconciliation.operations import (
    ResolveRefused,
    ensure_schedules,
    resolve,
    run_report,
    run_sweep,
    schedules,
)
from momoflow.reconciliation.rules import (
    CSV_COLUMNS,
    DailyReportInput,
    MismatchKind,
    MomoflowOutcome,
    ReportInput,
    ReportMode,
    ReportSummary,
    SweepOutcome,
    SweepReport,
    compare,
    compare_lists,
    report_method,
    report_mode,
    report_modes,
    sweep_schedule_id,
)
from momoflow.sandbox.shared import ThreadedServer
from momoflow.settings import Settings
from tests.stack import MERCHANT_HOST, Stack, wait_until
from tests.test_payin_flow import FINAL as PAYIN_FINAL
from tests.test_payin_flow import payin_body, post_payin, wait_payin
from tests.test_payout_flow import executions, payout_body, post_payout
from workflows.payin import PayinWorkflow
from workflows.payout import PayoutWorkflow
from workflows.reconcile import (
    ReconcileDailyReportWorkflow,
    ReconcileReportWorkflow,
    ReconcileSweepWorkflow,
)
from workflows.refund import RefundWorkflow

PREFIX = "momoflow-test"
NEVER_SETTLES_CF = "+221770000003"
NEVER_SETTLES_MP = "+2250701230003"
MP = {"provider": "mobilepay", "country": "CI", "operator": "orange_money"}
FINAL = {"succeeded", "failed", "cancelled", "expired"}


def _settings(stack: Stack, **reconcile: Any) -> Settings:
    return Settings(
        task_queue_prefix=PREFIX,
        temporal={"address": stack.temporal_address},
        reconcile={"recheck_wait_s": 60, **reconcile},
    )


def _workflow_id(reference: str) -> str:
    return payout_workflow_id("acme", reference)


def _state(stack: Stack, reference: str) -> dict[str, Any]:
    with stack.gateway() as http:
        answer = http.get(f"/v1/payouts/{reference}")
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def _settle(stack: Stack, provider: str, transaction_id: str, status: str) -> None:
    with stack.sandbox(provider) as http:
        http.post(
            f"/_sandbox/transactions/{transaction_id}/settle", json={"status": status}
        ).raise_for_status()


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "momoflow.cli", "reconcile", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=120,
    )


class Receiver:
    """A merchant endpoint on 127.0.0.1 that records every notification."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

        async def hook(request: Request) -> PlainTextResponse:
            self.events.append(json.loads(await request.body()))
            return PlainTextResponse("ok")

        self.app = Starlette(routes=[Route("/hooks", hook, methods=["POST"])])

    def of(self, reference: str) -> list[str]:
        return [e["type"] for e in self.events if e["data"].get("reference") == reference]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    merchant = Receiver()
    with ThreadedServer(merchant.app, host=MERCHANT_HOST) as server:
        yield merchant, f"{server.url}/hooks"


@pytest.fixture(scope="module")
def reconciling(stack: Stack, receiver: tuple[Receiver, str]) -> dict[str, str]:
    """Payouts that never settle, all started at once and waited for together: name ->
    reference, each ``reconciling`` (``settlement_unknown``)."""
    _, notify_url = receiver
    stamp = datetime.now(UTC).strftime("%H%M%S")
    plan = {
        "sweep": payout_body(f"RC-{stamp}-SWEEP", NEVER_SETTLES_CF),
        "paid": payout_body(f"RC-{stamp}-PAID", NEVER_SETTLES_CF, notify_url=notify_url),
        "failed": payout_body(f"RC-{stamp}-FAILED", NEVER_SETTLES_CF),
        "refused": payout_body(f"RC-{stamp}-REFUSED", NEVER_SETTLES_CF),
        "report-cf": payout_body(f"RC-{stamp}-REPCF", NEVER_SETTLES_CF),
        "report-mp": payout_body(f"RC-{stamp}-REPMP", NEVER_SETTLES_MP, **MP),
    }
    # A payin the provider says it already holds under another request: reconciling at
    # once (money may have moved), with no id of ours to read it by.
    stack.fault(
        "caurisflux",
        operation="payments.initiate",
        kind="error",
        status=409,
        code="duplicate_reference",
        count=1,
    )
    payin_reference = f"RC-{stamp}-PAYIN"
    post_payin(stack, payin_body(payin_reference, "caurisflux", "checkout", None))
    for body in plan.values():
        post_payout(stack, body)
    references = {name: body["reference"] for name, body in plan.items()}
    for reference in references.values():
        state = stack.wait_for_payout(reference, {"reconciling", *FINAL}, timeout=120)
        assert state["status"] == "reconciling", state
    state = wait_payin(stack, payin_reference, PAYIN_FINAL, timeout=120)
    assert state["status"] == "reconciling", state
    assert state["failure"]["code"] == "duplicate_reference"
    references["payin"] = payin_reference
    return references


# --------------------------------------------------------------------------- the sweep


async def test_sweep_on_its_schedule_resolves_a_payout_the_provider_settled_since(
    stack: Stack, client: Client, reconciling: dict[str, str]
) -> None:
    reference = reconciling["sweep"]
    before = _state(stack, reference)
    assert before["reconciling_since"] is not None
    # The provider pays it, and its webhook is lost: only a status read can tell.
    stack.fault("caurisflux", kind="drop_webhooks", count=None)
    _settle(stack, "caurisflux", before["provider_transaction_id"], "completed")

    settings = _settings(stack)
    sweep_id = sweep_schedule_id(PREFIX)
    try:
        assert await ensure_schedules(client, settings) == {
            sweep_id: "created",
            f"{PREFIX}-reconcile-report": "created",
        }
        # Idempotent: a second run updates in place.
        assert set((await ensure_schedules(client, settings)).values()) == {"updated"}
        handle = client.get_schedule_handle(sweep_id)
        description = await handle.describe()
        schedule = description.schedule
        (interval,) = schedule.spec.intervals
        assert interval.every == timedelta(minutes=15) and not interval.offset
        assert schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "ReconcileSweepWorkflow"
        assert action.task_queue == f"{PREFIX}-workflows"

        await handle.trigger()

        async def started() -> str | None:
            actions = (await handle.describe()).info.recent_actions
            execution = actions[-1].action if actions else None
            assert execution is None or isinstance(execution, ScheduleActionExecutionStartWorkflow)
            return execution.workflow_id if execution else None

        sweep_run = await _eventually(started, timeout=30, what="the sweep to start")
        report = await client.get_workflow_handle(sweep_run, result_type=SweepReport).result()
    finally:
        for schedule_id in (sweep_id, f"{PREFIX}-reconcile-report"):
            with contextlib.suppress(RPCError):
                await client.get_schedule_handle(schedule_id).delete()

    resolved = {item.transaction.workflow_id: item for item in report.resolved}
    unresolved = {item.transaction.workflow_id: item for item in report.unresolved}
    assert _workflow_id(reference) in resolved
    item = resolved[_workflow_id(reference)]
    assert item.outcome is SweepOutcome.RESOLVED
    assert item.status is TransactionStatus.SUCCEEDED
    assert report.examined >= len(reconciling) and not report.truncated
    # What it could not resolve is listed for operators, with the reason.
    still = unresolved[_workflow_id(reconciling["failed"])]
    assert still.outcome is SweepOutcome.STILL_RECONCILING
    assert "settlement_unknown" in still.detail and "processing" in still.detail
    assert still.transaction.phone_masked == "+221*****0003"
    assert still.transaction.amount == 50_000 and still.transaction.provider == "caurisflux"
    # A payin created under a conflict has no id to read at CaurisFlux: a human's.
    payin = unresolved[f"payin-acme-{reconciling['payin']}"]
    assert payin.outcome is SweepOutcome.NOT_READABLE
    assert "never returned an id" in payin.detail
    assert payin.transaction.failure is not None
    assert payin.transaction.failure.code == "duplicate_reference"

    after = _state(stack, reference)
    assert after["status"] == "succeeded"
    assert any("recheck asked by sweep" in e["note"] for e in after["timeline"])
    assert executions(stack, reference) == 1


async def _eventually(check: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --------------------------------------------------------------------------- manual resolution


async def test_operator_resolves_a_reconciling_payout_paid_from_the_cli_and_it_is_audited(
    stack: Stack,
    client: Client,
    reconciling: dict[str, str],
    receiver: tuple[Receiver, str],
) -> None:
    reference = reconciling["paid"]
    workflow_id = _workflow_id(reference)

    listed = _cli(stack, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["workflow_id"]: row for row in json.loads(listed.stdout)["transactions"]}
    row = rows[workflow_id]
    assert row["failure"]["code"] == "settlement_unknown"
    assert row["provider"] == "caurisflux" and row["amount"] == 50_000
    assert row["phone_masked"] == "+221*****0003" and "+221770000003" not in listed.stdout
    assert row["reconciling_since"] is not None

    reason = "paid: seen completed in the CaurisFlux dashboard, ticket CF-42"
    done = _cli(
        stack, "resolve", workflow_id, "--paid", "--reason", reason, "--operator", "awa.diallo"
    )
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout

    state = _state(stack, reference)
    assert state["status"] == "succeeded" and state["failure"] is None
    assert state["completed_at"] is not None
    assert state["resolution"]["outcome"] == "paid"
    assert state["resolution"]["operator"] == "awa.diallo"
    assert state["resolution"]["previous_failure"]["code"] == "settlement_unknown"
    assert state["timeline"][-1]["note"] == f"resolved by awa.diallo: {reason}"

    # The update's arguments are in the history.
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    accepted = [
        e.workflow_execution_update_accepted_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(accepted) == 1 and accepted[0].accepted_request.input.name == "resolve"
    (arguments,) = await client.data_converter.decode(
        accepted[0].accepted_request.input.args.payloads, [ManualResolution]
    )
    assert arguments == ManualResolution(
        outcome=ResolutionOutcome.PAID, reason=reason, operator="awa.diallo"
    )

    # The search attribute follows, and the merchant hears about it as for any final state.
    query = f"WorkflowId = '{workflow_id}' AND PaymentStatus = 'succeeded'"
    await _eventually(
        lambda: _count(client, query), timeout=20, what="PaymentStatus to be succeeded"
    )
    merchant, _ = receiver
    wait_until(
        lambda: "payout.succeeded" in merchant.of(reference),
        timeout=30,
        what="the merchant's payout.succeeded notification",
    )
    assert merchant.of(reference) == ["payout.reconciling", "payout.succeeded"]

    shown = _cli(stack, "show", workflow_id)
    assert shown.returncode == 0, shown.stderr
    assert "resolved      paid by awa.diallo" in shown.stdout
    assert executions(stack, reference) == 1


async def _count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def test_operator_marks_a_reconciling_payout_failed_with_the_reason(
    stack: Stack, client: Client, reconciling: dict[str, str]
) -> None:
    reference = reconciling["failed"]
    resolution = ManualResolution(
        outcome=ResolutionOutcome.FAILED,
        reason="CaurisFlux support confirmed the transfer was never executed",
        operator="kofi",
    )
    state = await resolve(client, _workflow_id(reference), resolution)

    assert state["status"] == "failed"
    assert state["failure"]["code"] == "operator_marked_failed"
    assert "never executed" in state["failure"]["message"]
    assert state["resolution"]["operator"] == "kofi"
    after = _state(stack, reference)
    assert after["status"] == "failed"
    assert after["timeline"][-1]["note"] == f"resolved by kofi: {resolution.reason}"
    # A second resolution is refused: the payout is no longer reconciling.
    with pytest.raises(ResolveRefused, match="is failed, not reconciling"):
        await resolve(client, _workflow_id(reference), resolution)


async def test_operator_resolves_a_reconciling_payin_paid(
    stack: Stack, client: Client, reconciling: dict[str, str]
) -> None:
    reference = reconciling["payin"]
    reason = "CaurisFlux support found the customer's payment under our reference"
    state = await resolve(
        client,
        f"payin-acme-{reference}",
        ManualResolution(outcome=ResolutionOutcome.PAID, reason=reason, operator="ama"),
    )

    assert state["status"] == "succeeded" and state["failure"] is None
    assert state["resolution"]["previous_failure"]["code"] == "duplicate_reference"
    after = wait_payin(stack, reference, {"succeeded"})
    assert after["timeline"][-1]["note"] == f"resolved by ama: {reason}"


async def test_resolution_is_refused_for_a_payout_that_is_not_reconciling(
    stack: Stack, client: Client, reference: str
) -> None:
    post_payout(stack, payout_body(reference))
    stack.wait_for_payout(reference, {"succeeded"})

    refused = _cli(
        stack,
        "resolve",
        _workflow_id(reference),
        "--failed",
        "--reason",
        "wrong payout",
        "--operator",
        "kofi",
    )

    assert refused.returncode == 1
    assert "is succeeded, not reconciling" in refused.stderr
    state = _state(stack, reference)
    assert state["status"] == "succeeded" and state["resolution"] is None
    assert not any("resolved by" in e["note"] for e in state["timeline"])


async def test_resolution_without_a_reason_or_an_operator_is_refused_and_not_recorded(
    stack: Stack, client: Client, reconciling: dict[str, str]
) -> None:
    workflow_id = _workflow_id(reconciling["refused"])
    handle = client.get_workflow_handle(workflow_id)
    for reason, operator, message in (
        ("   ", "kofi", "a reason is required"),
        ("confirmed", "", "an operator name is required"),
    ):
        # Straight to the workflow, past the client-side check: the validator decides.
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                "resolve",
                ManualResolution(outcome=ResolutionOutcome.PAID, reason=reason, operator=operator),
            )
        assert message in str(refused.value.cause)

    state = _state(stack, reconciling["refused"])
    assert state["status"] == "reconciling" and state["resolution"] is None
    history = await handle.fetch_history()
    assert not any(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        for e in history.events
    )


# --------------------------------------------------------------------------- the daily report


async def test_report_flags_mismatches_against_the_mobilepay_transaction_list(
    stack: Stack, client: Client, reconciling: dict[str, str]
) -> None:
    today = datetime.now(UTC).date()
    # MOBILE-PAY hints about transfers momoflow does not know would be retried for minutes.
    stack.fault("mobilepay", kind="drop_webhooks", count=None)
    # 1. momoflow failed it by hand, then the provider paid it after all.
    failed_ref = reconciling["report-mp"]
    state = _state(stack, failed_ref)
    await resolve(
        client,
        _workflow_id(failed_ref),
        ManualResolution(
            outcome=ResolutionOutcome.FAILED,
            reason="looked absent on the dashboard",
            operator="ama",
        ),
    )
    _settle(stack, "mobilepay", state["provider_transaction_id"], "completed")
    # 2. A transfer made at MOBILE-PAY that momoflow never asked for.
    with httpx.Client(base_url=f"{stack.sandbox_urls['mobilepay']}/api/v1", timeout=10) as http:
        answer = http.post(
            "/transfers/local",
            headers={"Authorization": "Bearer mp_test_momoflow"},
            json={"recipient_phone": "+2250701239911", "amount": 12_345, "description": "manual"},
        )
        answer.raise_for_status()
        stray = answer.json()["transfer_id"]
    # 3. An ordinary payout that both sides agree on.
    good_ref = f"{failed_ref}-OK"
    post_payout(stack, payout_body(good_ref, "+2250701231001", **MP))
    stack.wait_for_payout(good_ref, {"succeeded"})
    wait_until(
        lambda: _sandbox_status(stack, "mobilepay", stray) == "completed",
        timeout=20,
        what="the stray transfer to complete",
    )

    shown = _cli(stack, "report", "--provider", "mobilepay", "--date", today.isoformat(), "--json")
    assert shown.returncode == 0, shown.stderr
    summary = ReportSummary.model_validate_json(shown.stdout)

    assert summary.mode is ReportMode.TRANSACTION_LIST
    assert summary.method == report_method(ProviderName.MOBILEPAY, ReportMode.TRANSACTION_LIST)
    flagged = {(m.kind, m.workflow_id or m.provider_transaction_id) for m in summary.mismatches}
    assert (
        MismatchKind.PROVIDER_SUCCEEDED_MOMOFLOW_FAILED,
        _workflow_id(failed_ref),
    ) in flagged
    assert (MismatchKind.UNKNOWN_AT_MOMOFLOW, stray) in flagged
    assert not any(m.workflow_id == _workflow_id(good_ref) for m in summary.mismatches)
    assert summary.matched >= 2
    assert summary.matched + summary.not_at_provider + summary.unchecked == (
        summary.momoflow_transactions
    )
    # The files: the summary as JSON, the mismatches as CSV.
    json_path, csv_path = (Path(p) for p in summary.files)
    assert json_path.parent == stack.root / "reports" / "mobilepay"
    written = ReportSummary.model_validate_json(json_path.read_text())
    assert written.mismatch_counts == summary.mismatch_counts
    lines = csv_path.read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == 1 + len(summary.mismatches)
    assert any(stray in line and "unknown_at_momoflow" in line for line in lines)


def _sandbox_status(stack: Stack, provider: str, transaction_id: str) -> str | None:
    with stack.sandbox(provider) as http:
        answer = http.get(f"/_sandbox/transactions/{transaction_id}")
    return str(answer.json().get("status")) if answer.status_code == 200 else None


async def test_report_reads_each_status_where_the_provider_has_no_list(
    stack: Stack, client: Client, reconciling: dict[str, str]
) -> None:
    reference = reconciling["report-cf"]
    state = _state(stack, reference)
    await resolve(
        client,
        _workflow_id(reference),
        ManualResolution(outcome=ResolutionOutcome.FAILED, reason="presumed lost", operator="ama"),
    )
    _settle(stack, "caurisflux", state["provider_transaction_id"], "completed")

    summary = await run_report(
        client, _settings(stack), ProviderName.CAURISFLUX, datetime.now(UTC).date()
    )

    assert summary.mode is ReportMode.STATUS_READS
    assert "has no transaction list endpoint" in summary.method
    flagged = {(m.kind, m.workflow_id) for m in summary.mismatches}
    assert (MismatchKind.PROVIDER_SUCCEEDED_MOMOFLOW_FAILED, _workflow_id(reference)) in flagged
    assert summary.matched >= 1
    assert summary.matched + summary.not_at_provider + summary.unchecked == (
        summary.momoflow_transactions
    )
    assert Path(summary.files[0]).exists()
    # The balance line: the provider's balance, read by the report, beside the journal's.
    written = ReportSummary.model_validate_json(Path(summary.files[0]).read_text())
    [line] = written.balances
    assert (line.currency, line.source) == ("XOF", "daily report")
    assert line.reported is not None and line.difference == line.reported - line.expected


async def test_a_status_read_report_continues_as_new_and_carries_its_counts(
    stack: Stack, client: Client, reconciling: dict[str, str]
) -> None:
    workflow_id = f"{PREFIX}-reconcile-report-caurisflux-paged-{uuid.uuid4().hex[:6]}"
    summary = await client.execute_workflow(
        "ReconcileReportWorkflow",
        ReportInput(
            provider=ProviderName.CAURISFLUX,
            day=datetime.now(UTC).date(),
            max_transactions=4,
            page_size=2,
            events_per_run=1,
        ),
        id=workflow_id,
        task_queue=f"{PREFIX}-workflows",
        result_type=ReportSummary,
    )

    runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    assert len(runs) == 2  # one page of two per run: the second run carried the first's
    assert summary.momoflow_transactions == 4 and summary.incomplete
    assert summary.matched + summary.not_at_provider + summary.unchecked == 4
    assert summary.total_mismatches == len(summary.mismatches)


async def test_daily_report_runs_one_report_per_provider_for_yesterday(
    stack: Stack, client: Client
) -> None:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    summaries = await client.execute_workflow(
        "ReconcileDailyReportWorkflow",
        # As the schedule starts it: each provider's mode chosen outside workflow code.
        DailyReportInput(providers=list(ProviderName), modes=report_modes(ProviderName)),
        id=f"{PREFIX}-reconcile-daily-{uuid.uuid4().hex[:6]}",
        task_queue=f"{PREFIX}-workflows",
        result_type=list[ReportSummary],
    )

    assert {s.provider for s in summaries} == set(ProviderName)
    for summary in summaries:
        # Nothing happened yesterday on this fresh server: today's transactions are not
        # yesterday's, even where the provider's list was read a day wider.
        assert summary.day == yesterday
        assert summary.momoflow_transactions == 0 and summary.total_mismatches == 0
        assert summary.provider_transactions == 0
        assert all(Path(path).exists() for path in summary.files)
    modes = {s.provider: s.mode for s in summaries}
    assert modes[ProviderName.MOBILEPAY] is ReportMode.TRANSACTION_LIST
    assert modes[ProviderName.CAURISFLUX] is ReportMode.STATUS_READS
    assert modes[ProviderName.NOVASEND] is ReportMode.STATUS_READS


async def test_a_report_reads_the_way_its_input_says_not_the_table_at_run_time(
    stack: Stack, client: Client
) -> None:
    """The mode chosen by the starter wins over the capability table (MOBILE-PAY lists its
    transactions, but this report was started in status-read mode)."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    summary = await client.execute_workflow(
        "ReconcileReportWorkflow",
        ReportInput(provider=ProviderName.MOBILEPAY, day=yesterday, mode=ReportMode.STATUS_READS),
        id=f"{PREFIX}-reconcile-report-mobilepay-mode-{uuid.uuid4().hex[:6]}",
        task_queue=f"{PREFIX}-workflows",
        result_type=ReportSummary,
    )

    assert report_mode(ProviderName.MOBILEPAY) is ReportMode.TRANSACTION_LIST
    assert summary.mode is ReportMode.STATUS_READS
    assert summary.method == report_method(ProviderName.MOBILEPAY, ReportMode.STATUS_READS)


async def test_reconciliation_histories_replay_with_the_current_code(
    stack: Stack, client: Client, reconciling: dict[str, str]
) -> None:
    # A sweep and a report of this test's own, whatever ran before it.
    settings = _settings(stack)
    await run_sweep(client, settings)
    await run_report(client, settings, ProviderName.NOVASEND, datetime.now(UTC).date())
    query = (
        f"TaskQueue = '{PREFIX}-workflows' AND (WorkflowType = 'ReconcileSweepWorkflow' OR "
        "WorkflowType = 'ReconcileReportWorkflow' OR "
        + " OR ".join(f"WorkflowId = '{_workflow_id(r)}'" for r in reconciling.values())
        + ")"
    )
    histories = [
        await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        async for wf in client.list_workflows(query)
    ]
    types = {
        h.events[0].workflow_execution_started_event_attributes.workflow_type.name
        for h in histories
    }
    assert {"ReconcileSweepWorkflow", "ReconcileReportWorkflow", "PayoutWorkflow"} <= types
    replayer = Replayer(
        workflows=[
            PayoutWorkflow,
            PayinWorkflow,
            RefundWorkflow,
            ReconcileSweepWorkflow,
            ReconcileReportWorkflow,
            ReconcileDailyReportWorkflow,
        ],
        data_converter=client.data_converter,
    )
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, (history.workflow_id, result.replay_failure)


# --------------------------------------------------------------------------- comparison rules


DAY = date(2026, 11, 22)
NOON = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _outcome(status: TransactionStatus | None, **fields: Any) -> MomoflowOutcome:
    values: dict[str, Any] = {
        "workflow_id": "payout-acme-R1",
        "workflow_type": "PayoutWorkflow",
        "status": status,
        "amount": 5_000,
        "currency": "XOF",
        "provider_transaction_id": "TRF1",
        "started_at": NOON,
    }
    values.update(fields)
    return MomoflowOutcome(**values)


@pytest.mark.parametrize(
    ("momoflow", "provider", "expected"),
    [
        (TransactionStatus.FAILED, PaymentStatus.SUCCEEDED, "provider_succeeded_momoflow_failed"),
        (
            TransactionStatus.RECONCILING,
            PaymentStatus.SUCCEEDED,
            "provider_succeeded_momoflow_reconciling",
        ),
        (
            TransactionStatus.PENDING,
            PaymentStatus.SUCCEEDED,
            "provider_succeeded_momoflow_not_final",
        ),
        (TransactionStatus.SUCCEEDED, PaymentStatus.FAILED, "momoflow_succeeded_provider_failed"),
        (
            TransactionStatus.SUCCEEDED,
            PaymentStatus.PENDING,
            "momoflow_succeeded_provider_not_final",
        ),
        (TransactionStatus.FAILED, PaymentStatus.PENDING, "momoflow_failed_provider_not_final"),
        (
            TransactionStatus.RECONCILING,
            PaymentStatus.FAILED,
            "provider_failed_momoflow_reconciling",
        ),
        (TransactionStatus.SUCCEEDED, None, "momoflow_succeeded_provider_no_record"),
        (TransactionStatus.RECONCILING, None, "momoflow_reconciling_provider_no_record"),
        (TransactionStatus.SUCCEEDED, PaymentStatus.SUCCEEDED, None),
        (TransactionStatus.FAILED, PaymentStatus.FAILED, None),
        (TransactionStatus.FAILED, None, None),
        (TransactionStatus.PENDING, PaymentStatus.PENDING, None),
        (TransactionStatus.PENDING, None, None),
    ],
)
def test_each_disagreement_between_momoflow_and_the_provider_has_its_kind(
    momoflow: TransactionStatus, provider: PaymentStatus | None, expected: str | None
) -> None:
    found = compare(_outcome(momoflow), provider_status=provider, provider_amount=5_000)
    assert [m.kind.value for m in found] == ([expected] if expected else [])


def test_an_amount_or_currency_that_differs_is_flagged_even_when_statuses_agree() -> None:
    outcome = _outcome(TransactionStatus.SUCCEEDED)
    (amount,) = compare(outcome, provider_status=PaymentStatus.SUCCEEDED, provider_amount=4_999)
    assert amount.kind is MismatchKind.AMOUNT_DIFFERS
    assert amount.momoflow_amount == 5_000 and amount.provider_amount == 4_999
    (currency,) = compare(
        outcome,
        provider_status=PaymentStatus.SUCCEEDED,
        provider_amount=5_000,
        provider_currency="XAF",
    )
    assert currency.kind is MismatchKind.AMOUNT_DIFFERS


def _listed(**fields: Any) -> ListedTransaction:
    values: dict[str, Any] = {
        "provider": ProviderName.MOBILEPAY,
        "provider_transaction_id": "TRF1",
        "direction": Direction.PAYOUT,
        "status": PaymentStatus.SUCCEEDED,
        "raw_status": "completed",
        "amount": 5_000,
        "currency": Currency.XOF,
        "created_at": NOON,
    }
    values.update(fields)
    return ListedTransaction(**values)


def _summary() -> ReportSummary:
    return ReportSummary(
        provider=ProviderName.MOBILEPAY,
        day=DAY,
        mode=ReportMode.TRANSACTION_LIST,
        method="",
        generated_at=NOON,
    )


def test_list_comparison_matches_by_id_or_by_the_echoed_reference() -> None:
    summary = _summary()
    by_reference = _outcome(
        TransactionStatus.SUCCEEDED, workflow_id="payout-acme-R2", provider_transaction_id=None
    )
    compare_lists(
        summary,
        momoflow=[_outcome(TransactionStatus.SUCCEEDED), by_reference],
        provider=[
            _listed(),
            _listed(provider_transaction_id="TRF2", external_reference="payout-acme-R2"),
        ],
    )
    assert summary.mismatches == []
    assert summary.matched == 2 and summary.momoflow_transactions == 2
    assert summary.provider_transactions == 2


def test_list_comparison_matches_a_truncated_mobilepay_description_by_its_marker() -> None:
    """MOBILE-PAY kept only the start of the description: no ``[ref …]`` tag, but the
    marker that opens it still names the payout whose create answer was lost."""
    lost = _outcome(
        TransactionStatus.RECONCILING, workflow_id="payout-acme-R3", provider_transaction_id=None
    )
    item = MobilePayTransactionItem.model_validate(
        {
            "id": "TRF3",
            "type": "transfer",
            "status": "completed",
            "amount": 5_000,
            "currency": "XOF",
            "description": f"{marker('payout-acme-R3')} Salaire",
            "created_at": NOON.isoformat(),
        }
    )
    listed = to_listed_transaction(item)
    assert listed is not None and listed.external_reference is None
    summary = _summary()
    compare_lists(summary, momoflow=[lost], provider=[listed])

    assert summary.matched == 1 and summary.provider_transactions == 1
    assert all(m.kind is not MismatchKind.UNKNOWN_AT_MOMOFLOW for m in summary.mismatches)
    # Another provider keeps our reference itself: no marker is read there.
    other = summary.model_copy(update={"provider": ProviderName.CAURISFLUX, "matched": 0})
    compare_lists(other, momoflow=[lost], provider=[listed])
    assert other.matched == 0


def test_list_comparison_flags_unknown_provider_money_and_missing_records() -> None:
    summary = _summary()
    compare_lists(
        summary,
        momoflow=[_outcome(TransactionStatus.SUCCEEDED, provider_transaction_id="TRF9")],
        provider=[
            _listed(provider_transaction_id="TRF7", external_reference=None),
            _listed(
                provider_transaction_id="TRF8", status=PaymentStatus.FAILED, raw_status="failed"
            ),
        ],
    )
    kinds = sorted(m.kind.value for m in summary.mismatches)
    assert kinds == ["momoflow_succeeded_provider_no_record", "unknown_at_momoflow"]
    # A failed stranger moved no money: counted, not flagged.
    assert summary.unknown_failed_at_provider == 1
    assert (summary.matched, summary.not_at_provider) == (0, 1)


def test_list_comparison_flags_a_second_live_transaction_for_one_payout() -> None:
    summary = _summary()
    compare_lists(
        summary,
        momoflow=[_outcome(TransactionStatus.SUCCEEDED, provider_transaction_id="TRF1")],
        provider=[
            _listed(external_reference="payout-acme-R1"),
            # The same reference again: a retry that created a second transfer.
            _listed(provider_transaction_id="TRF2", external_reference="payout-acme-R1"),
            # A failed third attempt moved no money.
            _listed(
                provider_transaction_id="TRF3",
                external_reference="payout-acme-R1",
                status=PaymentStatus.FAILED,
                raw_status="failed",
            ),
        ],
    )
    (duplicate,) = summary.mismatches
    assert duplicate.kind is MismatchKind.DUPLICATE_AT_PROVIDER
    assert duplicate.provider_transaction_id == "TRF2"
    assert (summary.matched, summary.momoflow_transactions) == (1, 1)
    assert summary.provider_transactions == 3


def test_list_comparison_only_judges_the_day_but_matches_across_midnight() -> None:
    summary = _summary()
    late = _outcome(
        TransactionStatus.SUCCEEDED, started_at=datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)
    )
    yesterday = _outcome(
        TransactionStatus.FAILED,
        workflow_id="payout-acme-R0",
        provider_transaction_id="TRF0",
        started_at=datetime(2026, 11, 21, 23, 59, tzinfo=UTC),
    )
    compare_lists(
        summary,
        momoflow=[late, yesterday],
        provider=[
            # Created after midnight: still this day's transaction's record.
            _listed(created_at=datetime(2026, 11, 23, 0, 0, 1, tzinfo=UTC)),
            # Yesterday's transaction, created today: today's report does not judge it.
            _listed(provider_transaction_id="TRF0", created_at=NOON),
        ],
    )
    assert summary.mismatches == []
    assert summary.momoflow_transactions == 1 and summary.matched == 1


def test_report_modes_are_chosen_by_the_starter_and_carried_in_the_input() -> None:
    """The capability table is read when a schedule is written or a report started, never
    while a report workflow runs (a table change must not change a replay)."""
    assert report_mode(ProviderName.MOBILEPAY) is ReportMode.TRANSACTION_LIST
    assert report_mode(ProviderName.CAURISFLUX) is ReportMode.STATUS_READS
    settings = Settings()
    report = schedules(settings)[f"{settings.task_queue_prefix}-reconcile-report"]
    assert isinstance(report.action, ScheduleActionStartWorkflow)
    (daily,) = report.action.args
    assert isinstance(daily, DailyReportInput)
    assert daily.modes == report_modes(settings.providers)
    assert set(daily.modes) == set(daily.providers)
