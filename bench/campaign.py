"""Campaign benchmark: how fast a bulk payout campaign drains, unthrottled and at a
provider's rate limit, and how large its Temporal histories grow.

Run from the repository root::

    .venv/bin/python -m bench.campaign [--lines 2000] [--limit-per-minute auto]
        [--scale-lines 100000 --scale-run-lines 3000] [--skip-scale]

What it does, on a private stack (``bench.common.start_bench_stack``: Temporal dev server in
memory, the three sandboxes settling instantly, the gateway, momoflow workers):

(a) **unthrottled**: a campaign of ``--lines`` CaurisFlux lines (test numbers that succeed),
    submitted with ``POST /v1/campaigns?auto_approve=true``, provider limits off at momoflow
    and at the sandbox: the machine's orchestration rate;
(b) **at the limit**: the same campaign (new references) with the CaurisFlux plan limit set
    below the rate measured in (a), at momoflow (``MOMOFLOW_CAURISFLUX__RATE_LIMIT_PER_MINUTE``,
    which becomes the provider task queue's ``max_task_queue_activities_per_second``) and at
    the sandbox (which answers 429 beyond it). Prints wall time against the floor (provider
    requests the campaign needed, read from the sandbox's request log, ÷ the limit), 429s,
    the largest history of any workflow (every run of the campaign, every child payout) and
    the worker's peak RSS;
(c) **history at scale**: a campaign of ``--scale-lines`` lines (100,000) is submitted, its
    pre-flight timed, then ``--scale-run-lines`` lines are paid before it is cancelled; the
    history of every continue-as-new run is measured (events, bytes, lines per run, size of
    the carried state) and the full campaign extrapolated from them.

It rewrites the ``<!-- bench:campaign:start -->`` section of ``docs/benchmarks.md``.
Every wait has a deadline; the process ends with ``os._exit`` (temporalio/sdk-python#300).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from bench.common import (
    DOC_PATH,
    BenchError,
    RequestTally,
    command_line,
    counter_text,
    cpu_delta,
    cpu_snapshot,
    event_kind,
    gather_limited,
    load_average,
    machine_info,
    max_in_window,
    mean,
    memory_mib,
    other_cores,
    parse_at,
    reset_sandbox,
    run_script,
    setup_lines,
    start_bench_stack,
    start_workers,
    stop_workers,
    table,
    versions,
    worker_names,
    write_section,
)
from momoflow.ids import payout_workflow_id
from momoflow.settings import TemporalSettings
from momoflow.temporal import connect_client
from tests.stack import ACME_KEY, TEST_TIMINGS, Stack

SECTION = "campaign"
HEADER = "reference,provider,country,operator,phone,name,amount,currency,description"
FINAL_PHASES = frozenset({"completed", "cancelled", "rejected"})
AMOUNT_XOF = 25_000
#: Country, operator and number prefix whose last four digits 1000-9999 succeed.
LINE_CASES = {
    "caurisflux": ("SN", "wave", "+22177123"),
    "novasend": ("CI", "wave", "+225070123"),
    "mobilepay": ("CI", "orange_money", "+225070123"),
}
#: momoflow's plan-limit setting of each provider, and how many minutes its unit holds.
LIMIT_SETTINGS = {
    "caurisflux": ("MOMOFLOW_CAURISFLUX__RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute", 1),
    "novasend": ("MOMOFLOW_NOVASEND__RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute", 1),
    "mobilepay": ("MOMOFLOW_MOBILEPAY__RATE_LIMIT_PER_HOUR", "rate_limit_per_hour", 60),
}
#: Temporal's history limits (server defaults): continue-as-new suggested, warning, error.
TEMPORAL_LIMITS = {
    "suggest continue-as-new": (4 * 1024, 4 * 1024 * 1024),
    "warn": (10 * 1024, 10 * 1024 * 1024),
    "error (workflow terminated)": (50 * 1024, 50 * 1024 * 1024),
}
#: Payout deadlines of campaign lines: momoflow's production defaults (the test stack's
#: 20 s quote deadline is shorter than the time a line's quote can wait behind a provider's
#: rate limit, and such a line fails, safely, before anything is sent), with the test
#: stack's short poll schedule.
CAMPAIGN_TIMINGS = {
    **TEST_TIMINGS,
    "quote_timeout_s": 600,
    "submit_timeout_s": 3600,
    "settle_timeout_s": 7200,
}
#: Sandbox balance for campaigns (XOF): pre-flight holds a campaign back when the provider
#: account cannot cover it, and 100,000 lines of 25,000 XOF are 2.5 billion.
SANDBOX_BALANCE = 10**13
#: The sandbox request log holds 10,000 records: read it at least this often.
TALLY_EVERY_S = 5.0

Log = Callable[[str], None]


def _print(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- the file


def campaign_csv(tag: str, lines: int, provider: str = "caurisflux") -> bytes:
    """A campaign file of ``lines`` valid lines for ``provider``, references ``{tag}-N``."""
    country, operator, prefix = LINE_CASES[provider]
    rows = [HEADER]
    rows += [
        f"{tag}-{n:06d},{provider},{country},{operator},{prefix}{1000 + n % 9000:04d},"
        f"Supplier {n},{AMOUNT_XOF},XOF,bench line {n}"
        for n in range(lines)
    ]
    return ("\n".join(rows) + "\n").encode()


# --------------------------------------------------------------------------- measurements


@dataclass
class RunHistory:
    """One run of the campaign workflow (the first, or one continued as new)."""

    run_id: str
    events: int
    bytes: int
    status: str
    #: Size of the run's start event: the input, i.e. the carried state after the first run.
    start_bytes: int | None = None
    children_started: int | None = None
    kinds: Counter[str] = field(default_factory=Counter)
    kind_bytes: Counter[str] = field(default_factory=Counter)


@dataclass
class ChildHistories:
    """History sizes of a campaign's child payouts (from visibility)."""

    count: int = 0
    max_events: int = 0
    mean_events: float = float("nan")
    max_bytes: int = 0
    open: int = 0


@dataclass
class CampaignResult:
    """One campaign run of the benchmark."""

    label: str
    reference: str
    campaign_id: str
    lines: int
    provider: str
    workers: int
    window: int
    limit_per_minute: int | None
    submitted_at: datetime
    progress: dict[str, Any]
    requests: list[dict[str, Any]]
    tally_gaps: int
    runs: list[RunHistory]
    children: ChildHistories
    memory: dict[str, dict[str, float]]
    cpu: dict[str, float]
    executions: Counter[int]
    load: tuple[float, float, float]
    in_flight: list[tuple[float, str, int, int]] = field(default_factory=list)

    @property
    def window_use(self) -> float:
        """Mean share of the window (``max_in_flight_per_provider``) in flight while the
        campaign ran, counting only the slots that lines left to start could fill."""
        shares = [
            n / min(self.window, n + unstarted)
            for _, phase, n, unstarted in self.in_flight
            if phase == "running" and n + unstarted > 0
        ]
        return mean(shares)

    @property
    def wall_s(self) -> float:
        """From submission to the campaign's ``completed_at`` (pre-flight included)."""
        completed = self.progress.get("completed_at")
        if not completed:
            return float("nan")
        return (datetime.fromisoformat(completed) - self.submitted_at).total_seconds()

    @property
    def execution_s(self) -> float:
        """From ``started_at`` (approved) to ``completed_at``."""
        started, completed = self.progress.get("started_at"), self.progress.get("completed_at")
        if not started or not completed:
            return float("nan")
        return (datetime.fromisoformat(completed) - datetime.fromisoformat(started)).total_seconds()

    @property
    def settled(self) -> int:
        """Lines with an outcome."""
        return int(self.progress.get("settled_lines", 0))

    @property
    def lines_per_s(self) -> float:
        """Settled lines per second of wall time."""
        return self.settled / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def by_operation(self) -> Counter[tuple[str, int]]:
        """API requests at the sandbox by (operation, HTTP status)."""
        return Counter((str(r.get("operation")), int(r["statusCode"])) for r in self.requests)

    @property
    def rejected_429(self) -> int:
        """Requests the sandbox refused with 429."""
        return sum(1 for r in self.requests if int(r["statusCode"]) == 429)

    @property
    def needed(self) -> int:
        """Requests the campaign needed: every API request but the 429 refusals."""
        return len(self.requests) - self.rejected_429

    @property
    def floor_s(self) -> float:
        """The least time the provider's limit allows for the requests needed."""
        if not self.limit_per_minute:
            return float("nan")
        return self.needed / (self.limit_per_minute / 60)

    @property
    def max_per_minute(self) -> int:
        """Most requests (429s included: the sandbox counts them) in any 60 s window."""
        return max_in_window([parse_at(r["at"]) for r in self.requests], 60.0)

    @property
    def request_rate(self) -> float:
        """Requests per second over the whole campaign."""
        return len(self.requests) / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def largest_run(self) -> RunHistory | None:
        """The campaign run with the most events."""
        return max(self.runs, key=lambda r: r.events, default=None)


# --------------------------------------------------------------------------- phases


def limit_env(provider: str, per_minute: int | None) -> dict[str, str]:
    """momoflow's plan-limit setting for ``provider`` (None: leave the stack's, unlimited)."""
    if per_minute is None:
        return {}
    name, _, minutes = LIMIT_SETTINGS[provider]
    return {name: str(per_minute * minutes)}


def prepare_phase(
    stack: Stack, *, provider: str, workers: int, limit_per_minute: int | None, log: Log
) -> None:
    """Fresh workers and a fresh sandbox for one campaign: stop the workers, reset the
    provider's sandbox (transactions, request log, rate-limit windows), set its limit
    (0 = off), instant settlement and a balance that covers any campaign, then start
    ``workers`` workers with momoflow's limit for that provider."""
    stop_workers(stack)
    _, sandbox_key, minutes = LIMIT_SETTINGS[provider]
    sandbox_limit = (limit_per_minute or 0) * minutes
    reset_sandbox(
        stack,
        provider,
        settle_delay=0,
        balance=SANDBOX_BALANCE,
        **{sandbox_key: sandbox_limit},
    )
    shown = f"{limit_per_minute}/min" if limit_per_minute else "off"
    log(f"  {workers} worker(s), {provider} limit {shown} ...")
    env = {
        "MOMOFLOW_PAYOUT_TIMINGS": json.dumps(CAMPAIGN_TIMINGS),
        **limit_env(provider, limit_per_minute),
    }
    start_workers(stack, workers, extra_env=env)


async def submit(
    http: httpx.AsyncClient, reference: str, data: bytes, **params: Any
) -> dict[str, Any]:
    """``POST /v1/campaigns`` with the file; the 201 answer."""
    query = {"reference": reference, "auto_approve": "true", **params}
    answer = await http.post(
        "/v1/campaigns",
        params=query,
        content=data,
        headers={"Content-Type": "text/csv"},
        timeout=300,
    )
    if answer.status_code != 201:
        raise BenchError(f"campaign {reference}: POST answered {answer.status_code}: {answer.text}")
    created: dict[str, Any] = answer.json()
    return created


async def read_progress(http: httpx.AsyncClient, reference: str) -> dict[str, Any] | None:
    """``GET /v1/campaigns/{ref}``; None while the gateway cannot answer (503, timeout)."""
    try:
        answer = await http.get(f"/v1/campaigns/{reference}", timeout=30)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    body: dict[str, Any] = answer.json()
    return body


def progress_line(started: float, progress: dict[str, Any]) -> str:
    """One printed line of a campaign's progress."""
    return (
        f"    {time.monotonic() - started:6.1f} s  {progress['phase']:<10} "
        f"settled {progress.get('settled_lines', 0):>6}/{progress.get('valid_lines', 0):<6} "
        f"in flight {progress.get('in_flight', 0):>4}  rate {progress.get('rate_per_s', 0):.1f}/s"
    )


async def watch(
    http: httpx.AsyncClient,
    reference: str,
    *,
    deadline: float,
    until: Callable[[dict[str, Any]], bool],
    tallies: Sequence[RequestTally] = (),
    samples: list[tuple[float, str, int, int]] | None = None,
    log: Log,
    every: float = 2.0,
    print_every: float = 10.0,
) -> dict[str, Any]:
    """Read the campaign's progress every ``every`` s (and the sandbox request logs every
    ``TALLY_EVERY_S``) until ``until(progress)``; BenchError at the deadline. ``samples``
    gets (seconds, phase, lines in flight, lines not started yet) of every progress read."""
    started = time.monotonic()
    last_print = last_tally = 0.0
    last: dict[str, Any] | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            shown = progress_line(started, last) if last else "no progress read"
            raise BenchError(f"campaign {reference}: deadline passed ({shown.strip()})")
        if tallies and now - last_tally >= TALLY_EVERY_S:
            await asyncio.gather(*(t.update(http) for t in tallies))
            last_tally = now
        progress = await read_progress(http, reference)
        if progress is not None:
            last = progress
            if samples is not None:
                in_flight = int(progress["in_flight"])
                unstarted = int(progress["valid_lines"]) - int(progress["started_lines"])
                samples.append((now - started, progress["phase"], in_flight, unstarted))
            if now - last_print >= print_every:
                log(progress_line(started, progress))
                last_print = now
            if until(progress):
                log(progress_line(started, progress))
                return progress
        await asyncio.sleep(every)


async def ledger_executions(
    http: httpx.AsyncClient, sandbox_url: str, workflow_ids: set[str]
) -> Counter[int]:
    """How many times each wanted payout's money moved at the sandbox: a count of payouts
    per number of executions (the invariant is exactly once)."""
    answer = await http.get(f"{sandbox_url}/_sandbox/ledger", timeout=60)
    answer.raise_for_status()
    seen = {
        str(t["externalReference"]): int(t["executions"])
        for t in answer.json()["transfers"]
        if str(t.get("externalReference")) in workflow_ids
    }
    return Counter(seen.get(wid, 0) for wid in workflow_ids)


# --------------------------------------------------------------------------- histories


async def campaign_runs(client: Client, campaign_id: str) -> list[RunHistory]:
    """Every run of the campaign workflow, oldest first, with visibility's event counts and
    sizes."""
    runs: list[tuple[datetime, RunHistory]] = []
    async for execution in client.list_workflows(f'WorkflowId = "{campaign_id}"'):
        status = execution.status.name.lower() if execution.status else "unknown"
        runs.append(
            (
                execution.start_time,
                RunHistory(
                    run_id=execution.run_id,
                    events=execution.history_length,
                    bytes=int(execution.raw_info.history_size_bytes),
                    status=status,
                ),
            )
        )
    return [run for _, run in sorted(runs, key=lambda pair: pair[0])]


async def inspect_run(client: Client, campaign_id: str, run: RunHistory) -> None:
    """Read one run's whole history: events and bytes by kind, children started, and the
    size of its start event (the carried state)."""
    handle = client.get_workflow_handle(campaign_id, run_id=run.run_id)
    events = 0
    total = 0
    async for event in handle.fetch_history_events():
        events += 1
        size = event.ByteSize()
        total += size
        kind = event_kind(event.event_type)
        run.kinds[kind] += 1
        run.kind_bytes[kind] += size
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            run.start_bytes = size
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            run.children_started = (run.children_started or 0) + 1
    run.events = events
    run.bytes = total
    run.children_started = run.children_started or 0


async def child_histories(client: Client, campaign_id: str, *, timeout: float) -> ChildHistories:
    """History sizes of the campaign's payouts, once they have all closed (or ``timeout``)."""
    query = f'CampaignId = "{campaign_id}" AND WorkflowType = "PayoutWorkflow"'
    deadline = time.monotonic() + timeout
    while True:
        running = await client.count_workflows(query + ' AND ExecutionStatus = "Running"')
        open_count = running.count
        if open_count == 0 or time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    events: list[int] = []
    sizes: list[int] = []
    async for execution in client.list_workflows(query):
        if execution.status is WorkflowExecutionStatus.RUNNING:
            continue
        events.append(execution.history_length)
        sizes.append(int(execution.raw_info.history_size_bytes))
    return ChildHistories(
        count=len(events),
        max_events=max(events, default=0),
        mean_events=mean(events),
        max_bytes=max(sizes, default=0),
        open=open_count,
    )


# --------------------------------------------------------------------------- one campaign


async def run_campaign(
    stack: Stack,
    client: Client,
    *,
    label: str,
    lines: int,
    provider: str = "caurisflux",
    workers: int = 1,
    limit_per_minute: int | None = None,
    window: int = 50,
    timeout: float | None = None,
    inspect_runs: bool = True,
    log: Log = _print,
) -> CampaignResult:
    """Submit one campaign of ``lines`` lines and measure it until it completes (the stack's
    workers and sandbox are prepared by :func:`prepare_phase`)."""
    tag = f"K{uuid.uuid4().hex[:6]}"
    reference = f"BENCH-{tag}"
    data = campaign_csv(tag, lines, provider)
    if timeout is None:
        # Generous: the limit (two requests a line) or a slow 1 line/s, plus pre-flight.
        per_line = 2 * 60 / limit_per_minute if limit_per_minute else 0.0
        timeout = 180 + lines * max(1.0, 3 * per_line)
    sandbox_url = stack.sandbox_urls[provider]
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {ACME_KEY}"}, timeout=30
    ) as http:
        tally = RequestTally(sandbox_url)
        await tally.update(http)
        tally.records.clear()
        before = cpu_snapshot(stack)
        submitted_at = datetime.now(UTC)
        created = await submit(http, reference, data, max_in_flight_per_provider=window)
        campaign_id = str(created["campaign_id"])
        in_flight: list[tuple[float, str, int, int]] = []
        progress = await watch(
            http,
            reference,
            deadline=time.monotonic() + timeout,
            until=lambda p: p["phase"] in FINAL_PHASES,
            tallies=[tally],
            samples=in_flight,
            log=log,
        )
        cpu = cpu_delta(before, cpu_snapshot(stack))
        memory = {
            name: memory_mib(pid)
            for name in worker_names(stack)
            if (pid := stack.processes[name].pid) is not None
        }
        await tally.update(http)
        if progress["phase"] != "completed":
            raise BenchError(f"campaign {reference} ended {progress['phase']}: {progress}")
        ids = {payout_workflow_id("acme", f"{tag}-{n:06d}") for n in range(lines)}
        executions = await ledger_executions(http, sandbox_url, ids)
    runs = await campaign_runs(client, campaign_id)
    if inspect_runs:
        await gather_limited(2, (inspect_run(client, campaign_id, run) for run in runs))
    children = await child_histories(client, campaign_id, timeout=60)
    return CampaignResult(
        label=label,
        reference=reference,
        campaign_id=campaign_id,
        lines=lines,
        provider=provider,
        workers=workers,
        window=window,
        limit_per_minute=limit_per_minute,
        submitted_at=submitted_at,
        progress=progress,
        requests=tally.api_records(),
        tally_gaps=tally.gaps,
        runs=runs,
        children=children,
        memory=memory,
        cpu=cpu,
        executions=executions,
        load=load_average(),
        in_flight=in_flight,
    )


def check_result(result: CampaignResult) -> list[str]:
    """What went wrong with a campaign that must pay every line exactly once, if anything."""
    problems = []
    by_status = result.progress.get("by_status", {})
    succeeded = int(by_status.get("succeeded", {}).get("lines", 0))
    if succeeded != result.lines:
        problems.append(f"{succeeded} of {result.lines} lines succeeded ({by_status})")
    if set(result.executions) != {1}:
        problems.append(f"sandbox ledger: payouts per number of executions {result.executions}")
    if result.tally_gaps:
        problems.append(f"the sandbox request log overflowed {result.tally_gaps} time(s)")
    return problems


def auto_limit(unthrottled: CampaignResult, fraction: float = 0.5) -> int:
    """A per-minute limit ``fraction`` of the request rate the unthrottled run reached
    (rounded down to ten, at least 60), so that the limit binds."""
    per_minute = unthrottled.request_rate * 60 * fraction
    return max(60, int(per_minute // 10 * 10))


def summary_line(result: CampaignResult) -> str:
    """One printed line per campaign."""
    floor = (
        f", floor {result.floor_s:.0f} s (×{result.wall_s / result.floor_s:.2f})"
        if result.limit_per_minute
        else ""
    )
    largest = result.largest_run
    return (
        f"  {result.label}: {result.settled} lines in {result.wall_s:.1f} s = "
        f"{result.lines_per_s:.1f} lines/s, {len(result.requests)} requests "
        f"({result.request_rate:.1f}/s, max {result.max_per_minute} in 60 s){floor}, "
        f"429s {result.rejected_429}, window in use {result.window_use * 100:.0f} %, "
        f"largest run {largest.events if largest else 0} events, "
        f"largest child {result.children.max_events} events, worker peak RSS "
        + ", ".join(f"{m.get('peak', float('nan')):.0f} MiB" for m in result.memory.values())
    )


# --------------------------------------------------------------------------- scale run


@dataclass
class ScaleResult:
    """The 100,000-line campaign, measured as far as it was run."""

    lines: int
    run_lines: int
    reference: str
    campaign_id: str
    submit_s: float
    preflight_s: float
    paid_s: float
    drained_s: float
    settled: int
    progress: dict[str, Any]
    runs: list[RunHistory]
    memory: dict[str, dict[str, float]]
    upload_bytes: int

    @property
    def full_runs(self) -> list[RunHistory]:
        """Runs that ended by continuing as new (the steady state)."""
        return [r for r in self.runs if r.status == "continued_as_new"]


async def run_scale(
    stack: Stack,
    client: Client,
    *,
    lines: int,
    run_lines: int,
    provider: str = "caurisflux",
    window: int = 50,
    max_history_events: int | None = None,
    log: Log = _print,
) -> ScaleResult:
    """Submit a ``lines``-line campaign, pay ``run_lines`` of them, cancel it, and measure
    every run's history."""
    tag = f"S{uuid.uuid4().hex[:6]}"
    reference = f"BENCH-{tag}"
    data = campaign_csv(tag, lines, provider)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {ACME_KEY}"}, timeout=30
    ) as http:
        t0 = time.monotonic()
        extra = {"max_history_events": max_history_events} if max_history_events else {}
        created = await submit(http, reference, data, max_in_flight_per_provider=window, **extra)
        submit_s = time.monotonic() - t0
        campaign_id = str(created["campaign_id"])
        log(f"  submitted {len(data) / 1e6:.1f} MB in {submit_s:.1f} s; pre-flight ...")
        progress = await watch(
            http,
            reference,
            deadline=time.monotonic() + 1800,
            until=lambda p: p["phase"] != "preflight",
            log=log,
            print_every=30,
        )
        if progress["phase"] != "running":
            raise BenchError(
                f"campaign {reference} is {progress['phase']} after pre-flight: "
                f"{progress.get('phase_reason')}"
            )
        preflight_s = time.monotonic() - t0
        log(f"  pre-flight done after {preflight_s:.1f} s; paying {run_lines} lines ...")
        await watch(
            http,
            reference,
            deadline=time.monotonic() + 120 + run_lines * 2.0,
            until=lambda p: p.get("settled_lines", 0) >= run_lines or p["phase"] in FINAL_PHASES,
            log=log,
            print_every=30,
        )
        paid_s = time.monotonic() - t0
        answer = await http.post(
            f"/v1/campaigns/{reference}/cancel",
            json={"by": "bench.campaign", "reason": "history measured"},
            timeout=60,
        )
        if answer.status_code != 200:
            raise BenchError(f"cancel answered {answer.status_code}: {answer.text}")
        progress = await watch(
            http,
            reference,
            deadline=time.monotonic() + 600,
            until=lambda p: p["phase"] in FINAL_PHASES,
            log=log,
            print_every=30,
        )
        drained_s = time.monotonic() - t0
    memory = {
        name: memory_mib(pid)
        for name in worker_names(stack)
        if (pid := stack.processes[name].pid) is not None
    }
    runs = await campaign_runs(client, campaign_id)
    log(f"  reading the histories of {len(runs)} runs ...")
    await gather_limited(2, (inspect_run(client, campaign_id, run) for run in runs))
    return ScaleResult(
        lines=lines,
        run_lines=run_lines,
        reference=reference,
        campaign_id=campaign_id,
        submit_s=submit_s,
        preflight_s=preflight_s,
        paid_s=paid_s,
        drained_s=drained_s,
        settled=int(progress.get("settled_lines", 0)),
        progress=progress,
        runs=runs,
        memory=memory,
        upload_bytes=len(data),
    )


# --------------------------------------------------------------------------- report


def _kib(value: float) -> str:
    return f"{value / 1024:,.0f}"


def _mib(value: float) -> str:
    return f"{value / 1024 / 1024:.2f}"


def campaign_rows(results: Sequence[CampaignResult]) -> list[list[str]]:
    """One row per campaign of the comparison table."""
    rows = []
    for r in results:
        largest = r.largest_run
        floor = f"{r.floor_s:.0f}" if r.limit_per_minute else "–"
        ratio = f"**{r.wall_s / r.floor_s:.2f}**" if r.limit_per_minute else "–"
        rows.append(
            [
                r.label,
                str(r.workers),
                f"{r.limit_per_minute}/min" if r.limit_per_minute else "off",
                f"{r.settled:,}",
                f"{r.wall_s:.1f}",
                f"{r.lines_per_s:.1f}",
                f"{r.window_use * 100:.0f} %",
                f"{r.needed:,} ({r.needed / max(r.lines, 1):.2f})",
                f"{r.max_per_minute:,}",
                floor,
                ratio,
                str(r.rejected_429),
                f"{largest.events:,} ({_mib(largest.bytes)} MiB), {len(r.runs)} run(s)"
                if largest
                else "n/a",
                f"{r.children.max_events} ({_kib(r.children.max_bytes)} KiB)",
                " / ".join(f"{m.get('peak', float('nan')):.0f}" for m in r.memory.values()),
            ]
        )
    return rows


CAMPAIGN_HEADER = [
    "campaign",
    "workers",
    "CaurisFlux limit",
    "lines",
    "wall s",
    "lines/s",
    "window in use",
    "requests needed (per line)",
    "max requests in 60 s",
    "floor s",
    "wall ÷ floor",
    "429s",
    "largest campaign run: events (MiB), runs",
    "largest payout: events (KiB)",
    "worker peak RSS MiB",
]


def requests_breakdown(result: CampaignResult) -> str:
    """``operation status × n`` of the sandbox requests of one campaign."""
    return ", ".join(
        f"`{op}` {status}×{n}" for (op, status), n in sorted(result.by_operation.items())
    )


def run_rows(runs: Sequence[RunHistory]) -> list[list[str]]:
    """One row per campaign run."""
    rows = []
    for index, run in enumerate(runs, 1):
        lines = run.children_started
        rows.append(
            [
                str(index),
                run.status,
                f"{run.events:,}",
                _mib(run.bytes),
                f"{lines:,}" if lines is not None else "n/a",
                f"{run.events / lines:.1f}" if lines else "–",
                _kib(run.bytes / lines) if lines else "–",
                f"{run.start_bytes:,}" if run.start_bytes is not None else "n/a",
            ]
        )
    return rows


RUN_HEADER = [
    "run",
    "ended",
    "events",
    "MiB",
    "lines started",
    "events per line",
    "KiB per line",
    "start event bytes (input + carried state)",
]


def bytes_by_kind(runs: Sequence[RunHistory]) -> list[list[str]]:
    """Where a full run's bytes go: events and KiB per line started, by kind."""
    full = [r for r in runs if r.children_started]
    lines = sum(r.children_started or 0 for r in full)
    if not lines:
        return []
    kinds: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for run in full:
        kinds.update(run.kinds)
        sizes.update(run.kind_bytes)
    return [
        [kind, f"{kinds[kind] / lines:.2f}", f"{sizes[kind] / lines / 1024:.2f}"]
        for kind, _ in sizes.most_common()
    ]


def scale_section(scale: ScaleResult, rate: float) -> list[str]:
    """The markdown of the 100,000-line measurement and its extrapolation."""
    full = scale.full_runs
    per_run = [r.children_started or 0 for r in full]
    lines_per_run = mean(per_run) if per_run else float("nan")
    largest = max(scale.runs, key=lambda r: r.events)
    largest_bytes = max(scale.runs, key=lambda r: r.bytes)
    starts = [r.start_bytes or 0 for r in scale.runs[1:]]
    runs_needed = math.ceil(scale.lines / lines_per_run) if per_run else None
    out = [
        f"### (c) History at scale: a {scale.lines:,}-line campaign",
        "",
        f"A {scale.lines:,}-line CaurisFlux file ({scale.upload_bytes / 1e6:.1f} MB) was "
        f"submitted (`auto_approve`, sandbox settling instantly, provider limit off); "
        f"{scale.run_lines:,} lines were paid, then the campaign was cancelled and drained "
        f"(lines already sent finish). A full run of {scale.lines:,} lines at the "
        f"unthrottled rate of (a) would take about {scale.lines / rate / 3600:.1f} hours on "
        f"this machine, so the rest is **extrapolated** from the runs measured.",
        "",
    ]
    out += table(
        ["step", "seconds from submission"],
        [
            ["`POST /v1/campaigns` answered (file stored)", f"{scale.submit_s:.1f}"],
            [
                f"pre-flight done ({scale.lines:,} lines checked, priced)",
                f"{scale.preflight_s:.1f}",
            ],
            [f"{scale.run_lines:,} lines settled", f"{scale.paid_s:.1f}"],
            [f"cancelled and drained ({scale.settled:,} lines settled)", f"{scale.drained_s:.1f}"],
        ],
    )
    out += ["", "Every run of the campaign workflow:", ""]
    out += table(RUN_HEADER, run_rows(scale.runs))
    kinds = bytes_by_kind(scale.runs)
    if kinds:
        out += ["", "Where the campaign's history goes, per line started (all runs):", ""]
        out += table(["event kind", "events per line", "KiB per line"], kinds)
    out += [
        "",
        "**Extrapolation to the whole file** (the numbers above, not a measured run):",
        "",
    ]
    limit_rows = [
        [name, f"{events:,}", f"{size / 1024 / 1024:.0f}"]
        for name, (events, size) in TEMPORAL_LIMITS.items()
    ]
    bullets = [
        f"- A run ended by continuing as new after {min(per_run, default=0):,}–"
        f"{max(per_run, default=0):,} lines (mean {lines_per_run:,.0f}); "
        f"{scale.lines:,} lines therefore need about **{runs_needed} runs**."
        if per_run
        else "- No run continued as new: too few lines were paid to see the steady state.",
        f"- The largest run measured had **{largest.events:,} events** and the heaviest "
        f"**{_mib(largest_bytes.bytes)} MiB**; a run's size is set by the campaign's "
        "continue-as-new thresholds (`max_history_events` and `max_history_bytes` of "
        "`CampaignOptions`, or Temporal's suggestion at 4,096 events or 4 MiB, whichever "
        "comes first), not by the campaign's length.",
        f"- The state a run carries to the next (its start event) measured "
        f"{min(starts, default=0):,}–{max(starts, default=0):,} bytes across runs: it does "
        f"not grow with the lines paid (it holds counters, cursors and the lines in flight), "
        f"so run {runs_needed or 'N'} looks like run 2."
        if starts
        else "- Only one run was measured: the carried state could not be compared.",
        "- Worker peak RSS during this campaign: "
        + ", ".join(f"{m.get('peak', float('nan')):.0f} MiB" for m in scale.memory.values())
        + ".",
    ]
    out += bullets
    out += ["", "Temporal's per-history limits (server defaults) for comparison:", ""]
    out += table(["limit", "events", "MiB"], limit_rows)
    return out


@dataclass
class CampaignReport:
    """Everything the section is made of."""

    command: str
    started: datetime
    total_s: float
    machine: dict[str, str]
    versions: dict[str, str]
    unthrottled: CampaignResult
    throttled: CampaignResult
    scale: ScaleResult | None


def render_section(rep: CampaignReport) -> str:
    """The markdown of this benchmark's section of ``docs/benchmarks.md``."""
    un, th = rep.unthrottled, rep.throttled
    out = [
        "## Campaigns: drain rate, the provider's limit, history size",
        "",
        f"Generated by `bench/campaign.py` on {rep.started:%Y-%m-%d %H:%M} UTC (whole run "
        f"{rep.total_s / 60:.0f} min). Regenerate with:",
        "",
        "```",
        rep.command,
        "```",
        "",
        "### Setup",
        "",
        *setup_lines(rep.machine, rep.versions),
        f"- **Load average** (1/5/15 min) at the end of each campaign: unthrottled "
        f"{'/'.join(f'{v:.1f}' for v in un.load)}, at the limit "
        f"{'/'.join(f'{v:.1f}' for v in th.load)}; processes outside the benchmark used "
        f"{un.cpu['other'] / un.cpu['interval']:.2f} and "
        f"{th.cpu['other'] / th.cpu['interval']:.2f} cores during them.",
        "- **Stack:** Temporal dev server in memory, the three sandboxes (settling instantly), "
        "the gateway, one momoflow worker, each its own process on 127.0.0.1. Each campaign "
        "gets fresh workers and a reset CaurisFlux sandbox. Traces are not exported (no OTLP "
        "collector configured).",
        f"- **Campaigns:** {un.lines:,} CaurisFlux lines of {AMOUNT_XOF:,} XOF, test numbers "
        f"that succeed, `POST /v1/campaigns?auto_approve=true&max_in_flight_per_provider="
        f"{un.window}` (CSV body). Wall time runs from the POST to the campaign's "
        "`completed_at`, pre-flight included. Payout deadlines of the lines are momoflow's "
        "production defaults (quote 600 s, create 3600 s, settle 7200 s), status reads "
        "after 1, 2, 3 s.",
        f"- **The limit:** `MOMOFLOW_CAURISFLUX__RATE_LIMIT_PER_MINUTE={th.limit_per_minute}` "
        f"on the worker (the provider task queue's `max_task_queue_activities_per_second` = "
        f"{(th.limit_per_minute or 0) / 60:.2f}) and the same plan at the sandbox "
        f"(`rate_limit_per_minute`, a fixed 60 s window that answers 429 beyond it), about "
        f"half the request rate of the unthrottled run. **Floor** = requests needed ÷ limit: "
        f"every API request the sandbox logged during the campaign (pre-flight's "
        f"availability, balance and quote calls included) except 429 refusals.",
        "",
        "### (a) unthrottled and (b) at the limit",
        "",
    ]
    out += table(CAMPAIGN_HEADER, campaign_rows([un, th]))
    out += [
        "",
        "Sandbox requests by operation and HTTP status:",
        "",
        f"- unthrottled: {requests_breakdown(un)}",
        f"- at the limit: {requests_breakdown(th)}",
        "",
        f"Exactly-once check (sandbox ledger, payouts per number of executions): unthrottled "
        f"{counter_text(un.executions)}; at the limit {counter_text(th.executions)}.",
        "",
        "Runs of the campaign workflow at the limit (each continue-as-new starts a new run):",
        "",
    ]
    out += table(RUN_HEADER, run_rows(th.runs))
    out += ["", "### What bounds it", ""]
    out += bounds_text(un, th)
    if rep.scale is not None:
        out += ["", *scale_section(rep.scale, un.lines_per_s)]
    return "\n".join(out) + "\n"


def bounds_text(un: CampaignResult, th: CampaignResult) -> list[str]:
    """Plain-words reading of the two runs, from their numbers only."""
    interval = un.cpu["interval"]
    busy = un.cpu["machine"] / interval
    server_ms = un.cpu.get("temporal", 0.0) / un.lines * 1000
    worker_ms = sum(v for k, v in un.cpu.items() if k.startswith("worker")) / un.lines * 1000
    gateway_ms = un.cpu.get("gateway", 0.0) / un.lines * 1000
    largest = un.largest_run
    per_line = (
        largest.events / largest.children_started
        if largest and largest.children_started
        else float("nan")
    )
    shared = max(other_cores(un.cpu), other_cores(th.cpu))
    achieved = th.needed / th.wall_s * 60
    held = th.max_per_minute <= (th.limit_per_minute or 0) and th.rejected_429 == 0
    out = [
        f"- **Unthrottled**, the campaign drained {un.lines_per_s:.1f} lines/s with the "
        f"machine {busy:.2f} of 2 cores busy. CPU per line: Temporal dev server "
        f"{server_ms:.0f} ms, worker {worker_ms:.0f} ms, gateway (webhooks, progress reads) "
        f"{gateway_ms:.0f} ms. A line is a child payout workflow (about "
        f"{un.children.mean_events:.0f} events) plus {per_line:.1f} events in the campaign's "
        f"own history. The window of {un.window} lines in flight was on average "
        f"{un.window_use * 100:.0f} % full while lines remained to start.",
        f"- **At the limit** ({th.limit_per_minute}/min), the campaign used the provider at "
        f"{achieved:.0f} requests/min on average over its whole wall time, "
        f"{th.wall_s / th.floor_s:.2f}× the floor; at most {th.max_per_minute} requests fell "
        f"in any 60 s window and the sandbox refused {th.rejected_429} with 429"
        + (": the limit held." if held else ": **the limit was not held exactly**."),
    ]
    if shared >= 0.15:
        out.append(
            f"- **The machine was shared:** processes outside the benchmark used up to "
            f"{shared:.2f} cores during these campaigns; the unthrottled rate is a lower "
            "bound, and the wall time at the limit may include time the machine lacked."
        )
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.campaign",
        description="Campaign drain rate, rate-limit adherence and history size.",
    )
    parser.add_argument("--lines", type=int, default=2000, help="lines per campaign (2000)")
    parser.add_argument(
        "--limit-per-minute",
        default="auto",
        help="CaurisFlux plan limit for (b); auto = half the request rate of (a) (auto)",
    )
    parser.add_argument(
        "--window", type=int, default=50, help="max_in_flight_per_provider (50, the default)"
    )
    parser.add_argument("--scale-lines", type=int, default=100_000, help="(c) file size")
    parser.add_argument(
        "--scale-run-lines", type=int, default=3000, help="(c) lines paid before cancelling"
    )
    parser.add_argument(
        "--scale-max-history-events",
        type=int,
        default=None,
        help="(c) the campaign's max_history_events (default: the gateway's)",
    )
    parser.add_argument("--skip-scale", action="store_true", help="skip (c)")
    parser.add_argument("--doc", type=Path, default=DOC_PATH, help="document to update")
    parser.add_argument("--no-doc", action="store_true", help="print only, write no document")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs directory")
    args = parser.parse_args(argv)
    if args.limit_per_minute != "auto":
        try:
            args.limit_per_minute = int(args.limit_per_minute)
        except ValueError:
            parser.error("--limit-per-minute: a number of requests per minute, or auto")
        if args.limit_per_minute < 1:
            parser.error("--limit-per-minute must be >= 1")
    if args.lines < 1 or args.window < 1 or args.scale_run_lines < 1:
        parser.error("--lines, --window and --scale-run-lines must be >= 1")
    return args


async def measure(
    stack: Stack, args: argparse.Namespace
) -> tuple[CampaignResult, CampaignResult, ScaleResult | None]:
    """(a), (b), then (c)."""
    client = await asyncio.wait_for(
        connect_client(TemporalSettings(address=stack.temporal_address)), timeout=30
    )
    print(f"(a) unthrottled: {args.lines} lines ...", flush=True)
    await asyncio.to_thread(
        prepare_phase, stack, provider="caurisflux", workers=1, limit_per_minute=None, log=_print
    )
    unthrottled = await run_campaign(
        stack, client, label="unthrottled", lines=args.lines, window=args.window
    )
    print(summary_line(unthrottled), flush=True)
    limit = auto_limit(unthrottled) if args.limit_per_minute == "auto" else args.limit_per_minute
    print(f"(b) at the limit: {args.lines} lines, {limit}/min ...", flush=True)
    await asyncio.to_thread(
        prepare_phase, stack, provider="caurisflux", workers=1, limit_per_minute=limit, log=_print
    )
    throttled = await run_campaign(
        stack,
        client,
        label="at the limit",
        lines=args.lines,
        limit_per_minute=limit,
        window=args.window,
    )
    print(summary_line(throttled), flush=True)
    problems = check_result(unthrottled) + check_result(throttled)
    if problems:
        raise BenchError("; ".join(problems))
    scale = None
    if not args.skip_scale:
        print(
            f"(c) {args.scale_lines} lines, {args.scale_run_lines} paid, then cancelled ...",
            flush=True,
        )
        await asyncio.to_thread(
            prepare_phase,
            stack,
            provider="caurisflux",
            workers=1,
            limit_per_minute=None,
            log=_print,
        )
        scale = await run_scale(
            stack,
            client,
            lines=args.scale_lines,
            run_lines=args.scale_run_lines,
            window=args.window,
            max_history_events=args.scale_max_history_events,
        )
    return unthrottled, throttled, scale


def main(argv: Sequence[str]) -> int:
    """Run the benchmark; returns the exit code."""
    args = parse_args(argv)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="momoflow-bench-campaign-"))
    stack: Stack | None = None
    ok = False
    try:
        print(f"starting the stack in {root} ...", flush=True)
        stack = start_bench_stack(root, workers=0)
        unthrottled, throttled, scale = asyncio.run(measure(stack, args))
        ok = True
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", flush=True)
        return 1
    finally:
        if stack is not None:
            stack.stop_all()
        if ok and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {root / 'logs'}", flush=True)
    report = CampaignReport(
        command=command_line("bench.campaign", argv),
        started=started,
        total_s=time.monotonic() - t0,
        machine=machine_info(),
        versions=versions(),
        unthrottled=unthrottled,
        throttled=throttled,
        scale=scale,
    )
    section = render_section(report)
    print("\n" + section)
    if not args.no_doc:
        write_section(args.doc, SECTION, section)
        print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    run_script(main)
