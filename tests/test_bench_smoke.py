"""The benchmark scripts still run: ``bench/run.py --smoke`` and
``bench/mobilepay_reads.py --smoke`` end to end at tiny sizes.

The real benchmarks are scripts, not tests (they take minutes and want a quiet machine);
this runs every code path of ``bench/run.py`` (and so of ``bench/payouts.py``,
``bench/campaign.py``, ``bench/bare.py`` and ``bench/common.py``) once, against its own
private stack, and checks the section it writes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:run:start -->", "<!-- bench:run:end -->"


def test_bench_run_smoke_measures_every_section_and_rewrites_only_its_own(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "benchmarks.md"
    other = "<!-- bench:payouts:start -->\nanother script's numbers\n<!-- bench:payouts:end -->"
    doc.write_text(f"# Benchmarks\n\n{other}\n\n{START}\nstale\n{END}\n")

    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--doc", str(doc)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    text = doc.read_text()
    assert other in text
    assert text.count(START) == 1 and text.count(END) == 1
    section = text[text.index(START) : text.index(END)]
    assert "stale" not in section
    assert "smoke sizes, not a measurement" in section
    for heading in (
        "### 1. Orchestration floor vs momoflow",
        "### 2. Cost per payout: history events",
        "### 3. Webhook-to-final latency",
        "### 4. Campaign at the rate limit, and 5. scale-out",
        "### What bounds it",
    ):
        assert heading in section
    for system in ("plain asyncio + httpx", "bare Temporal workflow", "momoflow"):
        assert f"| **{system}** |" in section
    for campaign in ("1 worker, unthrottled", "1 worker, at the limit", "2 workers, at the limit"):
        assert f"| {campaign} |" in section
    assert "benchmark failed" not in done.stdout


def test_mobilepay_reads_bench_smoke_counts_requests_and_writes_its_section(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")

    done = subprocess.run(
        [sys.executable, "-m", "bench.mobilepay_reads", "--smoke", "--doc", str(doc)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    text = doc.read_text()
    section = text[text.index("<!-- bench:mobilepay-reads:start -->") :]
    assert "smoke sizes, not a measurement" in section
    # The payouts asked for their status, and the reader walked the list for them.
    asked = int(section.split("| status reads asked by the payouts | ")[1].split(" |")[0])
    assert asked >= 3
    assert "GET /transactions" in section
    assert "| 429s from the sandbox | 0 |" in section


def test_records_bench_smoke_measures_the_store_and_writes_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.records", "--smoke", "--doc", str(doc)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    text = doc.read_text()
    section = text[text.index("<!-- bench:records:start -->") :]
    assert "smoke sizes, not a measurement" in section
    for row in ("| claim (start path) |", "| whole payout |", "| webhook | 43 | 57 | 2 |"):
        assert row in section
    assert "did not balance after both passes: 0." in section
