"""MOBILE-PAY's plan counts HTTP requests: what 200 pending payouts cost an hour.

Run from the repository root::

    .venv/bin/python -m bench.mobilepay_reads [--payouts 200] [--minutes 10]
        [--plan 100] [--poll-every 30] [--smoke] [--doc PATH | --no-doc]

On one private stack (``tests.stack.start_stack``: Temporal dev server, the sandboxes,
the gateway) it:

1. creates ``--payouts`` MOBILE-PAY payouts to a sandbox number that never settles, with
   a worker whose MOBILE-PAY plan is unlimited, and waits until every one is ``pending``;
2. restarts the worker on the real plan (``--plan`` requests an hour, the Free plan by
   default, half of it for status reads), while every payout keeps asking for its status
   every ``--poll-every`` seconds (far more often than production's schedule, to show that
   the budget holds whatever the demand);
3. counts, for ``--minutes``, every request the MOBILE-PAY sandbox receives (its request
   log), the status reads the payouts asked for (``status_polls``) and what the status
   reader says it spent, and extrapolates to an hour.

The section ``<!-- bench:mobilepay-reads:start -->`` of ``docs/benchmarks.md`` is
rewritten unless ``--no-doc``. ``--smoke`` runs tiny sizes (``tests/test_bench_smoke.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    DOC_PATH,
    NO_TRACE_EXPORT,
    BenchError,
    RequestTally,
    command_line,
    gather_limited,
    load_average,
    machine_info,
    max_in_window,
    parse_at,
    run_script,
    setup_lines,
    start_workers,
    stop_workers,
    table,
    versions,
    write_section,
)
from momoflow.contract import STATE_QUERY
from momoflow.ids import status_reader_workflow_id
from momoflow.models import ProviderName
from momoflow.settings import TemporalSettings
from momoflow.status_reads import ReaderState
from momoflow.temporal import connect_client
from tests.stack import ACME_KEY, TEST_TIMINGS, Stack, start_stack

#: A MOBILE-PAY sandbox number whose transfers stay ``processing`` for ever.
PENDING_PHONE = "+2250701230003"
PREFIX = "momoflow-test"
SECTION = "mobilepay-reads"


def _body(reference: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "provider": "mobilepay",
        "country": "CI",
        "operator": "orange_money",
        "recipient": {"phone": PENDING_PHONE, "name": "Kouadio Yao"},
        "amount": 25_000,
        "currency": "XOF",
        "description": "bench: pending transfer",
    }


async def _create(stack: Stack, references: Sequence[str]) -> None:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {ACME_KEY}"}, timeout=30
    ) as http:

        async def one(reference: str) -> None:
            answer = await http.post("/v1/payouts", json=_body(reference))
            if answer.status_code != 201:
                raise BenchError(f"payout {reference}: {answer.status_code} {answer.text}")

        await gather_limited(20, (one(r) for r in references))


async def _states(stack: Stack, references: Sequence[str]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {ACME_KEY}"}, timeout=30
    ) as http:

        async def one(reference: str) -> dict[str, Any]:
            answer = await http.get(f"/v1/payouts/{reference}")
            answer.raise_for_status()
            state: dict[str, Any] = answer.json()
            return state

        return await gather_limited(20, (one(r) for r in references))


async def _wait_pending(stack: Stack, references: Sequence[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = await _states(stack, references)
        counts = Counter(s["status"] for s in states)
        if counts["pending"] == len(references):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"payouts not all pending after {timeout:.0f} s: {dict(counts)}")
        await asyncio.sleep(2)


async def measure(
    root: Path,
    *,
    payouts: int,
    minutes: float,
    plan: int,
    poll_every: int,
    first_poll_s: int | None = None,
) -> dict[str, Any]:
    """Run the scenario of the module docstring; the measured numbers."""
    # No payout asks for its status before the measured phase: the reader starts there,
    # with nothing spent yet.
    first_poll = first_poll_s if first_poll_s is not None else 60 + payouts // 2
    schedule = [first_poll, poll_every]
    timings = {**TEST_TIMINGS, "settle_timeout_s": 7200, "poll_schedule_s": schedule}
    stack = start_stack(
        root,
        env_overrides={
            **NO_TRACE_EXPORT,
            "MOMOFLOW_PAYOUT_TIMINGS": json.dumps(timings),
            "MOMOFLOW_MOBILEPAY__POLL_SCHEDULE_S": json.dumps(schedule),
        },
    )
    try:
        start_workers(stack, 1)
        tag = f"MPR{int(time.time())}"
        references = [f"{tag}-{n}" for n in range(payouts)]
        await _create(stack, references)
        await _wait_pending(stack, references, timeout=120 + payouts)
        stop_workers(stack)
        start_workers(
            stack,
            1,
            extra_env={
                "MOMOFLOW_MOBILEPAY__RATE_LIMIT_PER_HOUR": str(plan),
                # The production default, whatever the test stack sets.
                "MOMOFLOW_MOBILEPAY__STATUS_READ_INTERVAL_S": "60",
            },
        )
        before = {s["reference"]: s["status_polls"] for s in await _states(stack, references)}
        if any(before.values()):
            raise BenchError("payouts read their status before the measured phase")
        started = time.time()
        tally = RequestTally(stack.sandbox_urls["mobilepay"])
        async with httpx.AsyncClient() as http:
            await tally.update(http)
            while time.time() - started < minutes * 60:
                await asyncio.sleep(min(20.0, max(0.5, minutes * 60 - (time.time() - started))))
                await tally.update(http)
        elapsed = time.time() - started
        after = await _states(stack, references)
        client = await connect_client(TemporalSettings(address=stack.temporal_address))
        reader: ReaderState = await client.get_workflow_handle(
            status_reader_workflow_id(ProviderName.MOBILEPAY, PREFIX)
        ).query(STATE_QUERY, result_type=ReaderState)
    finally:
        stack.stop_all()
    records = [
        r
        for r in tally.api_records()
        if parse_at(str(r["at"])) >= started and parse_at(str(r["at"])) <= started + elapsed
    ]
    kinds: Counter[str] = Counter()
    for record in records:
        path = str(record["path"])
        if path.endswith("/transactions"):
            kinds["GET /transactions"] += 1
        elif path.endswith("/auth/login"):
            kinds["POST /auth/login"] += 1
        else:
            kinds[f"{record['method']} {path.rsplit('/api/v1', 1)[-1]}"] += 1
    asked = sum(s["status_polls"] - before[s["reference"]] for s in after)
    per_hour = len(records) * 3600 / elapsed
    return {
        "payouts": payouts,
        "pending_after": sum(1 for s in after if s["status"] == "pending"),
        "elapsed_s": elapsed,
        "plan": plan,
        "poll_every": poll_every,
        "requests": len(records),
        "kinds": kinds,
        "refused_429": sum(1 for r in records if r.get("statusCode") == 429),
        "per_hour": per_hour,
        "max_60s": max_in_window([parse_at(str(r["at"])) for r in records], 60.0),
        "reads_asked": asked,
        "reads_asked_per_hour": asked * 3600 / elapsed,
        "reader": reader,
        "gaps": tally.gaps,
    }


def section(result: dict[str, Any], *, argv: Sequence[str], smoke: bool) -> str:
    """The markdown section for ``docs/benchmarks.md``."""
    reader: ReaderState = result["reader"]
    minutes = result["elapsed_s"] / 60
    load = ", ".join(f"{v:.2f}" for v in load_average())
    lines = [
        "## MOBILE-PAY status reads within the plan (`bench/mobilepay_reads.py`)",
        "",
        f"- **Command:** `{command_line('bench.mobilepay_reads', argv)}`"
        + (" (smoke sizes, not a measurement)" if smoke else ""),
        *setup_lines(machine_info(), versions()),
        f"- **Load average at the end:** {load}.",
        f"- **Scenario:** {result['payouts']} MOBILE-PAY payouts pending (a sandbox number "
        f"that never settles), each asking for its status every {result['poll_every']} s "
        "once the measured phase starts; "
        f"the worker on a plan of {result['plan']} requests an hour, half of it for status "
        f"reads; measured for {minutes:.1f} min from the sandbox's request log.",
        "",
        *table(
            ["measure", "value"],
            [
                ["status reads asked by the payouts", f"{result['reads_asked']}"],
                ["status reads asked, per hour", f"{result['reads_asked_per_hour']:,.0f}"],
                ["requests MOBILE-PAY received", f"{result['requests']}"],
                [
                    "requests per hour (extrapolated from the measured minutes)",
                    f"**{result['per_hour']:.1f}** (plan {result['plan']})",
                ],
                ["most requests in any 60 s", f"{result['max_60s']}"],
                ["requests by kind", ", ".join(f"{k} {v}" for k, v in result["kinds"].items())],
                ["429s from the sandbox", f"{result['refused_429']}"],
                [
                    "list walks by the reader (whole run) / its last hour's requests",
                    f"{reader.sweeps} / {reader.requests_last_hour}",
                ],
                ["payouts still pending at the end", f"{result['pending_after']}"],
            ],
        ),
        "",
        "Every status read of every pending MOBILE-PAY payout is answered by one walk of "
        "`GET /transactions` shared by all of them (`momoflow/status_reads.py`); the reader "
        "spaces its walks by what each one cost, at the budget "
        "(`MOMOFLOW_MOBILEPAY__STATUS_READS_SHARE` × the plan), and never starts one that "
        "could take the last hour over it. Before this change each read was its own walk "
        "(one page or more, plus a login per session), and the task queue's limit counted "
        "walks as one request each.",
    ]
    if result["gaps"]:
        lines.append(f"\nThe request log overflowed {result['gaps']} time(s): counts are low.")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payouts", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--plan", type=int, default=100)
    parser.add_argument("--poll-every", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, not a measurement")
    parser.add_argument("--doc", type=Path, default=DOC_PATH)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    first_poll = None
    if args.smoke:
        args.payouts, args.minutes, args.poll_every, first_poll = 3, 1.0, 5, 25
    with tempfile.TemporaryDirectory(prefix="momoflow-bench-") as root:
        result = asyncio.run(
            measure(
                Path(root),
                payouts=args.payouts,
                minutes=args.minutes,
                plan=args.plan,
                poll_every=args.poll_every,
                first_poll_s=first_poll,
            )
        )
    text = section(result, argv=argv, smoke=args.smoke)
    print(text)
    if not args.no_doc:
        write_section(args.doc, SECTION, text)
    over = result["refused_429"] or result["per_hour"] > args.plan
    return 1 if over and not args.smoke else 0


if __name__ == "__main__":
    run_script(main)
