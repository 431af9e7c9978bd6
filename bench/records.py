"""The record store's cost per payout: what PostgreSQL adds to every payout.

Run from the repository root::

    .venv/bin/python -m bench.records [--payouts 2000] [--concurrency 8] [--smoke]

On an embedded PostgreSQL 16 of its own (``momoflow.records.embedded``, fsync on, as
``momoflow dev`` runs it), it plays the store's side of N payouts exactly as momoflow makes
them: the start path's claim and ``mark_started``, then the workflow's two writes (the
payout accepted as ``pending``, then ``succeeded`` with its timeline entries and journal
entry), first one payout at a time (latency), then ``--concurrency`` payouts at once
(throughput). It reports milliseconds per operation and per payout, payouts per second,
and the CPU seconds per payout of this process (SQLAlchemy, asyncpg) and of the PostgreSQL
server, with the history events a payout gains from its two record writes, read from the
recorded histories (REC10, before the store; REC14, with it).

The section ``<!-- bench:records:start -->`` of ``docs/benchmarks.md`` is rewritten unless
``--no-doc``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    DOC_PATH,
    command_line,
    load_average,
    machine_info,
    p50_95_99,
    setup_lines,
    table,
    write_section,
)
from momoflow.models import (
    Country,
    Operator,
    PayoutState,
    ProviderName,
    TimelineEntry,
    TransactionStatus,
)
from momoflow.money import Currency
from momoflow.processes import free_port
from momoflow.records import migrate
from momoflow.records.embedded import EmbeddedPostgres
from momoflow.records.store import RecordStore
from momoflow.records.writes import HistoryEntry, Kind, RecordWrite

SECTION = "records"
HISTORIES = Path(__file__).resolve().parent.parent / "tests" / "histories"
#: Recorded histories of the same scenario before and with the record store.
PAIRS = ("webhook", "polling", "declined")


def _states(reference: str, at: datetime) -> tuple[PayoutState, PayoutState, PayoutState]:
    created = PayoutState(
        workflow_id=f"payout-bench-{reference}",
        merchant="bench",
        reference=reference,
        provider=ProviderName.CAURISFLUX,
        country=Country.SN,
        amount=50_000,
        currency=Currency.XOF,
        operator=Operator.WAVE,
        recipient_phone_masked="+22177*****01",
        created_at=at,
        updated_at=at,
        timeline=[TimelineEntry(at=at, status=TransactionStatus.CREATED, note="pay 50,000 XOF")],
    )
    pending = created.model_copy(
        update={
            "status": TransactionStatus.PENDING,
            "provider_transaction_id": f"pay_{reference}",
            "fees": 750,
            "net_amount": 49_250,
            "updated_at": at + timedelta(milliseconds=300),
        }
    )
    paid = pending.model_copy(
        update={
            "status": TransactionStatus.SUCCEEDED,
            "updated_at": at + timedelta(seconds=1),
            "completed_at": at + timedelta(seconds=1),
        }
    )
    return created, pending, paid


async def _one_payout(store: RecordStore, reference: str, timings: dict[str, list[float]]) -> None:
    created, pending, paid = _states(reference, datetime.now(UTC))
    started = time.perf_counter()
    claim = await store.claim(Kind.PAYOUT, created, fingerprint="fp", actor="api:bench")
    await store.mark_started(claim.record.id)
    claimed = time.perf_counter()
    entries = [
        HistoryEntry(index=i, at=pending.updated_at, status=s, note=n)
        for i, (s, n) in enumerate(
            [
                (TransactionStatus.QUOTING, "quote"),
                (TransactionStatus.SUBMITTING, "create payout"),
                (TransactionStatus.PENDING, "accepted"),
            ]
        )
    ]
    await store.write(
        RecordWrite(
            kind=Kind.PAYOUT,
            seq=1,
            fingerprint="fp",
            state=pending.model_dump(mode="json"),
            entries=entries,
        )
    )
    first = time.perf_counter()
    await store.write(
        RecordWrite(
            kind=Kind.PAYOUT,
            seq=2,
            fingerprint="fp",
            state=paid.model_dump(mode="json"),
            entries=[HistoryEntry(index=3, at=paid.updated_at, status=paid.status, note="paid")],
        )
    )
    done = time.perf_counter()
    timings["claim (start path)"].append(claimed - started)
    timings["write: pending"].append(first - claimed)
    timings["write: succeeded + journal"].append(done - first)
    timings["whole payout"].append(done - started)


def _cpu(process: psutil.Process) -> float:
    """CPU seconds of ``process`` and every child it has had: the live ones, and those it
    reaped (PostgreSQL's backends come and go with their connections)."""
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system
    return float(total)


async def measure(root: Path, *, payouts: int, concurrency: int) -> dict[str, Any]:
    """Run both passes on a fresh embedded PostgreSQL; the numbers."""
    postgres = EmbeddedPostgres(root / "postgres", free_port(), durable=True)
    postgres.prepare()
    server = postgres.process(root / "postgres.log").start(timeout=60)
    try:
        store = RecordStore.connect(postgres.url)
        await store.wait_ready()
        await asyncio.to_thread(migrate.upgrade, postgres.url)
        me = psutil.Process()
        assert server.pid is not None
        pg = psutil.Process(server.pid)
        keys = ("claim (start path)", "write: pending", "write: succeeded + journal")
        sequential: dict[str, list[float]] = {k: [] for k in (*keys, "whole payout")}
        for n in range(min(50, payouts)):  # warm-up: connections, plans
            await _one_payout(store, f"warm-{n}", {k: [] for k in sequential})
        cpu_me, cpu_pg, wall = _cpu(me), _cpu(pg), time.perf_counter()
        for n in range(payouts):
            await _one_payout(store, f"seq-{n}", sequential)
        seq_wall = time.perf_counter() - wall
        seq_cpu_me, seq_cpu_pg = _cpu(me) - cpu_me, _cpu(pg) - cpu_pg

        concurrent: dict[str, list[float]] = {k: [] for k in sequential}
        gate = asyncio.Semaphore(concurrency)

        async def limited(n: int) -> None:
            async with gate:
                await _one_payout(store, f"con-{n}", concurrent)

        cpu_me, cpu_pg, wall = _cpu(me), _cpu(pg), time.perf_counter()
        await asyncio.gather(*(limited(n) for n in range(payouts)))
        con_wall = time.perf_counter() - wall
        con_cpu_me, con_cpu_pg = _cpu(me) - cpu_me, _cpu(pg) - cpu_pg
        unbalanced = await store.unbalanced_entries()
        await store.close()
    finally:
        server.stop()
    return {
        "payouts": payouts,
        "concurrency": concurrency,
        "sequential": sequential,
        "concurrent": concurrent,
        "seq_rate": payouts / seq_wall,
        "con_rate": payouts / con_wall,
        "seq_cpu": (seq_cpu_me / payouts * 1000, seq_cpu_pg / payouts * 1000),
        "con_cpu": (con_cpu_me / payouts * 1000, con_cpu_pg / payouts * 1000),
        "unbalanced": len(unbalanced),
        "load": load_average(),
        "events": _history_events(),
    }


def _history_events() -> list[tuple[str, int, int, int]]:
    """(scenario, events before the store, events with it, record writes) per pair."""
    rows = []
    for name in PAIRS:
        before = json.loads((HISTORIES / f"payout-acme-REC10-{name}.json").read_text())
        after = json.loads((HISTORIES / f"payout-acme-REC14-{name}.json").read_text())
        writes = sum(
            1
            for e in after["events"]
            if e.get("activityTaskScheduledEventAttributes", {}).get("activityType", {}).get("name")
            == "record_transaction"
        )
        rows.append((name, len(before["events"]), len(after["events"]), writes))
    return rows


def section(result: dict[str, Any], *, argv: Sequence[str], smoke: bool) -> str:
    """The markdown section."""
    lines = [
        "## The record store: cost per payout (`bench/records.py`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with "
        f"`{command_line('bench.records', argv)}`"
        + (" (**smoke sizes, not a measurement**)" if smoke else "")
        + ".",
        "",
        *setup_lines(
            machine_info(),
            {
                "python": platform.python_version(),
                "SQLAlchemy": metadata.version("sqlalchemy"),
                "asyncpg": metadata.version("asyncpg"),
            },
        ),
        f"- **Database:** embedded PostgreSQL 16 (pgserver wheel), fsync on, loopback TCP; "
        f"{result['payouts']} payouts per pass.",
        "- **Load average at the end** (1, 5, 15 min): "
        + ", ".join(f"{v:.2f}" for v in result["load"])
        + ".",
        "",
        "One payout's store work is the start path's claim (insert and mark started) and "
        "the workflow's two writes (`pending`; `succeeded` with its timeline and journal "
        "entry).",
        "",
    ]
    rows = []
    for name in result["sequential"]:
        rows.append(
            [
                name,
                p50_95_99(result["sequential"][name]),
                p50_95_99(result["concurrent"][name]),
            ]
        )
    lines += table(
        [
            "operation",
            "ms p50 / p95 / p99, one at a time",
            f"ms p50 / p95 / p99, {result['concurrency']} at once",
        ],
        rows,
    )
    seq_me, seq_pg = result["seq_cpu"]
    con_me, con_pg = result["con_cpu"]
    lines += [
        "",
        *table(
            ["pass", "payouts/s", "CPU ms per payout: momoflow process", "CPU ms: PostgreSQL"],
            [
                ["one at a time", f"{result['seq_rate']:.0f}", f"{seq_me:.1f}", f"{seq_pg:.1f}"],
                [
                    f"{result['concurrency']} at once",
                    f"{result['con_rate']:.0f}",
                    f"{con_me:.1f}",
                    f"{con_pg:.1f}",
                ],
            ],
        ),
        "",
        "History events a payout gains from its record writes (recorded histories of the "
        "same scenario, REC10 before the store and REC14 with it; each write is a scheduled, "
        "started and completed activity, and usually a workflow task of its own):",
        "",
        *table(
            ["scenario", "events before", "events with the store", "record writes"],
            [[n, str(b), str(a), str(w)] for n, b, a, w in result["events"]],
        ),
        "",
        f"Journal entries that did not balance after both passes: {result['unbalanced']}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payouts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, not a measurement")
    parser.add_argument("--doc", type=Path, default=DOC_PATH)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.payouts, args.concurrency = 20, 4
    with tempfile.TemporaryDirectory(prefix="momoflow-bench-records-") as root:
        result = asyncio.run(
            measure(Path(root), payouts=args.payouts, concurrency=args.concurrency)
        )
    text = section(result, argv=argv, smoke=args.smoke)
    print(text)
    if not args.no_doc:
        write_section(args.doc, SECTION, text)
    return 0 if result["unbalanced"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
