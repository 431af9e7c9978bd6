"""Bulk payout campaigns through the gateway, against the real stack: pre-flight, approval,
execution, pause/resume/cancel, outages, continue-as-new, the report."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import io
import json
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.campaigns import _quote_groups, _totals, judge_preflight
from momoflow.campaigns.models import (
    CampaignInput,
    CampaignLine,
    CampaignPhase,
    CampaignProgress,
    FileFormat,
    GroupQuote,
    LineOutcome,
    PreflightChecks,
    PreparedCampaign,
)
from momoflow.campaigns.report import build_report, report_csv
from momoflow.campaigns.store import CampaignStore, LocalBlobStore
from momoflow.contract import CAMPAIGN_WORKFLOW, FINGERPRINT_MEMO
from momoflow.ids import campaign_workflow_id, payout_workflow_id, workflow_task_queue
from momoflow.models import (
    Operator,
    PayoutInput,
    ProviderAvailability,
    ProviderBalance,
    ProviderName,
)
from momoflow.money import Country, Currency, format_amount
from momoflow.operations.campaigns import campaign_fingerprint
from tests.stack import ACME_KEY, GLOBEX_KEY, Stack, wait_until
from tests.test_campaign_cli import explain, run_cli

HEADER = "reference,provider,country,operator,phone,name,amount,currency,description"
FINAL_PHASES = {"completed", "cancelled", "rejected"}
#: Test numbers that settle as completed at each sandbox (the last four digits decide).
PHONES = {
    "caurisflux": ("SN", "wave", "+22177123"),
    "novasend": ("CI", "wave", "+225070123"),
    "mobilepay": ("CI", "orange_money", "+225070123"),
}


def line(ref: str, provider: str, n: int, amount: int = 10_000, suffix: str | None = None) -> str:
    country, operator, prefix = PHONES[provider]
    digits = suffix if suffix is not None else f"{1100 + n % 800:04d}"
    phone = f"{prefix}{digits}"
    return f"{ref},{provider},{country},{operator},{phone},Awa Diallo {n},{amount},XOF,line {n}"


def lines_for(tag: str, providers: Iterable[str], per_provider: int) -> list[str]:
    rows = []
    for provider in providers:
        for n in range(per_provider):
            rows.append(line(f"{tag}-{provider[:2]}-{n}", provider, n))
    return rows


def submit(
    stack: Stack,
    rows: list[str],
    *,
    reference: str | None = None,
    key: str = ACME_KEY,
    **params: Any,
) -> tuple[str, httpx.Response]:
    reference = reference or f"C-{uuid.uuid4().hex[:12]}"
    body = "\n".join([HEADER, *rows]) + "\n"
    with stack.gateway(key) as http:
        answer = http.post(
            "/v1/campaigns",
            params={"reference": reference, **params},
            content=body.encode(),
            headers={"Content-Type": "text/csv"},
        )
    return reference, answer


def progress(stack: Stack, reference: str) -> dict[str, Any]:
    """The campaign's progress; waits out a 503 (no worker answering for a moment, e.g.
    while a killed worker is restarted)."""

    def read() -> dict[str, Any] | None:
        with stack.gateway() as http:
            answer = http.get(f"/v1/campaigns/{reference}")
        if answer.status_code == 503:
            return None
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    result: dict[str, Any] = wait_until(read, timeout=60, what="a worker answering")
    return result


def wait_phase(
    stack: Stack, reference: str, phases: set[str], timeout: float = 120
) -> dict[str, Any]:
    seen: list[str] = [""]

    def check() -> dict[str, Any] | None:
        with stack.gateway() as http:
            answer = http.get(f"/v1/campaigns/{reference}")
        seen[0] = f"{answer.status_code} {answer.text[:500]}"
        if answer.status_code == 200 and answer.json()["phase"] in phases:
            body: dict[str, Any] = answer.json()
            return body
        return None

    try:
        result: dict[str, Any] = wait_until(check, timeout=timeout, what=f"campaign in {phases}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last answer: {seen[0]}") from None
    return result


def control(stack: Stack, reference: str, action: str, body: dict[str, Any]) -> httpx.Response:
    with stack.gateway() as http:
        return http.post(f"/v1/campaigns/{reference}/{action}", json=body)


def report(stack: Stack, reference: str) -> list[dict[str, str]]:
    with stack.gateway() as http:
        answer = http.get(f"/v1/campaigns/{reference}/report")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def executions(stack: Stack, provider: str, reference: str) -> int:
    entry = stack.ledger_entry(payout_workflow_id("acme", reference), provider=provider)
    return 0 if entry is None else int(entry["executions"])


def test_campaign_pays_every_valid_line_once_after_approval(stack: Stack) -> None:
    rows = lines_for(f"A{uuid.uuid4().hex[:6]}", PHONES, 4)
    reference, answer = submit(stack, rows)
    assert answer.status_code == 201, answer.text

    waiting = wait_phase(stack, reference, {"awaiting_approval"})
    assert waiting["valid_lines"] == 12 and waiting["invalid_lines"] == 0
    assert waiting["started_lines"] == 0
    fees = {t["provider"]: t["fees"] for t in waiting["preflight"]["totals"]}
    # NovaSend and MOBILE-PAY price nothing in advance: unknown, not 0.
    assert fees["novasend"] is None and fees["mobilepay"] is None
    assert isinstance(fees["caurisflux"], int)
    warnings = waiting["preflight"]["warnings"]
    assert len(warnings) == len(set(warnings)), warnings
    assert "novasend XOF: fees of 4 line(s) are not known before payment" in " ".join(warnings)
    assert all(executions(stack, row.split(",")[1], row.split(",")[0]) == 0 for row in rows)

    approved = control(stack, reference, "approve", {"approved_by": "Fatou (finance)"})
    assert approved.status_code == 200, approved.text
    done = wait_phase(stack, reference, FINAL_PHASES)

    assert done["phase"] == "completed", done
    assert done["by_status"]["succeeded"] == {
        "lines": 12,
        "amount": 120_000,
        "by_currency": {"XOF": 120_000},
    }
    assert done["paid"] == {"XOF": 120_000}
    assert done["approved_by"] == "Fatou (finance)"
    lines = report(stack, reference)
    assert [r["status"] for r in lines] == ["succeeded"] * 12
    for row in lines:
        assert executions(stack, row["provider"], row["reference"]) == 1
        assert row["provider_transaction_id"]
    with stack.gateway() as http:
        payout = http.get(f"/v1/payouts/{lines[0]['reference']}").json()
    assert payout["status"] == "succeeded"


def test_preflight_reports_every_bad_line_at_once(stack: Stack) -> None:
    tag = f"P{uuid.uuid4().hex[:6]}"
    earlier = f"{tag}-earlier"
    with stack.gateway() as http:
        created = http.post(
            "/v1/payouts",
            json={
                "reference": earlier,
                "provider": "caurisflux",
                "country": "SN",
                "operator": "wave",
                "recipient": {"phone": "+221771231201", "name": "Awa Diallo"},
                "amount": 10_000,
                "currency": "XOF",
            },
        )
    assert created.status_code == 201, created.text
    rows = [
        line(f"{tag}-ok", "caurisflux", 1),  # line 1: valid
        f"{tag}-2,caurisflux,SN,wave,+2250701231234,Kone,10000,XOF,",  # CI number for SN
        f"{tag}-3,caurisflux,SN,airtel,+221771231203,Kone,10000,XOF,",  # unknown operator
        line(f"{tag}-4", "caurisflux", 4, amount=50),  # below CaurisFlux's minimum
        line(f"{tag}-dup", "novasend", 5),  # lines 5 and 6 share a reference
        line(f"{tag}-dup", "novasend", 6),
        line(earlier, "caurisflux", 7),  # already used by a payout
        f"{tag}-8,novasend,CI,wave,+2250701231208,Kone,1000.50,XOF,",  # decimal amount
        f"{tag}-9,caurisflux,SN,wave,+221771231209,Kone,10000,XAF,",  # not SN's currency
        f"{tag}-10,caurisflux,SN,wave,+221771231210,,10000,XOF,",  # no name
    ]
    reference, answer = submit(stack, rows)
    assert answer.status_code == 201, answer.text

    waiting = wait_phase(stack, reference, {"awaiting_approval"})
    assert (waiting["lines"], waiting["valid_lines"], waiting["invalid_lines"]) == (10, 1, 9)
    with stack.gateway() as http:
        found = http.get(f"/v1/campaigns/{reference}/problems").json()
    rules = {(p["line"], p["field"], p["rule"]) for p in found["problems"]}
    assert (2, "phone", "number_in_country") in rules
    assert (3, "operator", "known_operator") in rules
    assert (4, "amount", "provider_limits") in rules
    assert (5, "reference", "unique_in_file") in rules
    assert (6, "reference", "unique_in_file") in rules
    assert (7, "reference", "unique_reference") in rules
    assert (8, "amount", "whole_number") in rules
    assert (9, "currency", "currency_of_country") in rules
    assert (10, "name", "required") in rules
    totals = found["preflight"]["totals"]
    assert [(t["provider"], t["lines"], t["amount"]) for t in totals] == [("caurisflux", 1, 10_000)]
    assert totals[0]["fees_quoted_lines"] == 1 and totals[0]["balance"] is not None
    assert found["preflight"]["blocking"] == []

    cancelled = control(stack, reference, "cancel", {"by": "Fatou", "reason": "bad file"})
    assert cancelled.status_code == 200, cancelled.text
    done = wait_phase(stack, reference, FINAL_PHASES)
    assert done["phase"] == "cancelled" and done["started_lines"] == 0
    statuses = {r["line"]: r["status"] for r in report(stack, reference)}
    assert statuses["1"] == "not_sent"
    assert {statuses[str(n)] for n in range(2, 11)} == {"invalid"}
    assert executions(stack, "caurisflux", f"{tag}-ok") == 0


def test_a_file_without_any_payable_line_is_rejected(stack: Stack) -> None:
    reference, answer = submit(
        stack, [f"R-{uuid.uuid4().hex[:6]},caurisflux,SN,wave,+221771231299,K,10,XOF,"]
    )
    assert answer.status_code == 201, answer.text
    done = wait_phase(stack, reference, FINAL_PHASES)
    assert done["phase"] == "rejected"
    assert "no payable line" in done["phase_reason"]
    assert control(stack, reference, "approve", {"approved_by": "x"}).status_code == 409


def test_malformed_uploads_are_refused_and_start_nothing(stack: Stack) -> None:
    reference = f"M-{uuid.uuid4().hex[:8]}"
    with stack.gateway() as http:
        wrong_type = http.post(
            "/v1/campaigns",
            params={"reference": reference},
            content=b"x",
            headers={"Content-Type": "application/pdf"},
        )
        bad_header = http.post(
            "/v1/campaigns",
            params={"reference": reference},
            content=b"reference,ammount\nA,1\n",
            headers={"Content-Type": "text/csv"},
        )
        empty = http.post(
            "/v1/campaigns",
            params={"reference": reference},
            content=HEADER.encode(),
            headers={"Content-Type": "text/csv"},
        )
        missing = http.get(f"/v1/campaigns/{reference}")
    assert wrong_type.status_code == 415
    assert bad_header.status_code == 422
    problems = {(p["field"], p["rule"]) for p in bad_header.json()["problems"]}
    assert ("header", "required_columns") in problems and ("header", "known_columns") in problems
    assert empty.status_code == 422
    assert missing.status_code == 404


def test_same_reference_is_idempotent_and_another_file_conflicts(stack: Stack) -> None:
    rows = [line(f"I{uuid.uuid4().hex[:6]}-1", "novasend", 1)]
    reference, first = submit(stack, rows)
    _, again = submit(stack, rows, reference=reference)
    _, other = submit(stack, [*rows, line("extra-1", "novasend", 2)], reference=reference)
    with stack.gateway(GLOBEX_KEY) as http:
        foreign = http.get(f"/v1/campaigns/{reference}")

    assert first.status_code == 201
    assert again.status_code == 200 and again.json()["campaign_id"] == first.json()["campaign_id"]
    assert other.status_code == 409
    assert foreign.status_code == 404
    control(stack, reference, "cancel", {"by": "test"})


async def test_a_campaign_submitted_before_keyed_fingerprints_is_still_a_retry(
    stack: Stack, client: Client
) -> None:
    """Campaign memos were an unkeyed SHA-256 before they became an HMAC: the same
    submission after an upgrade is answered as a retry (200), another file still as 409."""
    rows = [line(f"K{uuid.uuid4().hex[:6]}-1", "novasend", 1)]
    first_reference, first = submit(stack, rows)
    assert first.status_code == 201, first.text
    handle = client.get_workflow_handle(first.json()["campaign_id"])
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [submitted] = await client.data_converter.decode(payloads, [CampaignInput])
        break
    control(stack, first_reference, "cancel", {"by": "test"})
    # The same submission under another reference, started as an earlier version did.
    reference = f"C-{uuid.uuid4().hex[:12]}"
    earlier = submitted.model_copy(
        update={"campaign_id": campaign_workflow_id("acme", reference), "reference": reference}
    )
    canonical = {
        "file": earlier.file_sha256,
        "name": earlier.name,
        "options": earlier.options.model_dump(mode="json", exclude={"max_in_flight_by_provider"}),
    }
    unkeyed = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    await client.start_workflow(
        CAMPAIGN_WORKFLOW,
        earlier,
        id=earlier.campaign_id,
        task_queue=workflow_task_queue("momoflow-test"),
        memo={FINGERPRINT_MEMO: unkeyed},
    )

    _, again = submit(stack, rows, reference=reference)
    _, other = submit(stack, [*rows, line("extra-1", "novasend", 2)], reference=reference)

    assert again.status_code == 200, again.text
    assert again.json()["campaign_id"] == earlier.campaign_id
    assert other.status_code == 409
    control(stack, reference, "cancel", {"by": "test"})


def test_pause_stops_new_lines_and_resume_finishes_them(stack: Stack) -> None:
    rows = lines_for(f"Z{uuid.uuid4().hex[:6]}", ["caurisflux"], 20)
    reference, answer = submit(stack, rows, max_in_flight_per_provider=1)
    assert answer.status_code == 201, answer.text
    wait_phase(stack, reference, {"awaiting_approval"})
    assert control(stack, reference, "approve", {"approved_by": "Fatou"}).status_code == 200
    paused = control(stack, reference, "pause", {"by": "Fatou"})
    assert paused.status_code == 200, paused.text

    still = wait_until(
        lambda: (p := progress(stack, reference))["in_flight"] == 0 and p,
        timeout=60,
        what="lines in flight to finish",
    )
    assert still["phase"] == "paused" and still["started_lines"] < 20
    started = still["started_lines"]
    deadline_checks = [progress(stack, reference)["started_lines"] for _ in range(10)]
    assert set(deadline_checks) == {started}, "a paused campaign started new lines"

    assert control(stack, reference, "resume", {"by": "Fatou"}).status_code == 200
    done = wait_phase(stack, reference, FINAL_PHASES)
    assert done["phase"] == "completed"
    assert done["by_status"]["succeeded"]["lines"] == 20
    assert all(executions(stack, "caurisflux", r.split(",")[0]) == 1 for r in rows)


def test_cancel_stops_new_lines_and_reports_the_ones_sent(stack: Stack) -> None:
    rows = lines_for(f"X{uuid.uuid4().hex[:6]}", ["caurisflux"], 20)
    reference, answer = submit(stack, rows, max_in_flight_per_provider=1)
    assert answer.status_code == 201, answer.text
    wait_phase(stack, reference, {"awaiting_approval"})
    control(stack, reference, "approve", {"approved_by": "Fatou"})
    wait_until(
        lambda: progress(stack, reference)["settled_lines"] >= 2, timeout=60, what="2 lines paid"
    )
    cancelled = control(stack, reference, "cancel", {"by": "Fatou", "reason": "wrong month"})
    assert cancelled.status_code == 200, cancelled.text

    done = wait_phase(stack, reference, FINAL_PHASES)
    assert done["phase"] == "cancelled" and done["cancelled_by"] == "Fatou"
    assert 2 <= done["started_lines"] < 20
    assert done["settled_lines"] == done["started_lines"]
    rows_out = report(stack, reference)
    sent = [r for r in rows_out if r["status"] == "succeeded"]
    unsent = [r for r in rows_out if r["status"] == "not_sent"]
    assert len(sent) == done["started_lines"] and len(sent) + len(unsent) == 20
    assert all(executions(stack, "caurisflux", r["reference"]) == 1 for r in sent)
    assert all(executions(stack, "caurisflux", r["reference"]) == 0 for r in unsent)
    assert control(stack, reference, "resume", {"by": "Fatou"}).status_code == 409


def test_provider_outage_pauses_only_that_provider_then_resumes(stack: Stack) -> None:
    tag = f"O{uuid.uuid4().hex[:6]}"
    rows = lines_for(tag, ["caurisflux", "novasend"], 8)
    stack.fault("caurisflux", kind="error", operation="*", status=503, count=None)
    reference, answer = submit(
        stack,
        rows,
        auto_approve="true",
        max_in_flight_per_provider=2,
        outage_error_threshold=2,
        outage_probe_interval_s=2,
    )
    assert answer.status_code == 201, answer.text
    # Pre-flight sees CaurisFlux down: auto-approval is held back.
    held = wait_phase(stack, reference, {"awaiting_approval"})
    assert any("caurisflux is unavailable" in b for b in held["preflight"]["blocking"])
    refused = control(stack, reference, "approve", {"approved_by": "Fatou"})
    assert refused.status_code == 409 and "override_blocking" in refused.json()["message"]
    control(stack, reference, "approve", {"approved_by": "Fatou", "override_blocking": True})

    paused = wait_until(
        lambda: "caurisflux" in (p := progress(stack, reference))["paused_providers"] and p,
        timeout=90,
        what="CaurisFlux paused by the outage threshold",
    )
    assert "novasend" not in paused["paused_providers"]
    wait_until(
        lambda: progress(stack, reference)["by_status"].get("succeeded", {}).get("lines") == 8,
        timeout=60,
        what="NovaSend's 8 lines paid during the CaurisFlux outage",
    )
    stack.clear_faults()

    done = wait_phase(stack, reference, FINAL_PHASES, timeout=120)
    assert done["phase"] == "completed"
    by_reference = {r["reference"]: r for r in report(stack, reference)}
    failed = [r for r in by_reference.values() if r["status"] == "failed"]
    assert len(failed) == 2 and {r["error_code"] for r in failed} == {"provider_unavailable"}
    assert done["by_status"]["succeeded"]["lines"] == 14
    for ref, row in by_reference.items():
        expected = 1 if row["status"] == "succeeded" else 0
        assert executions(stack, row["provider"], ref) == expected


async def test_continue_as_new_keeps_progress_exact(stack: Stack, client: Client) -> None:
    rows = lines_for(f"N{uuid.uuid4().hex[:6]}", ["caurisflux", "novasend", "mobilepay"], 20)
    reference, answer = submit(
        stack, rows, auto_approve="true", max_in_flight_per_provider=5, max_history_events=200
    )
    assert answer.status_code == 201, answer.text
    done = wait_phase(stack, reference, FINAL_PHASES, timeout=240)

    assert done["phase"] == "completed" and done["runs"] > 2
    assert done["by_status"] == {
        "succeeded": {"lines": 60, "amount": 600_000, "by_currency": {"XOF": 600_000}}
    }
    assert done["settled_lines"] == done["started_lines"] == 60
    lines = report(stack, reference)
    assert len(lines) == 60 and {r["status"] for r in lines} == {"succeeded"}
    for row in lines:
        assert executions(stack, row["provider"], row["reference"]) == 1
    lengths = []
    async for run in client.list_workflows(f"WorkflowId = '{done['campaign_id']}'"):
        handle = client.get_workflow_handle(done["campaign_id"], run_id=run.run_id)
        lengths.append(len((await handle.fetch_history()).events))
    # Each run stops starting lines at the threshold; the lines it started still report.
    assert len(lengths) == done["runs"] and max(lengths) <= 200 + 120, lengths


@pytest.mark.slow
def test_campaign_pays_every_line_once_when_its_worker_is_killed_twice(stack: Stack) -> None:
    rows = lines_for(f"K{uuid.uuid4().hex[:6]}", ["caurisflux", "novasend", "mobilepay"], 40)
    reference, answer = submit(stack, rows, auto_approve="true", max_in_flight_per_provider=10)
    assert answer.status_code == 201, answer.text
    for threshold in (20, 70):
        wait_until(
            lambda t=threshold: progress(stack, reference)["started_lines"] >= t,
            timeout=120,
            what=f"{threshold} lines started",
        )
        stack.processes["worker"].kill()
        stack.start_worker("worker", prefix="momoflow-test")

    done = wait_phase(stack, reference, FINAL_PHASES, timeout=300)
    assert done["phase"] == "completed", done
    lines = report(stack, reference)
    assert len(lines) == 120
    in_doubt = []
    for row in lines:
        entry = stack.ledger_entry(
            payout_workflow_id("acme", row["reference"]), provider=row["provider"]
        )
        if row["status"] == "reconciling":
            # A MOBILE-PAY create killed with its worker leaves no proof that it was never
            # sent, and MOBILE-PAY has no idempotency: such a line waits for an operator
            # instead of being sent again. It may have executed at most once.
            assert row["provider"] == "mobilepay" and row["error_code"], row
            assert entry is None or entry["executions"] == 1, (row, entry)
            in_doubt.append(row)
            continue
        assert entry is not None and entry["executions"] == 1, row
        assert row["status"] == "succeeded" and entry["status"] in ("completed", "succeeded")
        assert row["provider_transaction_id"] == entry["transactionId"]
    # Two kills can leave at most the creates they interrupted in doubt.
    assert len(in_doubt) <= 2 * 10, in_doubt
    assert done["by_status"]["succeeded"]["lines"] == 120 - len(in_doubt)


def test_campaign_windows_follow_each_providers_rate_limit() -> None:
    from momoflow.campaigns.models import window_for_rate

    # CaurisFlux Standard (100/min), NovaSend (300/min), MOBILE-PAY Free (100/hour).
    assert window_for_rate(100 / 60, cap=50) == 25
    assert window_for_rate(300 / 60, cap=50) == 50
    assert window_for_rate(100 / 3600, cap=50) == 1


def test_a_short_balance_blocks_approval_unless_overridden(stack: Stack) -> None:
    stack.configure_sandbox("caurisflux", balance=15_000)
    try:
        rows = [line(f"B{uuid.uuid4().hex[:6]}-{n}", "caurisflux", n) for n in range(2)]
        reference, answer = submit(stack, rows, auto_approve="true")
        assert answer.status_code == 201, answer.text
        held = wait_phase(stack, reference, {"awaiting_approval"})
    finally:
        stack.configure_sandbox("caurisflux", balance=100_000_000)

    blocking = held["preflight"]["blocking"]
    assert len(blocking) == 1 and "caurisflux XOF balance 15,000" in blocking[0], blocking
    assert "auto_approve held back" in held["phase_reason"]
    refused = control(stack, reference, "approve", {"approved_by": "Fatou"})
    assert refused.status_code == 409 and "short by" in refused.json()["message"]
    forced = control(
        stack, reference, "approve", {"approved_by": "Fatou", "override_blocking": True}
    )
    assert forced.status_code == 200, forced.text
    assert "approved over" in forced.json()["phase_reason"]
    done = wait_phase(stack, reference, FINAL_PHASES)
    assert done["phase"] == "completed"


def test_json_lines_campaign_with_default_routing(stack: Stack) -> None:
    tag = f"J{uuid.uuid4().hex[:6]}"
    records = [
        # No provider: CI/wave routes to the first enabled provider paying Wave in CI.
        {
            "reference": f"{tag}-1",
            "country": "CI",
            "operator": "wave",
            "phone": "07 01 23 11 41",
            "name": "Kouadio Yao",
            "amount": "25 000",
            "currency": "XOF",
        },
        {
            "reference": f"{tag}-2",
            "provider": "mobilepay",
            "country": "CI",
            "operator": "orange_money",
            "phone": "+2250701231142",
            "name": "Aya Kone",
            "amount": 30000,
            "currency": "XOF",
            "description": "June",
        },
    ]
    body = "\n".join(json.dumps(r) for r in records) + "\n"
    reference = f"C-{uuid.uuid4().hex[:12]}"
    with stack.gateway() as http:
        answer = http.post(
            "/v1/campaigns",
            params={"reference": reference, "auto_approve": "true"},
            content=body.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
    assert answer.status_code == 201, answer.text
    done = wait_phase(stack, reference, FINAL_PHASES)

    assert done["phase"] == "completed", done
    rows = {r["reference"]: r for r in report(stack, reference)}
    assert rows[f"{tag}-1"]["provider"] == "caurisflux" and rows[f"{tag}-1"]["amount"] == "25000"
    assert rows[f"{tag}-2"]["provider"] == "mobilepay"
    assert {r["status"] for r in rows.values()} == {"succeeded"}
    assert rows[f"{tag}-1"]["recipient"].endswith("1141") and "0701231141" not in str(rows)


# ------------------------------------------------------------------ blocked and retried


def store_folder(stack: Stack, reference: str) -> Path:
    """The campaign's folder in the stack's campaign store."""
    return stack.root / "campaigns" / campaign_workflow_id("acme", reference)


def put_in_the_way(folder: Path, *names: str) -> None:
    """A file where the store must make a folder: a fault that no retry cures (unlike a
    permission, which root, running these tests in CI, would not feel)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("a file where the campaign store needs a folder\n")


def wait_blocked_at(stack: Stack, reference: str, step: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = progress(stack, reference)
        blocked = body["phase"] == "blocked" and body["phase_reason"].startswith(f"{step} ")
        return body if blocked else None

    found: dict[str, Any] = wait_until(check, timeout=120, what=f"campaign blocked at {step}")
    return found


async def status_attribute(client: Client, campaign_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    query = f"WorkflowId = '{campaign_id}' AND PaymentStatus = '{status}'"
    while time.monotonic() < deadline:
        if [wf async for wf in client.list_workflows(query)]:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"no workflow matches {query}")


async def test_a_step_no_retry_can_cure_blocks_the_campaign_until_fixed_and_retried(
    stack: Stack, client: Client, tmp_path: Path
) -> None:
    tag = f"BL{uuid.uuid4().hex[:6]}"
    reference = f"C-{tag}"
    rows = lines_for(tag, ["caurisflux", "novasend"], 2)
    folder = store_folder(stack, reference)
    put_in_the_way(folder, "lines", "outcomes")
    _, answer = submit(stack, rows, reference=reference)
    assert answer.status_code == 201, answer.text

    # Pre-flight cannot write the checked lines: blocked, with the step and the cause.
    blocked = wait_blocked_at(stack, reference, "prepare_campaign")
    reason = blocked["phase_reason"]
    assert "NotADirectoryError" in reason and f"{folder.name}/lines" in reason, reason
    await status_attribute(client, blocked["campaign_id"], "blocked")
    status = run_cli(stack, tmp_path, "status", reference)
    assert status.returncode == 0, explain(status)
    assert "phase: blocked" in status.stdout and f"{folder.name}/lines" in status.stdout
    assert f"momoflow campaign retry {reference} --by NAME" in status.stdout
    problems = run_cli(stack, tmp_path, "problems", reference)
    assert problems.returncode == 0, explain(problems)
    assert f"Campaign {reference} is blocked: prepare_campaign" in problems.stdout
    assert "NotADirectoryError" in problems.stdout
    assert "has not finished yet" not in problems.stdout
    watched = run_cli(stack, tmp_path, "watch", reference, "--interval", "0.5", timeout=60)
    assert watched.returncode == 9, explain(watched)
    assert f"Campaign {reference} is blocked: prepare_campaign" in watched.stdout
    refused = control(stack, reference, "approve", {"approved_by": "Fatou"})
    assert refused.status_code == 409 and "blocked" in refused.json()["message"]
    assert control(stack, reference, "pause", {"by": "Fatou"}).status_code == 409

    (folder / "lines").unlink()
    retried = control(stack, reference, "retry", {"by": "ops"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["phase"] == "preflight"
    assert retried.json()["phase_reason"] == "retried by ops"
    waiting = wait_phase(stack, reference, {"awaiting_approval"})
    assert waiting["valid_lines"] == 4
    again = control(stack, reference, "retry", {"by": "ops"})
    assert again.status_code == 409 and "not blocked" in again.json()["message"]

    # A page of lines lost between pre-flight and approval: blocked before any line is
    # sent, instead of waiting for ever for lines that never come.
    page = folder / "lines" / "caurisflux" / "000000.jsonl"
    shutil.move(page, tmp_path / "page.jsonl")
    assert control(stack, reference, "approve", {"approved_by": "Fatou"}).status_code == 200
    blocked = wait_blocked_at(stack, reference, "read_campaign_lines")
    assert "FileNotFoundError" in blocked["phase_reason"]
    assert f"{folder.name}/lines/caurisflux/000000.jsonl" in blocked["phase_reason"]
    assert blocked["started_lines"] == 0
    shutil.move(tmp_path / "page.jsonl", page)
    cli_retry = run_cli(stack, tmp_path, "retry", reference, "--by", "ops")
    assert cli_retry.returncode == 0, explain(cli_retry)
    assert f"Campaign {reference} retried by ops" in cli_retry.stdout

    # Every line paid, but the outcomes cannot be recorded: blocked again.
    blocked = wait_blocked_at(stack, reference, "record_campaign_outcomes")
    assert f"{folder.name}/outcomes" in blocked["phase_reason"], blocked["phase_reason"]
    (folder / "outcomes").unlink()
    assert control(stack, reference, "retry", {"by": "ops"}).status_code == 200

    done = wait_phase(stack, reference, FINAL_PHASES)
    assert done["phase"] == "completed", done
    assert done["by_status"]["succeeded"]["lines"] == 4 and done["settled_lines"] == 4
    assert (folder / "outcomes").is_dir()
    lines = report(stack, reference)
    assert [r["status"] for r in lines] == ["succeeded"] * 4
    for row in lines:
        assert executions(stack, row["provider"], row["reference"]) == 1, row


def test_retry_is_refused_unless_blocked_and_cancel_ends_a_blocked_campaign(
    stack: Stack,
) -> None:
    tag = f"BC{uuid.uuid4().hex[:6]}"
    waiting, answer = submit(stack, lines_for(f"{tag}-w", ["novasend"], 1))
    assert answer.status_code == 201, answer.text
    wait_phase(stack, waiting, {"awaiting_approval"})
    refused = control(stack, waiting, "retry", {"by": "ops"})
    assert refused.status_code == 409, refused.text
    assert (
        refused.json()["message"]
        == "the campaign is awaiting_approval, not blocked: nothing to retry"
    )
    control(stack, waiting, "cancel", {"by": "test"})

    reference = f"C-{tag}"
    put_in_the_way(store_folder(stack, reference), "lines")
    rows = lines_for(tag, ["caurisflux"], 2)
    _, answer = submit(stack, rows, reference=reference)
    assert answer.status_code == 201, answer.text
    wait_blocked_at(stack, reference, "prepare_campaign")
    cancelled = control(stack, reference, "cancel", {"by": "Fatou", "reason": "store broken"})
    assert cancelled.status_code == 200, cancelled.text

    done = wait_phase(stack, reference, FINAL_PHASES)
    assert done["phase"] == "cancelled" and done["started_lines"] == 0
    assert done["phase_reason"] == "cancelled by Fatou: store broken"
    assert control(stack, reference, "retry", {"by": "ops"}).status_code == 409
    assert [r["status"] for r in report(stack, reference)] == ["not_sent"] * 2
    assert all(executions(stack, "caurisflux", row.split(",")[0]) == 0 for row in rows)

    # Blocked after paying: cancelling gives up recording the outcomes, and the report
    # reads them from the payouts.
    paid = f"C-{tag}-paid"
    put_in_the_way(store_folder(stack, paid), "outcomes")
    rows = lines_for(f"{tag}-p", ["novasend"], 2)
    _, answer = submit(stack, rows, reference=paid, auto_approve="true")
    assert answer.status_code == 201, answer.text
    wait_blocked_at(stack, paid, "record_campaign_outcomes")
    assert control(stack, paid, "cancel", {"by": "Fatou"}).status_code == 200
    done = wait_phase(stack, paid, FINAL_PHASES)
    assert done["phase"] == "cancelled" and done["by_status"]["succeeded"]["lines"] == 2
    assert [r["status"] for r in report(stack, paid)] == ["succeeded"] * 2
    assert all(executions(stack, "novasend", row.split(",")[0]) == 1 for row in rows)


# ------------------------------------------------------------------ pre-flight output


def _payout(n: int, provider: str, country: str, operator: str, amount: int) -> CampaignLine:
    currency = Currency.XAF if country == "CM" else Currency.XOF
    return CampaignLine(
        line=n,
        payout=PayoutInput(
            merchant="acme",
            reference=f"L-{n}",
            provider=ProviderName(provider),
            country=Country(country),
            operator=Operator(operator),
            recipient_phone="+221771231100",
            recipient_name="Awa Diallo",
            amount=amount,
            currency=currency,
            request_fingerprint=f"fp-{n}",
            requested_at=dt.datetime(2026, 6, 30, tzinfo=dt.UTC),
        ),
    )


def _checks(
    tmp_path: Path, lines: list[CampaignLine], quote_fees: int | None
) -> tuple[PreflightChecks, CampaignStore]:
    store = CampaignStore(LocalBlobStore(tmp_path))
    by_provider: dict[ProviderName, list[CampaignLine]] = {}
    for line_ in lines:
        by_provider.setdefault(line_.payout.provider, []).append(line_)
    for provider, provider_lines in by_provider.items():
        store.save_lines("c1", provider, provider_lines)
    groups = _quote_groups(by_provider)
    checks = PreflightChecks(
        campaign_id="c1",
        prepared=PreparedCampaign(
            lines=len(lines),
            valid_lines=len(lines),
            invalid_lines=0,
            problem_count=0,
            totals=_totals(by_provider),
            lines_by_provider={p: len(ls) for p, ls in by_provider.items()},
            quote_groups=groups,
        ),
    )
    for group in groups:
        error = "" if quote_fees is not None else "HTTP 502 from the provider"
        checks.quotes.append(GroupQuote(group=group, fees=quote_fees, error=error))
        if quote_fees is None:
            # What the workflow records for a failed quote.
            amount = format_amount(group.amount, group.currency)
            checks.errors.setdefault(group.provider, []).append(
                f"quote of {amount} failed: {error}"
            )
    for provider in by_provider:
        checks.availability[provider] = ProviderAvailability(provider=provider, available=True)
        checks.balances[provider] = [
            ProviderBalance(provider=provider, currency=c, balance=10**9, available=10**9)
            for c in (Currency.XOF, Currency.XAF)
        ]
    return checks, store


def test_preflight_says_each_warning_once_per_provider_and_currency(tmp_path: Path) -> None:
    lines = [
        _payout(1, "novasend", "CI", "wave", 10_000),
        _payout(2, "novasend", "CM", "mtn_momo", 10_000),
        # Two prices of one amount (two operators), both failing the same way.
        _payout(3, "caurisflux", "SN", "wave", 10_000),
        _payout(4, "caurisflux", "SN", "orange_money", 10_000),
    ]
    checks, store = _checks(tmp_path, lines, quote_fees=None)

    preflight = judge_preflight(checks, store, checked_at=dt.datetime.now(dt.UTC))

    warnings = preflight.warnings
    assert len(warnings) == len(set(warnings)), warnings
    assert sorted(warnings) == [
        "caurisflux XOF: fees of 2 line(s) are not known before payment (no quote of this "
        "provider succeeded)",
        "caurisflux quote of 10,000 XOF failed: HTTP 502 from the provider (2 times)",
        "novasend XAF: fees of 1 line(s) are not known before payment (the provider quotes "
        "nothing in advance)",
        "novasend XOF: fees of 1 line(s) are not known before payment (the provider quotes "
        "nothing in advance)",
    ]
    assert preflight.blocking == []


def test_an_unknown_fee_is_never_a_zero_fee(tmp_path: Path) -> None:
    lines = [
        _payout(1, "novasend", "CI", "wave", 10_000),
        _payout(2, "caurisflux", "SN", "wave", 20_000),
    ]
    unknown, store = _checks(tmp_path / "unknown", lines, quote_fees=None)
    free, free_store = _checks(tmp_path / "free", lines, quote_fees=0)

    totals = {
        (t.provider.value, t.fees)
        for t in judge_preflight(unknown, store, checked_at=dt.datetime.now(dt.UTC)).totals
    }
    priced = judge_preflight(free, free_store, checked_at=dt.datetime.now(dt.UTC))

    assert totals == {("novasend", None), ("caurisflux", None)}
    by_provider = {t.provider.value: t for t in priced.totals}
    # A fee the provider quoted as 0 is known: 0, not unknown.
    assert by_provider["caurisflux"].fees == 0
    assert by_provider["caurisflux"].fees_quoted_lines == 1
    assert by_provider["novasend"].fees is None
    assert by_provider["novasend"].fees_unknown_lines == 1
    assert json.loads(priced.model_dump_json())["totals"][1]["fees"] is None


async def test_a_failed_lines_report_row_shows_no_fee(tmp_path: Path) -> None:
    store = CampaignStore(LocalBlobStore(tmp_path))
    data = (
        f"{HEADER}\n"
        "R-1,caurisflux,SN,wave,+221770000000,Awa Diallo,10000,XOF,\n"
        "R-2,caurisflux,SN,wave,+221771231101,Awa Diallo,10000,XOF,\n"
    ).encode()
    digest = store.save_upload("campaign-acme-R", FileFormat.CSV, data)
    now = dt.datetime.now(dt.UTC)

    def outcome(reference: str, status: str, provider_amount: int | None = None) -> LineOutcome:
        # The quoted fee is on the payout before it is sent, whatever happens next.
        return LineOutcome(
            workflow_id=payout_workflow_id("acme", reference),
            reference=reference,
            provider=ProviderName.CAURISFLUX,
            status=status,
            amount=10_000,
            currency=Currency.XOF,
            fees=150,
            at=now,
            provider_amount=provider_amount,
        )

    store.save_outcomes(
        "campaign-acme-R",
        0,
        [outcome("R-1", "failed"), outcome("R-2", "succeeded", 10_000)],
    )
    progress_ = CampaignProgress(
        campaign_id="campaign-acme-R",
        merchant="acme",
        reference="R",
        file_format=FileFormat.CSV,
        file_sha256=digest,
        phase=CampaignPhase.COMPLETED,
        submitted_at=now,
        updated_at=now,
    )

    async def nothing_live(workflow_id: str) -> LineOutcome | None:
        return None

    rows = await build_report(store, progress_, nothing_live)

    assert [(r.reference, r.status, r.fees) for r in rows] == [
        ("R-1", "failed", None),
        ("R-2", "succeeded", 150),
    ]


async def test_an_amount_mismatch_shows_both_amounts_in_the_report(tmp_path: Path) -> None:
    store = CampaignStore(LocalBlobStore(tmp_path))
    data = f"{HEADER}\nM-1,caurisflux,SN,wave,+221771231101,Awa Diallo,300,XOF,\n".encode()
    digest = store.save_upload("campaign-acme-M", FileFormat.CSV, data)
    now = dt.datetime.now(dt.UTC)
    mismatch = LineOutcome(
        workflow_id=payout_workflow_id("acme", "M-1"),
        reference="M-1",
        provider=ProviderName.CAURISFLUX,
        status="reconciling",
        amount=300,
        currency=Currency.XOF,
        failure_code="amount_mismatch",
        failure_message="the provider reports a success for 153 XOF, but 300 XOF was asked",
        at=now,
        provider_amount=153,
    )
    store.save_outcomes("campaign-acme-M", 0, [mismatch])
    progress_ = CampaignProgress(
        campaign_id="campaign-acme-M",
        merchant="acme",
        reference="M",
        file_format=FileFormat.CSV,
        file_sha256=digest,
        phase=CampaignPhase.COMPLETED,
        submitted_at=now,
        updated_at=now,
    )

    async def live(workflow_id: str) -> LineOutcome | None:
        # A reconciling line is read again from its payout: it is still in doubt.
        return mismatch

    rows = await build_report(store, progress_, live)
    lines = list(csv.DictReader(io.StringIO("".join(report_csv(rows)))))

    assert [(r["status"], r["amount"], r["provider_amount"], r["error_code"]) for r in lines] == [
        ("reconciling", "300", "153", "amount_mismatch")
    ]


# ------------------------------------------------------------------ the user guide


def _documented(language: str) -> str:
    """The first ``language`` code block of docs/campaigns.md (the example file)."""
    guide = (Path(__file__).parent.parent / "docs" / "campaigns.md").read_text()
    return guide.split(f"```{language}\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize(
    ("language", "content_type"), [("csv", "text/csv"), ("json", "application/x-ndjson")]
)
def test_the_documented_example_file_pays_every_line(
    stack: Stack, language: str, content_type: str
) -> None:
    tag = f"D{uuid.uuid4().hex[:6]}"
    body = _documented(language).replace("JUN-", f"{tag}-JUN-")
    reference = f"C-{tag}"
    with stack.gateway() as http:
        answer = http.post(
            "/v1/campaigns",
            params={"reference": reference, "auto_approve": "true"},
            content=body.encode(),
            headers={"Content-Type": content_type},
        )
    assert answer.status_code == 201, answer.text

    done = wait_phase(stack, reference, FINAL_PHASES)
    assert done["phase"] == "completed" and done["invalid_lines"] == 0, done
    rows = report(stack, reference)
    assert len(rows) == body.count(f"{tag}-JUN-") >= 2
    assert {(r["status"], r["error_code"]) for r in rows} == {("succeeded", "")}, rows
    for row in rows:
        assert executions(stack, row["provider"], row["reference"]) == 1, row


def test_campaign_fingerprints_are_keyed_and_ignore_this_gateways_windows() -> None:
    campaign = CampaignInput(
        campaign_id="campaign-acme-F1",
        merchant="acme",
        reference="F1",
        name="June suppliers",
        file_format=FileFormat.CSV,
        file_sha256="ab" * 32,
        submitted_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
    )
    other_gateway = campaign.model_copy(deep=True)
    other_gateway.options.max_in_flight_by_provider = {ProviderName.NOVASEND: 3}
    renamed = campaign.model_copy(update={"name": "July suppliers"})

    assert campaign_fingerprint(campaign, "s1") != campaign_fingerprint(campaign, "s2")
    assert campaign_fingerprint(other_gateway, "s1") == campaign_fingerprint(campaign, "s1")
    assert campaign_fingerprint(renamed, "s1") != campaign_fingerprint(campaign, "s1")
