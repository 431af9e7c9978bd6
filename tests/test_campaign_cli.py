"""``momoflow campaign ...`` as a finance team runs it: a subprocess talking HTTP to the
real session stack (gateway, worker, Temporal, sandboxes)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from momoflow.campaigns.cli import render_preflight
from momoflow.campaigns.models import Preflight, PreparedCampaign, ProviderTotals
from momoflow.ids import payout_workflow_id
from momoflow.models import ProviderName
from momoflow.money import Currency
from momoflow.processes import free_port
from tests.stack import ACME_KEY, Stack, wait_until

HEADER = "reference,provider,country,operator,phone,name,amount,currency,description"
#: Exit codes documented in momoflow/campaigns/cli.py.
EXIT_UNAUTHENTICATED, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_INVALID, EXIT_UNAVAILABLE = 3, 4, 5, 6, 7
EXIT_TERMINATED = 143


def cli_env(stack: Stack, key: str) -> dict[str, str]:
    # Wide enough that rich never wraps a line the assertions read.
    return {**os.environ, **stack.env, "MOMOFLOW_API_KEY": key, "COLUMNS": "200"}


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "momoflow.cli", "campaign", *args]


def run_cli(
    stack: Stack, cwd: Path, *args: str, key: str = ACME_KEY, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cli_argv(*args),
        env=cli_env(stack, key),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert key not in done.stdout + done.stderr, "the CLI printed the API key"
    return done


def explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def progress(stack: Stack, reference: str) -> dict[str, Any]:
    with stack.gateway() as http:
        answer = http.get(f"/v1/campaigns/{reference}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def wait_phase(stack: Stack, reference: str, phase: str, timeout: float = 120) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = progress(stack, reference)
        return body if body["phase"] == phase else None

    found: dict[str, Any] = wait_until(check, timeout=timeout, what=f"campaign in {phase}")
    return found


def caurisflux_rows(tag: str, count: int) -> list[str]:
    return [
        f"{tag}-{n},caurisflux,SN,wave,+22177123{1100 + n:04d},Awa Diallo {n},1000,XOF,line {n}"
        for n in range(count)
    ]


def test_finance_team_submits_approves_watches_and_downloads_the_report(
    stack: Stack, tmp_path: Path
) -> None:
    tag = f"CLI{uuid.uuid4().hex[:6]}"
    reference = f"C-{tag}"
    rows = [
        f"{tag}-ok1,caurisflux,SN,wave,+221771231101,Awa Diallo,10000,XOF,June",
        # A national number: read with the line's country.
        f"{tag}-ok2,caurisflux,SN,wave,77 123 11 02,Moussa Kone,15000,XOF,June",
        f"{tag}-ok3,novasend,CI,wave,+2250701231103,Fatou Ba,20000,XOF,June",
        # The CaurisFlux sandbox declines numbers ending in 0000.
        f"{tag}-no,caurisflux,SN,wave,+221770000000,Ibrahima Sow,5000,XOF,June",
        f"{tag}-bad,caurisflux,SN,wavy,+221771231104,Bad Operator,5000,XOF,June",
    ]
    # A spreadsheet export: semicolons, a byte order mark.
    path = tmp_path / "suppliers.csv"
    path.write_text("\ufeff" + "\n".join([HEADER, *rows]).replace(",", ";") + "\n")

    submitted = run_cli(stack, tmp_path, "submit", str(path), "--reference", reference)
    assert submitted.returncode == 0, explain(submitted)
    assert f"Campaign {reference} submitted: 5 lines (csv)" in submitted.stdout

    waiting = wait_phase(stack, reference, "awaiting_approval")
    assert (waiting["valid_lines"], waiting["invalid_lines"]) == (4, 1)

    problems = run_cli(stack, tmp_path, "problems", reference)
    assert problems.returncode == 0, explain(problems)
    problem_rows = [line for line in problems.stdout.splitlines() if f"{tag}-bad" in line]
    assert len(problem_rows) == 1 and "known_operator" in problem_rows[0], problems.stdout
    assert "1 problem(s) on 1 line(s)" in problems.stdout
    assert "no blocking problem" in problems.stdout

    approved = run_cli(stack, tmp_path, "approve", reference, "--by", "Fatou (finance)")
    assert approved.returncode == 0, explain(approved)
    assert "approved by Fatou (finance)" in approved.stdout

    again = run_cli(stack, tmp_path, "approve", reference, "--by", "Fatou (finance)")
    assert again.returncode == EXIT_CONFLICT, explain(again)
    assert "409 campaign_state" in again.stderr and "approv" in again.stderr, again.stderr
    assert again.stdout == ""

    watched = run_cli(stack, tmp_path, "watch", reference, "--interval", "0.5")
    assert watched.returncode == 0, explain(watched)
    last = watched.stdout.strip().splitlines()[-1]
    assert last == (
        f"Campaign {reference} completed: 5 lines: 3 succeeded, 1 failed, 1 invalid; "
        "paid 45,000 XOF."
    ), watched.stdout
    assert "phase: completed" in watched.stdout

    report_path = tmp_path / "report.csv"
    reported = run_cli(stack, tmp_path, "report", reference, "-o", str(report_path))
    assert reported.returncode == 0, explain(reported)
    assert "5 lines (3 succeeded, 1 failed, 1 invalid)" in reported.stderr
    with report_path.open(newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert [(r["line"], r["reference"], r["status"]) for r in report] == [
        ("1", f"{tag}-ok1", "succeeded"),
        ("2", f"{tag}-ok2", "succeeded"),
        ("3", f"{tag}-ok3", "succeeded"),
        ("4", f"{tag}-no", "failed"),
        ("5", f"{tag}-bad", "invalid"),
    ]
    assert all(r["provider_transaction_id"] for r in report[:4])
    assert report[3]["error_code"] and report[4]["error_code"] == "known_operator"
    # The declined line was quoted a fee before it was sent, and never charged it.
    assert report[3]["fees"] == "" and report[0]["fees"] != ""
    for row in report[:4]:
        entry = stack.ledger_entry(
            payout_workflow_id("acme", row["reference"]), provider=row["provider"]
        )
        assert entry is not None and int(entry["executions"]) == 1, (row, entry)


def test_refusals_are_explained_with_their_own_exit_codes(stack: Stack, tmp_path: Path) -> None:
    reference = f"C-{uuid.uuid4().hex[:12]}"
    bad_key = "mf_not_a_key_of_anyone"
    refused = run_cli(stack, tmp_path, "status", reference, key=bad_key)
    assert refused.returncode == EXIT_UNAUTHENTICATED, explain(refused)
    assert "401 unauthenticated" in refused.stderr
    assert "MOMOFLOW_API_KEY" in refused.stderr

    missing = run_cli(stack, tmp_path, "status", reference)
    assert missing.returncode == EXIT_NOT_FOUND, explain(missing)
    assert f"no campaign with reference '{reference}'" in missing.stderr

    headerless = tmp_path / "broken.csv"
    headerless.write_text("reference,amount\nX-1,1000\n")
    invalid = run_cli(stack, tmp_path, "submit", str(headerless), "--reference", reference)
    assert invalid.returncode == EXIT_INVALID, explain(invalid)
    assert "422 validation_failed" in invalid.stderr
    assert "required_columns" in invalid.stderr
    assert run_cli(stack, tmp_path, "status", reference).returncode == EXIT_NOT_FOUND

    spreadsheet = tmp_path / "suppliers.xlsx"
    spreadsheet.write_bytes(b"PK\x03\x04")
    unknown = run_cli(stack, tmp_path, "submit", str(spreadsheet), "--reference", reference)
    assert unknown.returncode == 2, explain(unknown)
    assert ".csv, .jsonl or .ndjson" in unknown.stderr


def _lines_to_queue(stream: IO[str], sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line)


def test_watch_killed_mid_campaign_and_started_again_follows_it_to_the_end(
    stack: Stack, tmp_path: Path
) -> None:
    tag = f"CLW{uuid.uuid4().hex[:6]}"
    reference = f"C-{tag}"
    path = tmp_path / "suppliers.jsonl"
    keys = HEADER.split(",")
    path.write_text(
        "".join(
            json.dumps(dict(zip(keys, row.split(","), strict=True))) + "\n"
            for row in caurisflux_rows(tag, 6)
        )
    )
    submitted = run_cli(
        stack, tmp_path, "submit", str(path), "--reference", reference, "--max-in-flight", "1"
    )
    assert submitted.returncode == 0, explain(submitted)
    assert "6 lines (jsonl)" in submitted.stdout
    wait_phase(stack, reference, "awaiting_approval")
    # Paused before approval, the campaign cannot finish while the first watch runs.
    paused = run_cli(stack, tmp_path, "pause", reference, "--by", "ops")
    assert paused.returncode == 0, explain(paused)
    approved = run_cli(stack, tmp_path, "approve", reference, "--by", "ops")
    assert approved.returncode == 0, explain(approved)

    first = subprocess.Popen(
        cli_argv("watch", reference, "--interval", "0.5"),
        env=cli_env(stack, ACME_KEY),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: queue.Queue[str] = queue.Queue()
    assert first.stdout is not None
    reader = threading.Thread(target=_lines_to_queue, args=(first.stdout, printed))
    reader.start()
    try:
        seen: list[str] = []

        def progress_printed() -> bool:
            while not printed.empty():
                seen.append(printed.get())
            return any(f"campaign {reference}: paused" in line for line in seen)

        wait_until(progress_printed, timeout=60, what="watch printing progress")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == EXIT_TERMINATED
        assert first.stderr is not None
        assert f"momoflow campaign watch {reference}" in first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        reader.join(timeout=10)
        for stream in (first.stdout, first.stderr):
            if stream is not None:
                stream.close()
    assert "0/6 lines settled" in "".join(seen)
    assert progress(stack, reference)["phase"] == "paused"

    resumed = run_cli(stack, tmp_path, "resume", reference, "--by", "ops")
    assert resumed.returncode == 0, explain(resumed)
    second = run_cli(stack, tmp_path, "watch", reference, "--interval", "0.5")
    assert second.returncode == 0, explain(second)
    assert second.stdout.strip().splitlines()[-1] == (
        f"Campaign {reference} completed: 6 lines: 6 succeeded; paid 6,000 XOF."
    )
    assert progress(stack, reference)["by_status"]["succeeded"]["lines"] == 6


def test_cancel_before_approval_sends_nothing_and_watch_says_it_did_not_complete(
    stack: Stack, tmp_path: Path
) -> None:
    tag = f"CLC{uuid.uuid4().hex[:6]}"
    reference = f"C-{tag}"
    path = tmp_path / "suppliers.csv"
    path.write_text("\n".join([HEADER, *caurisflux_rows(tag, 3)]) + "\n")
    submitted = run_cli(stack, tmp_path, "submit", str(path), "--reference", reference)
    assert submitted.returncode == 0, explain(submitted)
    wait_phase(stack, reference, "awaiting_approval")

    cancelled = run_cli(
        stack, tmp_path, "cancel", reference, "--by", "Fatou", "--reason", "wrong month"
    )
    assert cancelled.returncode == 0, explain(cancelled)
    watched = run_cli(stack, tmp_path, "watch", reference, "--interval", "0.5")
    assert watched.returncode == 1, explain(watched)
    assert watched.stdout.strip().splitlines()[-1] == (
        f"Campaign {reference} cancelled: 3 lines: 3 not sent."
    )
    assert "cancelled by Fatou: wrong month" in watched.stdout

    again = run_cli(stack, tmp_path, "cancel", reference, "--by", "Fatou", "--reason", "twice")
    assert again.returncode == EXIT_CONFLICT, explain(again)
    reported = run_cli(stack, tmp_path, "report", reference)
    assert reported.returncode == 0, explain(reported)
    rows = list(csv.DictReader(reported.stdout.splitlines()))
    assert [r["status"] for r in rows] == ["not_sent"] * 3
    for row in rows:
        key = payout_workflow_id("acme", row["reference"])
        assert stack.ledger_entry(key, provider="caurisflux") is None


def test_unreachable_gateway_is_reported_without_a_traceback(stack: Stack, tmp_path: Path) -> None:
    unreachable = run_cli(
        stack, tmp_path, "status", "C-ANY", "--gateway", f"http://127.0.0.1:{free_port()}"
    )
    assert unreachable.returncode == EXIT_UNAVAILABLE, explain(unreachable)
    assert "cannot reach the gateway at http://127.0.0.1:" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_the_preflight_table_shows_an_unknown_fee_as_unknown_not_zero() -> None:
    preflight = Preflight(
        prepared=PreparedCampaign(lines=3, valid_lines=3, invalid_lines=0, problem_count=0),
        totals=[
            ProviderTotals(
                provider=ProviderName.CAURISFLUX,
                currency=Currency.XOF,
                lines=1,
                amount=10_000,
                fees=0,
                fees_quoted_lines=1,
            ),
            ProviderTotals(
                provider=ProviderName.NOVASEND,
                currency=Currency.XOF,
                lines=2,
                amount=20_000,
                fees=None,
                fees_unknown_lines=2,
            ),
        ],
        checked_at=dt.datetime(2026, 6, 30, tzinfo=dt.UTC),
    )
    console = Console(record=True, width=200)
    console.print(render_preflight(preflight))
    rows = {
        line.split()[0]: line.split()
        for line in console.export_text().splitlines()
        if line.split() and line.split()[0] in ("caurisflux", "novasend")
    }

    # provider, ccy, lines, amount, fees, amount+fees, ...
    assert rows["caurisflux"][4:6] == ["0", "10,000"]
    assert rows["novasend"][4:8] == ["unknown", "20,000", "+", "unknown"]
