"""How close momoflow runs to the limits: one command, a few minutes on 2 cores.

Run from the repository root::

    .venv/bin/python -m bench.run [--payouts 300] [--campaign-lines 500]
        [--limit-per-minute auto] [--profile DIR] [--smoke]

On one private stack (Temporal dev server in memory, the three sandboxes settling
instantly, the gateway, momoflow workers; ``bench.common.start_bench_stack``) it measures:

1. **Orchestration floor vs momoflow**: CaurisFlux payouts per second end to end
   (``POST /v1/payouts``, webhooks on, the workflow's result awaited through Temporal),
   against a bare Temporal workflow with one activity making the same provider calls
   (quote + create, ``bench/bare.py``) on the same server, and a plain asyncio loop making
   those calls through the same adapter without durability; ratios and CPU per payout.
2. **Cost per payout**: history events on the webhook path and on the polling path
   (webhooks dropped by the sandbox), with the poll schedule used.
3. **Webhook-to-final latency**: from the sandbox's first attempt to send the final webhook
   (its ``/_sandbox/webhooks`` log) to the payout's ``completed_at`` and to the workflow's
   close time, at the throughput run's load and at a light load.
4. **Campaign at the rate limit** and 5. **scale-out**: the same campaign
   (``bench/campaign.py``) with 1 and N worker processes, unthrottled and with a CaurisFlux
   limit below the unthrottled rate: wall time ÷ floor, 429s, requests in any 60 s window,
   largest history, worker peak RSS.

``--profile DIR`` samples the momoflow worker with py-spy during 1 and the unthrottled
campaign and summarises where its CPU goes. ``--smoke`` runs everything at tiny sizes
(``tests/test_bench_smoke.py``). The section ``<!-- bench:run:start -->`` of
``docs/benchmarks.md`` is rewritten unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench import bare
from bench.campaign import (
    CAMPAIGN_HEADER,
    CampaignResult,
    auto_limit,
    campaign_rows,
    check_result,
    prepare_phase,
    requests_breakdown,
    run_campaign,
    summary_line,
)
from bench.common import (
    DOC_PATH,
    NON_STACK_KEYS,
    BenchError,
    command_line,
    cpu_delta,
    cpu_snapshot,
    gather_limited,
    load_average,
    machine_info,
    mean,
    other_cores,
    p50_95_99,
    parse_at,
    run_script,
    setup_lines,
    start_bench_stack,
    table,
    versions,
    write_section,
)
from bench.payouts import (
    BatchResult,
    HistoryStats,
    PayoutRun,
    build_runs,
    fetch_histories,
    poll_schedules,
    run_batch,
)
from momoflow.models import ProviderName
from momoflow.processes import ManagedProcess
from momoflow.providers.registry import open_providers
from momoflow.settings import Settings, TemporalSettings
from momoflow.temporal import connect_client
from tests.stack import ACME_KEY, Stack

SECTION = "run"
REPO_ROOT = Path(__file__).resolve().parent.parent
PROVIDER = "caurisflux"


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    """How much of everything one run does."""

    payouts: int
    concurrency: int
    warmup: int
    light_payouts: int
    light_concurrency: int
    polling_payouts: int
    campaign_lines: int
    scale_workers: int


FULL = Sizes(
    payouts=300,
    concurrency=30,
    warmup=20,
    light_payouts=40,
    light_concurrency=2,
    polling_payouts=30,
    campaign_lines=300,
    scale_workers=3,
)
SMOKE = Sizes(
    payouts=6,
    concurrency=3,
    warmup=2,
    light_payouts=3,
    light_concurrency=1,
    polling_payouts=2,
    campaign_lines=6,
    scale_workers=2,
)
#: The smoke run's CaurisFlux limit: low enough to bind on 6 lines, high enough to be quick.
SMOKE_LIMIT_PER_MINUTE = 240


# --------------------------------------------------------------------------- 1. the floor


@dataclass
class FloorRun:
    """One of the three ways to make the payouts' provider calls."""

    name: str
    what: str
    count: int
    concurrency: int
    wall_s: float
    cpu: dict[str, float]
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Payouts per second."""
        return self.count / self.wall_s if self.wall_s > 0 else float("nan")

    def cpu_ms(self, key: str) -> float:
        """CPU milliseconds per payout of one process group (or key of ``cpu_delta``)."""
        return self.cpu.get(key, 0.0) / self.count * 1000

    @property
    def busy_ms(self) -> float:
        """CPU milliseconds per payout of the stack's processes and this client."""
        keys = [k for k in self.cpu if k not in NON_STACK_KEYS] + ["bench client"]
        return sum(self.cpu.get(k, 0.0) for k in keys) / self.count * 1000


async def closed_loop(count: int, concurrency: int, one: Any) -> tuple[float, list[float]]:
    """Run ``one(i)`` for i in range(count), at most ``concurrency`` at a time; wall time
    and each call's latency. Any failure aborts the measurement."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def run(i: int) -> None:
        async with gate:
            t = time.monotonic()
            await one(i)
            latencies.append(time.monotonic() - t)

    start = time.monotonic()
    await asyncio.gather(*(run(i) for i in range(count)))
    return time.monotonic() - start, latencies


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``values`` for the duration (settings read from it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_bare_worker(stack: Stack) -> ManagedProcess:
    """``python -m bench.bare`` with the stack's settings, added to the stack's processes."""
    proc = ManagedProcess(
        "bare worker",
        [sys.executable, "-m", "bench.bare"],
        log_path=stack.root / "logs" / "bare-worker.log",
        env=stack.env,
        cwd=REPO_ROOT,
    )
    proc.start()
    stack.processes["bare worker"] = proc
    proc.wait_until(lambda: bare.READY_LINE in proc.tail(50), timeout=90, what="polling")
    return proc


async def measure_momoflow(
    stack: Stack, http: httpx.AsyncClient, client: Client, sizes: Sizes, run_id: str, log: Any
) -> tuple[FloorRun, BatchResult]:
    """Warm-up, then ``sizes.payouts`` CaurisFlux payouts through the gateway, each awaited
    through Temporal (no status polling)."""
    timing = {"poll_interval": 0.5, "payout_timeout": 120.0, "batch_timeout": 900.0}
    await run_batch(
        http,
        "warm-up",
        build_runs("w", sizes.warmup, [PROVIDER], run_id),
        concurrency=min(sizes.concurrency, sizes.warmup),
        client=client,
        **timing,
    )
    before = cpu_snapshot(stack)
    batch = await run_batch(
        http,
        "momoflow",
        build_runs("m", sizes.payouts, [PROVIDER], run_id),
        concurrency=sizes.concurrency,
        client=client,
        **timing,
    )
    cpu = cpu_delta(before, cpu_snapshot(stack))
    run = FloorRun(
        name="momoflow",
        what="`POST /v1/payouts` → PayoutWorkflow: quote, create, wait for the signed webhook "
        "(status reads on its schedule if none), result awaited through Temporal",
        count=sizes.payouts,
        concurrency=sizes.concurrency,
        wall_s=batch.wall_s,
        cpu=cpu,
        latencies=[r.latency_s for r in batch.runs if r.latency_s is not None],
    )
    log(f"  momoflow: {run.rate:.1f} payouts/s")
    return run, batch


async def measure_bare(stack: Stack, sizes: Sizes, run_id: str, log: Any) -> FloorRun:
    """The bare workflow, started and awaited with a plain Temporal client."""
    client = await Client.connect(stack.temporal_address)

    async def one(i: int, label: str = "b") -> None:
        reference = f"BARE-{run_id}-{label}-{i:05d}"
        await client.execute_workflow(
            bare.BarePayoutWorkflow.run,
            reference,
            id=reference,
            task_queue=bare.BARE_QUEUE,
        )

    await closed_loop(sizes.warmup, sizes.concurrency, lambda i: one(i, "w"))
    before = cpu_snapshot(stack)
    wall, latencies = await closed_loop(sizes.payouts, sizes.concurrency, one)
    cpu = cpu_delta(before, cpu_snapshot(stack))
    run = FloorRun(
        name="bare Temporal workflow",
        what="one workflow, one activity making the same two provider calls (quote, create) "
        "through momoflow's CaurisFlux adapter; no webhook wait, default data converter",
        count=sizes.payouts,
        concurrency=sizes.concurrency,
        wall_s=wall,
        cpu=cpu,
        latencies=latencies,
    )
    log(f"  bare Temporal workflow: {run.rate:.1f} payouts/s")
    return run


async def measure_plain(stack: Stack, sizes: Sizes, run_id: str, log: Any) -> FloorRun:
    """The two provider calls from this process, no Temporal."""
    with environment(stack.env):
        settings = Settings()
    async with open_providers(settings) as providers:
        provider = providers[ProviderName.CAURISFLUX]

        async def one(i: int, label: str = "p") -> None:
            await bare.plain_payout(provider, f"PLAIN-{run_id}-{label}-{i:05d}", i)

        await closed_loop(sizes.warmup, sizes.concurrency, lambda i: one(i, "w"))
        before = cpu_snapshot(stack)
        wall, latencies = await closed_loop(sizes.payouts, sizes.concurrency, one)
        cpu = cpu_delta(before, cpu_snapshot(stack))
    run = FloorRun(
        name="plain asyncio + httpx",
        what="the same two calls from an asyncio loop in the benchmark process (momoflow's "
        "adapter on httpx), nothing durable",
        count=sizes.payouts,
        concurrency=sizes.concurrency,
        wall_s=wall,
        cpu=cpu,
        latencies=latencies,
    )
    log(f"  plain asyncio + httpx: {run.rate:.1f} payouts/s")
    return run


# --------------------------------------------------------------------------- 3. latency


@dataclass
class WebhookLatency:
    """From the sandbox sending the final webhook to the payout's end, per payout."""

    label: str
    concurrency: int
    to_completed: list[float]
    to_close: list[float]
    matched: int
    not_webhook: int


async def webhook_latency(
    http: httpx.AsyncClient, stack: Stack, client: Client, batch: BatchResult, label: str
) -> WebhookLatency:
    """Match each payout settled by a webhook to the sandbox's delivery of that webhook."""
    answer = await http.get(f"{stack.sandbox_urls[PROVIDER]}/_sandbox/webhooks", timeout=60)
    answer.raise_for_status()
    sent: dict[str, float] = {}
    for delivery in answer.json()["deliveries"]:
        attempts = delivery.get("attemptLog") or []
        if delivery.get("transactionId") and attempts and delivery.get("delivered"):
            # The last delivered webhook of a transaction is its final one.
            sent[str(delivery["transactionId"])] = parse_at(attempts[0]["at"])
    runs = [r for r in batch.runs if r.path == "webhook" and r.final_state and r.workflow_id]

    async def close_time(run: PayoutRun) -> float | None:
        assert run.workflow_id is not None
        described = await client.get_workflow_handle(run.workflow_id).describe()
        return described.close_time.timestamp() if described.close_time else None

    closes = await gather_limited(8, (close_time(r) for r in runs))
    to_completed, to_close = [], []
    for run, closed in zip(runs, closes, strict=True):
        assert run.final_state is not None
        tx = run.final_state.get("provider_transaction_id")
        completed = run.final_state.get("completed_at")
        if tx not in sent or not completed:
            continue
        at = sent[tx]
        to_completed.append(datetime.fromisoformat(completed).timestamp() - at)
        if closed is not None:
            to_close.append(closed - at)
    return WebhookLatency(
        label=label,
        concurrency=batch.concurrency,
        to_completed=to_completed,
        to_close=to_close,
        matched=len(to_completed),
        not_webhook=len(batch.runs) - len(runs),
    )


# --------------------------------------------------------------------------- profile


@dataclass
class Profile:
    """py-spy samples of the worker, summarised."""

    label: str
    path: Path
    samples: int
    by_package: Counter[str]
    top_self: Counter[str]
    top_momoflow: Counter[str]


def start_profiler(pid: int, out: Path, duration: int) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` for ``duration`` s (raw collapsed stacks to ``out``)."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        raise BenchError("--profile needs py-spy: pip install -e '.[test]'")
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(duration),
            "--rate",
            "100",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def stop_profiler(proc: subprocess.Popen[bytes]) -> None:
    """Let py-spy write its file (SIGINT ends a recording early), then reap it."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _package(frame: str) -> str:
    """The package a py-spy frame (``function (path:line)``) belongs to."""
    path = "/" + frame.rsplit("(", 1)[-1]
    for marker, name in (
        ("/temporalio/", "temporalio (SDK, incl. workflow sandbox)"),
        ("/pydantic", "pydantic"),
        ("/httpx/", "httpx / httpcore / anyio"),
        ("/httpcore/", "httpx / httpcore / anyio"),
        ("/anyio/", "httpx / httpcore / anyio"),
        ("/opentelemetry/", "opentelemetry"),
        ("/google/protobuf/", "protobuf"),
        ("/asyncio/", "asyncio"),
        ("/cryptography/", "cryptography (payload codec)"),
        ("/momoflow/", "momoflow"),
        ("/workflows/", "momoflow"),
        ("/activities/", "momoflow"),
        ("/worker.py:", "momoflow"),
        ("/logging/", "logging"),
        ("/json/", "json"),
    ):
        if marker in path:
            return name
    return "other (stdlib, runtime)"


_LOOP_CALLBACK = "Handle._run (asyncio/events.py"
#: Leaf frames that are a thread waiting, which ``--nonblocking`` sampling still reports.
IDLE_LEAVES = (
    "EpollSelector.select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "Condition.wait (threading.py",
)


def summarize_profile(label: str, path: Path) -> Profile:
    """Self time by package and function, and inclusive time of momoflow's functions."""
    by_package: Counter[str] = Counter()
    top_self: Counter[str] = Counter()
    top_momoflow: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_LEAVES):
            continue
        samples += count
        leaf = frames[-1]
        by_package[_package(leaf)] += count
        top_self[leaf] += count
        # Inclusive time counts from the event loop's callback (or a thread's start) on,
        # so that the worker's entry point (cli, asyncio.run) is not 100 % of everything.
        start = max(
            (i for i, frame in enumerate(frames) if frame.startswith(_LOOP_CALLBACK)), default=-1
        )
        seen = set()
        for frame in frames[start + 1 :]:
            if _package(frame) == "momoflow" and frame not in seen:
                seen.add(frame)
                top_momoflow[frame] += count
    return Profile(label, path, samples, by_package, top_self, top_momoflow)


# --------------------------------------------------------------------------- measure


@dataclass
class Measurements:
    """Everything ``measure`` collected."""

    floor: list[FloorRun]
    histories: list[HistoryStats]
    polling_histories: list[HistoryStats]
    schedule: list[int]
    latency: list[WebhookLatency]
    campaigns: list[CampaignResult]
    limit_per_minute: int
    profiles: list[Profile]
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _log(message: str) -> None:
    print(message, flush=True)


async def measure(stack: Stack, args: argparse.Namespace, sizes: Sizes) -> Measurements:
    """Sections 1 to 5, in an order that keeps each measurement clean."""
    run_id = uuid.uuid4().hex[:6]
    load_start = load_average()
    client = await asyncio.wait_for(
        connect_client(TemporalSettings(address=stack.temporal_address)), timeout=30
    )
    profiles: list[Profile] = []
    profile_dir: Path | None = args.profile
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    limits = httpx.Limits(max_connections=sizes.concurrency + 10)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=headers, timeout=30.0, limits=limits
    ) as http:
        _log("1. orchestration floor vs momoflow")
        profiler = None
        if profile_dir is not None:
            worker_pid = stack.processes["worker"].pid
            assert worker_pid is not None
            profile_dir.mkdir(parents=True, exist_ok=True)
            profiler = start_profiler(worker_pid, profile_dir / "worker-payouts.txt", 600)
        try:
            momoflow, batch = await measure_momoflow(stack, http, client, sizes, run_id, _log)
        finally:
            if profiler is not None:
                stop_profiler(profiler)
        if profile_dir is not None:
            profiles.append(
                summarize_profile(
                    f"{sizes.payouts} payouts, {sizes.concurrency} in flight",
                    profile_dir / "worker-payouts.txt",
                )
            )
        _log(f"  fetching {len(batch.runs)} histories ...")
        histories = await fetch_histories(client, batch.runs)
        _log("3. webhook-to-final latency")
        latency = [
            await webhook_latency(
                http, stack, client, batch, f"throughput run ({sizes.concurrency} in flight)"
            )
        ]
        light = await run_batch(
            http,
            "light load",
            build_runs("l", sizes.light_payouts, [PROVIDER], run_id),
            concurrency=sizes.light_concurrency,
            poll_interval=0.5,
            payout_timeout=120.0,
            batch_timeout=600.0,
            client=client,
        )
        latency.append(
            await webhook_latency(
                http, stack, client, light, f"light load ({sizes.light_concurrency} in flight)"
            )
        )
        for lat in latency:
            _log(f"  {lat.label}: p50/p95/p99 {p50_95_99(lat.to_close)} ms to close")

        _log("2. polling path (webhooks dropped)")
        await asyncio.to_thread(stack.fault, PROVIDER, kind="drop_webhooks", count=100_000)
        try:
            polling = await run_batch(
                http,
                "polling",
                build_runs("p", sizes.polling_payouts, [PROVIDER], run_id),
                concurrency=min(sizes.concurrency, sizes.polling_payouts),
                poll_interval=0.5,
                payout_timeout=120.0,
                batch_timeout=600.0,
                client=client,
            )
            polling_histories = await fetch_histories(client, polling.runs)

            _log("1. (floor) bare Temporal workflow and plain loop, webhooks dropped")
            await asyncio.to_thread(start_bare_worker, stack)
            bare_run = await measure_bare(stack, sizes, run_id, _log)
            stack.processes.pop("bare worker").stop()
            plain_run = await measure_plain(stack, sizes, run_id, _log)
        finally:
            await asyncio.to_thread(stack.clear_faults)

    _log("4./5. campaigns")
    campaigns: list[CampaignResult] = []

    async def campaign(workers: int, limit: int | None, label: str) -> CampaignResult:
        await asyncio.to_thread(
            prepare_phase,
            stack,
            provider=PROVIDER,
            workers=workers,
            limit_per_minute=limit,
            log=_log,
        )
        profiler = None
        profile_path = profile_dir / "worker-campaign.txt" if profile_dir else None
        if profile_path is not None and workers == 1 and limit is None:
            pid = stack.processes["worker"].pid
            assert pid is not None
            profiler = start_profiler(pid, profile_path, 1200)
        try:
            result = await run_campaign(
                stack,
                client,
                label=label,
                lines=sizes.campaign_lines,
                workers=workers,
                limit_per_minute=limit,
                log=_log,
            )
        finally:
            if profiler is not None and profile_path is not None:
                stop_profiler(profiler)
                profiles.append(
                    summarize_profile(
                        f"campaign of {sizes.campaign_lines} lines, unthrottled", profile_path
                    )
                )
        _log(summary_line(result))
        problems = check_result(result)
        if problems:
            raise BenchError(f"{label}: " + "; ".join(problems))
        campaigns.append(result)
        return result

    unthrottled = await campaign(1, None, "1 worker, unthrottled")
    if args.smoke:
        limit = SMOKE_LIMIT_PER_MINUTE
    elif args.limit_per_minute == "auto":
        limit = auto_limit(unthrottled)
    else:
        limit = int(args.limit_per_minute)
    await campaign(1, limit, "1 worker, at the limit")
    n = sizes.scale_workers
    await campaign(n, None, f"{n} workers, unthrottled")
    await campaign(n, limit, f"{n} workers, at the limit")
    found = Measurements(
        floor=[plain_run, bare_run, momoflow],
        histories=histories,
        polling_histories=polling_histories,
        schedule=poll_schedules(stack, [PROVIDER])[PROVIDER],
        latency=latency,
        campaigns=campaigns,
        limit_per_minute=limit,
        profiles=profiles,
        load_start=load_start,
    )
    found.load_end = load_average()
    return found


# --------------------------------------------------------------------------- report


def _events(stats: Sequence[HistoryStats]) -> str:
    counts = [s.events for s in stats]
    if not counts:
        return "n/a"
    return f"{mean(counts):.1f} / {min(counts)} / {max(counts)}"


def _load(values: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def _stack_keys(cpu: Mapping[str, float]) -> list[str]:
    return [k for k in cpu if k not in NON_STACK_KEYS and cpu[k] > 0.05]


def render_section(
    found: Measurements,
    *,
    command: str,
    started: datetime,
    total_s: float,
    sizes: Sizes,
    smoke: bool,
) -> str:
    """The markdown of this benchmark's section of ``docs/benchmarks.md``."""
    plain, bare_run, momoflow = found.floor
    shared = max(other_cores(r.cpu) for r in found.floor)
    out = [
        "## End to end: momoflow against its floor (`bench/run.py`)",
        "",
        f"Generated by `bench/run.py` on {started:%Y-%m-%d %H:%M} UTC (whole run "
        f"{total_s / 60:.1f} min, stack start and stop included)"
        + (" — **smoke sizes, not a measurement**" if smoke else "")
        + ". Regenerate with:",
        "",
        "```",
        command,
        "```",
        "",
        "### Setup",
        "",
        *setup_lines(machine_info(), versions()),
        f"- **Load average** (1/5/15 min): {_load(found.load_start)} at the start, "
        f"{_load(found.load_end)} at the end; processes outside the benchmark used up to "
        f"{shared:.2f} cores during the payout measurements"
        + (
            " (**the machine was shared: rates are lower bounds**)."
            if shared >= 0.15
            else " (a quiet machine)."
        ),
        "- **Stack:** `tests.stack.start_stack`: Temporal dev server in memory, the three "
        "sandboxes settling instantly (`settle_delay=0`), the gateway, momoflow worker "
        "process(es) (task-queue prefix `momoflow-test`), each its own process on 127.0.0.1. "
        f"All payouts are CaurisFlux (SN, wave, {bare.AMOUNT_XOF:,} XOF, test numbers that "
        "succeed): quote then create at the provider. Traces are not exported (no OTLP "
        "collector configured).",
        "",
        "### 1. Orchestration floor vs momoflow",
        "",
        f"{sizes.payouts} payouts each after {sizes.warmup} warm-up ones, closed loop with "
        f"at most {sizes.concurrency} in flight. During the bare workflow and the plain loop "
        "the sandbox drops its webhooks (`drop_webhooks` fault: neither waits for one, and the "
        "gateway is not loaded with webhooks nobody awaits).",
        "",
    ]
    rows = []
    for run in found.floor:
        rows.append(
            [
                f"**{run.name}**",
                run.what,
                f"{run.wall_s:.1f}",
                f"**{run.rate:.1f}**",
                p50_95_99(run.latencies),
                f"{run.busy_ms:.0f}",
                f"{momoflow.rate / run.rate:.2f}" if run.rate else "n/a",
            ]
        )
    out += table(
        [
            "system",
            "one payout is",
            "wall s",
            "payouts/s",
            "latency p50 / p95 / p99 ms",
            "CPU ms per payout (all processes)",
            "momoflow's rate ÷ this",
        ],
        rows,
    )
    out += [
        "",
        f"**Ratios:** momoflow runs at {momoflow.rate / bare_run.rate:.2f}× the bare Temporal "
        f"workflow's rate and {momoflow.rate / plain.rate:.3f}× the plain loop's "
        f"({plain.rate / momoflow.rate:.0f}× slower); the bare workflow itself runs at "
        f"{bare_run.rate / plain.rate:.3f}× the plain loop. CPU per payout: momoflow "
        f"{momoflow.busy_ms:.0f} ms, bare {bare_run.busy_ms:.0f} ms, plain {plain.busy_ms:.0f} "
        "ms.",
        "",
        "CPU milliseconds per payout by process (utime + stime from `/proc`):",
        "",
    ]
    keys: list[str] = []
    for run in found.floor:
        keys += [k for k in _stack_keys(run.cpu) if k not in keys]
    keys += ["bench client", "other"]
    out += table(
        ["process", *(r.name for r in found.floor)],
        [
            [
                {"temporal": "Temporal dev server", "other": "other processes"}.get(k, k),
                *(f"{r.cpu_ms(k):.1f}" for r in found.floor),
            ]
            for k in keys
        ],
    )

    paths: dict[str, list[HistoryStats]] = defaultdict(list)
    for h in found.histories:
        paths[h.path].append(h)
    for h in found.polling_histories:
        paths[f"{h.path} (webhooks dropped)"].append(h)
    out += [
        "",
        "### 2. Cost per payout: history events",
        "",
        f"Poll schedule while waiting for the webhook: status reads after "
        f"{found.schedule} s (the last value repeats; `MOMOFLOW_PAYOUT_TIMINGS` of "
        "`tests/stack.py`; production defaults are slower). The polling path is a batch of "
        f"{sizes.polling_payouts} payouts with every webhook dropped by the sandbox. The "
        "bare workflow has 11 events (start, 3 workflow-task events, 3 activity events, "
        "3 workflow-task events, complete).",
        "",
    ]
    kinds = sorted({k for stats in paths.values() for h in stats for k in h.kinds})
    out += table(
        ["completion path", "payouts", "events mean / min / max", *kinds, "KiB mean"],
        [
            [
                path,
                str(len(stats)),
                _events(stats),
                *(f"{mean([h.kinds.get(k, 0) for h in stats]):.1f}" for k in kinds),
                f"{mean([h.bytes for h in stats]) / 1024:.1f}",
            ]
            for path, stats in sorted(paths.items())
        ],
    )

    out += [
        "",
        "### 3. Webhook-to-final latency",
        "",
        "From the sandbox's first attempt to send the final webhook (`attemptLog[0].at` in "
        "`/_sandbox/webhooks`, millisecond precision) to the payout's `completed_at` (the "
        "workflow recorded the final state) and to the workflow's close time (Temporal); "
        "payouts settled by the webhook only. Same machine, same clock.",
        "",
    ]
    out += table(
        ["load", "payouts", "→ `completed_at` p50 / p95 / p99 ms", "→ closed p50 / p95 / p99 ms"],
        [
            [
                lat.label,
                f"{lat.matched}"
                + (f" (+{lat.not_webhook} not by webhook)" if lat.not_webhook else ""),
                p50_95_99(lat.to_completed),
                p50_95_99(lat.to_close),
            ]
            for lat in found.latency
        ],
    )

    camps = found.campaigns
    out += [
        "",
        "### 4. Campaign at the rate limit, and 5. scale-out",
        "",
        f"The same campaign ({sizes.campaign_lines} CaurisFlux lines, "
        "`POST /v1/campaigns?auto_approve=true`, 50 lines in flight per provider, the lines' "
        "payout deadlines at momoflow's production defaults) four times, "
        "each with fresh workers and a reset sandbox: 1 and "
        f"{sizes.scale_workers} worker processes against the one server, unthrottled and with "
        f"the CaurisFlux limit at **{found.limit_per_minute}/min** (about half the unthrottled "
        "request rate) at momoflow and at the sandbox. **Floor** = requests needed (every API "
        "request the sandbox logged but 429s) ÷ limit. The limit holds when no 60 s window "
        "holds more requests than the limit and the sandbox refuses none.",
        "",
    ]
    out += table(CAMPAIGN_HEADER, campaign_rows(camps))
    out += ["", "Sandbox requests by operation and HTTP status:", ""]
    out += [f"- {c.label}: {requests_breakdown(c)}" for c in camps]
    out += ["", "### What bounds it", ""]
    out += bounds(found)
    if found.profiles:
        out += ["", "### Where the worker's CPU goes (py-spy)", ""]
        for profile in found.profiles:
            out += [
                f"**{profile.label}** ({profile.samples} busy samples at 100 Hz; threads "
                "waiting in epoll, a queue or a condition left out), self time by package:",
                "",
            ]
            out += table(
                ["package", "share"],
                [
                    [name, f"{count / profile.samples * 100:.0f} %"]
                    for name, count in profile.by_package.most_common(8)
                ],
            )
            out += ["", "momoflow's own functions, inclusive time (top 8):", ""]
            out += table(
                ["function", "share"],
                [
                    [f"`{frame}`", f"{count / profile.samples * 100:.1f} %"]
                    for frame, count in profile.top_momoflow.most_common(8)
                ],
            )
            out += [""]
    return "\n".join(out).rstrip() + "\n"


def bounds(found: Measurements) -> list[str]:
    """Plain-words reading of the numbers (generated from them)."""
    plain, bare_run, momoflow = found.floor
    cpu = momoflow.cpu
    server = cpu.get("temporal", 0.0) / momoflow.count * 1000
    worker = sum(v for k, v in cpu.items() if k.startswith("worker")) / momoflow.count * 1000
    gateway = cpu.get("gateway", 0.0) / momoflow.count * 1000
    events = mean([h.events for h in found.histories])
    busy = cpu["machine"] / cpu["interval"]
    lines = [
        f"- **momoflow vs the bare workflow** ({momoflow.rate:.1f} vs {bare_run.rate:.1f} "
        f"payouts/s): a momoflow payout is a {events:.0f}-event workflow (bare: 11) with a "
        f"webhook through the gateway, search attributes and encrypted payloads. Per payout "
        f"the dev server spent {server:.0f} ms of CPU "
        f"({server / events:.1f} ms per event), the worker {worker:.0f} ms, the gateway "
        f"{gateway:.0f} ms; the machine was {busy:.2f} of 2 cores busy"
        + (
            f" ({other_cores(cpu):.2f} of them by processes outside the benchmark), so the "
            "rate is what the CPU left to the stack allows."
            if busy >= 1.7
            else ", so CPU was not the only bound (latency × in-flight limit)."
        ),
        f"- **The plain loop** ({plain.rate:.0f} payouts/s) spends {plain.busy_ms:.1f} ms of "
        "CPU per payout: the provider calls themselves are cheap; what a durable payout costs "
        "is Temporal's bookkeeping (the server) and the worker's replay of each workflow task.",
    ]
    camps = found.campaigns
    if len(camps) == 4:
        un1, th1, un_n, th_n = camps

        def cores(result: CampaignResult, prefix: str) -> float:
            used = sum(v for k, v in result.cpu.items() if k.startswith(prefix))
            return used / result.cpu["interval"]

        lines += [
            f"- **Campaign unthrottled**: {un1.lines_per_s:.1f} lines/s with 1 worker, "
            f"{un_n.lines_per_s:.1f} with {un_n.workers} "
            f"({un_n.lines_per_s / un1.lines_per_s:.2f}×); the dev server used "
            f"{cores(un1, 'temporal'):.2f} and {cores(un_n, 'temporal'):.2f} cores, the "
            f"workers together {cores(un1, 'worker'):.2f} and {cores(un_n, 'worker'):.2f}, the "
            f"whole machine {un1.cpu['machine'] / un1.cpu['interval']:.2f} and "
            f"{un_n.cpu['machine'] / un_n.cpu['interval']:.2f} of 2.",
            f"- **Campaign at {found.limit_per_minute}/min**: wall ÷ floor "
            f"{th1.wall_s / th1.floor_s:.2f} with 1 worker and "
            f"{th_n.wall_s / th_n.floor_s:.2f} with {th_n.workers}; at most "
            f"{th1.max_per_minute} and {th_n.max_per_minute} requests in any 60 s window, "
            f"{th1.rejected_429} and {th_n.rejected_429} refused with 429"
            + (
                ": the limit held, with 1 worker as with several."
                if max(th1.max_per_minute, th_n.max_per_minute) <= found.limit_per_minute
                and th1.rejected_429 + th_n.rejected_429 == 0
                else ": the server paces the provider's queue the same with 1 worker as with "
                "several, but **not exactly within the sandbox's fixed 60 s window** (the "
                "refused requests were retried)."
            ),
        ]
    return lines


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="momoflow against its floor, in one run."
    )
    parser.add_argument("--payouts", type=int, default=FULL.payouts, help="payouts per system")
    parser.add_argument("--concurrency", type=int, default=FULL.concurrency, help="in flight")
    parser.add_argument(
        "--campaign-lines", type=int, default=FULL.campaign_lines, help="lines per campaign"
    )
    parser.add_argument(
        "--limit-per-minute", default="auto", help="CaurisFlux limit for 4/5 (auto: half)"
    )
    parser.add_argument(
        "--scale-workers", type=int, default=FULL.scale_workers, help="workers for 5 (3)"
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the worker into DIR")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a test, not numbers)")
    parser.add_argument("--doc", type=Path, default=DOC_PATH, help="document to update")
    parser.add_argument("--no-doc", action="store_true", help="print only, write no document")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs directory")
    args = parser.parse_args(argv)
    if args.limit_per_minute != "auto" and not str(args.limit_per_minute).isdigit():
        parser.error("--limit-per-minute: a number of requests per minute, or auto")
    if min(args.payouts, args.concurrency, args.campaign_lines, args.scale_workers) < 1:
        parser.error("sizes must be >= 1")
    return args


def sizes_for(args: argparse.Namespace) -> Sizes:
    """The sizes of this run (``--smoke`` wins over the other size options)."""
    if args.smoke:
        return SMOKE
    return Sizes(
        payouts=args.payouts,
        concurrency=args.concurrency,
        warmup=FULL.warmup,
        light_payouts=FULL.light_payouts,
        light_concurrency=FULL.light_concurrency,
        polling_payouts=FULL.polling_payouts,
        campaign_lines=args.campaign_lines,
        scale_workers=args.scale_workers,
    )


def main(argv: Sequence[str]) -> int:
    """Run the benchmark; returns the exit code."""
    args = parse_args(argv)
    sizes = sizes_for(args)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="momoflow-bench-run-"))
    stack: Stack | None = None
    ok = False
    try:
        _log(f"starting the stack in {root} ...")
        stack = start_bench_stack(root)
        found = asyncio.run(measure(stack, args, sizes))
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
    section = render_section(
        found,
        command=command_line("bench.run", argv),
        started=started,
        total_s=time.monotonic() - t0,
        sizes=sizes,
        smoke=args.smoke,
    )
    print("\n" + section)
    if not args.no_doc:
        write_section(args.doc, SECTION, section)
        print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    run_script(main)
