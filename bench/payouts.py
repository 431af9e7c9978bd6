"""Payout benchmark: end-to-end throughput, latency and Temporal cost per payout.

Run from the repository root::

    .venv/bin/python -m bench.payouts [--payouts 300] [--concurrency 30] \
        [--providers caurisflux,novasend,mobilepay]

What it does:

1. starts a private stack with ``tests.stack.start_stack`` in a temporary directory (Temporal
   dev server in memory, the three provider sandboxes, the gateway) plus one worker, and makes
   the sandboxes settle instantly (``settle_delay=0``);
2. sends 20 warm-up payouts, then N payouts through ``POST /v1/payouts``, round-robin over
   the chosen providers with test numbers that succeed. The load is a closed loop: at most C
   payouts are in flight; each one is POSTed, then read with ``GET /v1/payouts/{ref}`` every
   ``--poll-interval`` seconds until it is final;
3. measures payouts/s from the first POST to the last payout seen final, the latency of each
   payout (POST to first seen final, and POST to the workflow's own ``completed_at``), the
   gateway's POST latency, and the CPU time of every process of the stack;
4. fetches the Temporal history of the finished workflows and reports history events per
   payout by provider and by completion path (webhook or poll); a second, small batch with
   the CaurisFlux sandbox dropping every webhook measures the polling path;
5. prints a summary and rewrites its own section of ``docs/benchmarks.md`` (between
   ``<!-- bench:payouts:start -->`` and ``<!-- bench:payouts:end -->``).

Every wait has a deadline. The process ends with ``os._exit`` (temporalio/sdk-python#300).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.common import (
    ALL_PROVIDERS,
    DOC_PATH,
    NON_STACK_KEYS,
    OTHER_CORES_WARNING,
    BenchError,
    command_line,
    cpu_delta,
    cpu_snapshot,
    event_kind,
    machine_info,
    mean,
    ms,
    percentile,
    read_from,
    run_script,
    start_bench_stack,
    table,
    versions,
    write_section,
)
from momoflow.settings import TemporalSettings
from momoflow.temporal import connect_client
from tests.stack import ACME_KEY, Stack
from tests.test_payout_flow import payout_body

SECTION = "payouts"

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "expired"})
WARMUP_PAYOUTS = 20
POLL_PATH_PAYOUTS = 30
AMOUNT_XOF = 25_000


@dataclass(frozen=True)
class ProviderCase:
    """How to address one provider with a test number that succeeds."""

    country: str
    operator: str
    phone_prefix: str

    def phone(self, index: int) -> str:
        """A recipient number whose last four digits (1000-9999) mean "succeeds" in the
        provider's sandbox (``docs/sandbox-*.md``)."""
        return f"{self.phone_prefix}{1000 + index % 9000:04d}"


CASES: dict[str, ProviderCase] = {
    # CaurisFlux: 0000 and 0002-0006 are scripted failures or delays.
    "caurisflux": ProviderCase(country="SN", operator="wave", phone_prefix="+22177123"),
    # NovaSend payouts: 0001, 0002, 0003 and 0005 do not complete.
    "novasend": ProviderCase(country="CI", operator="wave", phone_prefix="+225070123"),
    # MOBILE-PAY: 0000, 0002, 0003 and 0004 do not complete.
    "mobilepay": ProviderCase(country="CI", operator="orange_money", phone_prefix="+225070123"),
}


# --------------------------------------------------------------------------- measurements


@dataclass
class PayoutRun:
    """What the client saw of one payout."""

    reference: str
    provider: str
    posted_mono: float = 0.0
    posted_wall: datetime | None = None
    post_s: float | None = None
    post_status: int | None = None
    workflow_id: str | None = None
    seen_final_mono: float | None = None
    status: str | None = None
    final_state: dict[str, Any] | None = None
    gets: int = 0
    get_errors: Counter[int] = field(default_factory=Counter)
    error: str | None = None

    @property
    def latency_s(self) -> float | None:
        """From the start of the POST to the first GET that showed a final status."""
        if self.seen_final_mono is None:
            return None
        return self.seen_final_mono - self.posted_mono

    @property
    def workflow_latency_s(self) -> float | None:
        """From the start of the POST to the workflow's own ``completed_at`` (no poll
        quantisation; same machine, same clock)."""
        if self.final_state is None or self.posted_wall is None:
            return None
        completed = self.final_state.get("completed_at")
        if not completed:
            return None
        return (datetime.fromisoformat(completed) - self.posted_wall).total_seconds()

    @property
    def path(self) -> str:
        """How the payout reached its final state, from the note of its final timeline entry."""
        if self.final_state is None:
            return "unknown"
        for entry in self.final_state.get("timeline", []):
            if entry.get("status") in FINAL_STATUSES:
                return completion_path(str(entry.get("note", "")))
        return "unknown"


def completion_path(note: str) -> str:
    """Classify the final note the workflow writes: ``succeeded (<source>)``."""
    if "unverified webhook" in note:
        return "webhook hint + status read"
    if "(webhook" in note:
        return "webhook"
    if "(poll" in note:
        return "poll"
    if "final read" in note:
        return "final read"
    if "reconciliation read" in note:
        return "reconciliation read"
    if "(create" in note:
        return "create answer"
    return "other"


@dataclass
class BatchResult:
    """One batch of payouts."""

    label: str
    runs: list[PayoutRun]
    concurrency: int
    first_post_mono: float
    last_final_mono: float

    @property
    def wall_s(self) -> float:
        """From the first POST to the last payout seen final."""
        return self.last_final_mono - self.first_post_mono

    @property
    def rate(self) -> float:
        """Payouts per second, end to end."""
        return len(self.runs) / self.wall_s if self.wall_s > 0 else float("nan")


@dataclass
class HistoryStats:
    """Temporal history of one finished payout."""

    workflow_id: str
    provider: str
    path: str
    events: int
    bytes: int
    kinds: Counter[str]


# --------------------------------------------------------------------------- load


def build_runs(label: str, count: int, providers: Sequence[str], run_id: str) -> list[PayoutRun]:
    """``count`` payouts spread round-robin over ``providers``."""
    return [
        PayoutRun(reference=f"B{run_id}-{label}-{i:05d}", provider=providers[i % len(providers)])
        for i in range(count)
    ]


def body_for(run: PayoutRun, index: int) -> dict[str, Any]:
    """The gateway request of one payout (``tests.test_payout_flow.payout_body``)."""
    case = CASES[run.provider]
    return payout_body(
        run.reference,
        phone=case.phone(index),
        provider=run.provider,
        country=case.country,
        operator=case.operator,
        amount=AMOUNT_XOF,
        description="benchmark payout",
    )


async def drive_payout(
    http: httpx.AsyncClient,
    run: PayoutRun,
    index: int,
    *,
    gate: asyncio.Semaphore,
    poll_interval: float,
    payout_timeout: float,
    batch_deadline: float,
    client: Client | None = None,
) -> None:
    """POST one payout, then GET it until it is final; holds a slot of ``gate`` throughout.
    With ``client``, waits for the workflow's result through Temporal instead (no polling
    load on the gateway), then GETs the final state once.
    Never raises: a problem is recorded in ``run.error``."""
    async with gate:
        if time.monotonic() > batch_deadline:
            run.error = "not sent: the batch deadline had passed"
            return
        run.posted_wall = datetime.now(UTC)
        run.posted_mono = time.monotonic()
        try:
            answer = await http.post("/v1/payouts", json=body_for(run, index))
        except httpx.HTTPError as exc:
            run.error = f"POST failed: {exc!r}"
            return
        run.post_s = time.monotonic() - run.posted_mono
        run.post_status = answer.status_code
        if answer.status_code != 201:
            run.error = f"POST answered {answer.status_code}: {answer.text[:300]}"
            return
        run.workflow_id = str(answer.json()["workflow_id"])
        deadline = min(run.posted_mono + payout_timeout, batch_deadline)
        if client is not None:
            await _await_result(http, client, run, deadline)
            return
        while True:
            now = time.monotonic()
            if now >= deadline:
                run.error = (
                    f"not final {now - run.posted_mono:.1f}s after its POST "
                    f"(last status {run.status!r})"
                )
                return
            await asyncio.sleep(min(poll_interval, deadline - now))
            run.gets += 1
            try:
                answer = await http.get(f"/v1/payouts/{run.reference}")
            except httpx.HTTPError as exc:
                run.get_errors[0] += 1
                run.error = f"last GET failed: {exc!r}"
                continue
            if answer.status_code != 200:
                run.get_errors[answer.status_code] += 1
                continue
            state: dict[str, Any] = answer.json()
            run.status = str(state["status"])
            if run.status in FINAL_STATUSES:
                run.seen_final_mono = time.monotonic()
                run.final_state = state
                run.error = None
                return


async def _await_result(
    http: httpx.AsyncClient, client: Client, run: PayoutRun, deadline: float
) -> None:
    """Wait for the payout's workflow to close, then read its final state once."""
    assert run.workflow_id is not None
    try:
        await asyncio.wait_for(
            client.get_workflow_handle(run.workflow_id).result(),
            timeout=max(0.0, deadline - time.monotonic()),
        )
    except TimeoutError:
        run.error = f"not closed {time.monotonic() - run.posted_mono:.1f}s after its POST"
        return
    except Exception as exc:  # a failed workflow: recorded, the batch reports it
        run.error = f"workflow failed: {exc!r}"
        return
    run.seen_final_mono = time.monotonic()
    run.gets += 1
    answer = await http.get(f"/v1/payouts/{run.reference}")
    if answer.status_code != 200:
        run.get_errors[answer.status_code] += 1
        run.error = f"final GET answered {answer.status_code}"
        return
    state: dict[str, Any] = answer.json()
    run.status = str(state["status"])
    run.final_state = state


async def run_batch(
    http: httpx.AsyncClient,
    label: str,
    runs: list[PayoutRun],
    *,
    concurrency: int,
    poll_interval: float,
    payout_timeout: float,
    batch_timeout: float,
    client: Client | None = None,
) -> BatchResult:
    """Drive ``runs`` with at most ``concurrency`` in flight; raise ``BenchError`` unless
    every payout ended ``succeeded`` in time."""
    gate = asyncio.Semaphore(concurrency)
    start = time.monotonic()
    deadline = start + batch_timeout
    tasks = [
        drive_payout(
            http,
            run,
            i,
            gate=gate,
            poll_interval=poll_interval,
            payout_timeout=payout_timeout,
            batch_deadline=deadline,
            client=client,
        )
        for i, run in enumerate(runs)
    ]
    try:
        # Each task stops by the batch deadline; the margin covers one HTTP timeout.
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=batch_timeout + 60)
    except TimeoutError:
        raise BenchError(
            f"{label}: the batch did not end within {batch_timeout + 60:.0f}s"
        ) from None
    problems = [run for run in runs if run.error or run.status != "succeeded"]
    if problems:
        lines = [
            f"  {run.reference} ({run.provider}): {run.error or f'ended {run.status}'}"
            for run in problems[:20]
        ]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BenchError(
            f"{label}: {len(problems)} of {len(runs)} payouts did not succeed in time "
            f"(per-payout deadline {payout_timeout:g}s, batch deadline {batch_timeout:g}s):\n"
            + "\n".join(lines)
            + more
        )
    first = min(run.posted_mono for run in runs)
    last = max(run.seen_final_mono or 0.0 for run in runs)
    return BatchResult(label, runs, concurrency, first, last)


# --------------------------------------------------------------------------- gateway and ledger

#: What the gateway logs for each webhook (``momoflow/gateway/webhooks.py``), by outcome.
WEBHOOK_LOG_OUTCOMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("signalled", re.compile(r"momoflow\.gateway\.webhooks: (\w+) webhook \S+ -> ")),
    (
        "ignored: no workflow found",
        re.compile(r"ignored (\w+) webhook \S+: not a momoflow transaction"),
    ),
    (
        "kept in the inbox",
        re.compile(r"(\w+) webhook \S+ for .+ kept in \S+ until its transaction can be found"),
    ),
    ("ignored: workflow closed", re.compile(r"ignored (\w+) webhook for \S+: no open workflow")),
    (
        "refused or not recorded",
        re.compile(r"(?:refused|could not record|could not look up the) (\w+) webhook"),
    ),
)
#: Webhook log lines that match none of the outcomes above (a changed log format).
OTHER_WEBHOOK_LINES = "other log lines"
_WEBHOOK_LOGGER = "momoflow.gateway.webhooks:"
_PROVIDER_WORD = re.compile(r"\b(" + "|".join(ALL_PROVIDERS) + r")\b")


def webhook_outcomes(log_text: str) -> dict[str, Counter[str]]:
    """Webhooks the gateway handled, per provider and outcome, from its log."""
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for line in log_text.splitlines():
        if _WEBHOOK_LOGGER not in line:
            continue
        for outcome, pattern in WEBHOOK_LOG_OUTCOMES:
            found = pattern.search(line)
            if found:
                outcomes[found.group(1)][outcome] += 1
                break
        else:
            named = _PROVIDER_WORD.search(line)
            outcomes[named.group(1) if named else "unknown"][OTHER_WEBHOOK_LINES] += 1
    return dict(outcomes)


async def ledger_executions(
    http: httpx.AsyncClient, stack: Stack, runs: Sequence[PayoutRun]
) -> Counter[int]:
    """How many times each payout's money moved, from the sandboxes' ledgers (the
    invariant is exactly once): a count of payouts per number of executions."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        if run.workflow_id:
            wanted[run.provider].add(run.workflow_id)
    executions: Counter[int] = Counter()
    for provider, ids in wanted.items():
        answer = await http.get(f"{stack.sandbox_urls[provider]}/_sandbox/ledger")
        answer.raise_for_status()
        seen = {
            str(t["externalReference"]): int(t["executions"])
            for t in answer.json()["transfers"]
            if str(t.get("externalReference")) in ids
        }
        executions.update(seen.get(workflow_id, 0) for workflow_id in ids)
    return executions


# --------------------------------------------------------------------------- histories


async def fetch_histories(
    client: Client, runs: Iterable[PayoutRun], *, timeout: float = 30.0
) -> list[HistoryStats]:
    """History event counts of finished payouts (8 fetches at a time, each bounded)."""
    gate = asyncio.Semaphore(8)

    async def one(run: PayoutRun) -> HistoryStats:
        assert run.workflow_id is not None
        async with gate:
            history = await asyncio.wait_for(
                client.get_workflow_handle(run.workflow_id).fetch_history(), timeout=timeout
            )
        events = list(history.events)
        return HistoryStats(
            workflow_id=run.workflow_id,
            provider=run.provider,
            path=run.path,
            events=len(events),
            bytes=sum(event.ByteSize() for event in events),
            kinds=Counter(event_kind(event.event_type) for event in events),
        )

    return list(await asyncio.gather(*(one(run) for run in runs if run.workflow_id)))


# --------------------------------------------------------------------------- environment


def poll_schedules(stack: Stack, providers: Sequence[str]) -> dict[str, list[int]]:
    """The workflow's status-read schedule per provider, as the stack configured it."""
    base = list(json.loads(stack.env["MOMOFLOW_PAYOUT_TIMINGS"])["poll_schedule_s"])
    mobilepay = stack.env.get("MOMOFLOW_MOBILEPAY__POLL_SCHEDULE_S")
    return {
        p: (list(json.loads(mobilepay)) if p == "mobilepay" and mobilepay else base)
        for p in providers
    }


# --------------------------------------------------------------------------- report


@dataclass
class Measurements:
    """What ``measure`` collected."""

    main: BatchResult
    cpu: dict[str, float]
    histories: list[HistoryStats]
    webhooks: dict[str, Counter[str]]
    ledger: Counter[int]
    polling: BatchResult | None = None
    polling_histories: list[HistoryStats] = field(default_factory=list)


@dataclass
class Report:
    """Everything the summary and the document are made of."""

    command: str
    started: datetime
    total_s: float
    payouts: int
    concurrency: int
    providers: list[str]
    poll_interval: float
    payout_timeout: float
    machine: dict[str, str]
    versions: dict[str, str]
    schedules: dict[str, list[int]]
    main: BatchResult
    cpu: dict[str, float]
    histories: list[HistoryStats]
    webhooks: dict[str, Counter[str]]
    ledger: Counter[int]
    polling: BatchResult | None
    polling_histories: list[HistoryStats]


def _events_cell(stats: Sequence[HistoryStats]) -> str:
    counts = [s.events for s in stats]
    if not counts:
        return "n/a"
    return f"{mean(counts):.1f} / {min(counts)} / {max(counts)}"


def _latency_cells(runs: Sequence[PayoutRun]) -> list[str]:
    seen = [r.latency_s for r in runs if r.latency_s is not None]
    own = [r.workflow_latency_s for r in runs if r.workflow_latency_s is not None]
    return [
        " / ".join(ms(percentile(seen, q)) for q in (50, 95, 99)),
        " / ".join(ms(percentile(own, q)) for q in (50, 95, 99)),
    ]


def _paths(runs: Sequence[PayoutRun]) -> str:
    counts = Counter(run.path for run in runs)
    return ", ".join(f"{name} {n}" for name, n in counts.most_common())


def render_section(rep: Report) -> str:
    """The markdown of this benchmark's section of ``docs/benchmarks.md``."""
    main = rep.main
    runs = main.runs
    n = len(runs)
    posts = [r.post_s for r in runs if r.post_s is not None]
    gets = [r.gets for r in runs]
    get_errors: Counter[int] = Counter()
    for r in runs:
        get_errors.update(r.get_errors)
    cpu = rep.cpu
    wall = main.wall_s
    stack_names = [k for k in cpu if k not in NON_STACK_KEYS]
    interval = cpu["interval"]
    stack_cpu = sum(cpu[k] for k in stack_names)
    server = cpu.get("temporal", float("nan"))
    hist_events = [h.events for h in rep.histories]
    mean_events = mean(hist_events)

    out: list[str] = [
        "## Payouts: throughput and Temporal cost per payout",
        "",
        f"Generated by `bench/payouts.py` on {rep.started:%Y-%m-%d %H:%M} UTC "
        f"(whole run {rep.total_s:.0f} s, stack start and stop included). Regenerate with:",
        "",
        "```",
        rep.command,
        "```",
        "",
        "### Setup",
        "",
        f"- **Machine:** {rep.machine['cores']}, {rep.machine['cpu']}, "
        f"{rep.machine['ram']} RAM, Linux {rep.machine['kernel']}.",
        "- **Versions:** "
        + ", ".join(
            f"{k} {v}" if k != "temporal CLI" else f"`{v}`" for k, v in rep.versions.items()
        )
        + ".",
        "- **Stack:** `tests.stack.start_stack`: the Temporal dev server **in memory** (no "
        "`--db-filename`), the three sandboxes, the gateway, and one worker "
        "(`momoflow worker`, task-queue prefix `momoflow-test`), each its own process on "
        "127.0.0.1. Sandboxes settle instantly (`settle_delay=0`), provider rate limits off; "
        "traces are not exported (no OTLP collector configured).",
        f"- **Load:** {WARMUP_PAYOUTS} warm-up payouts, then {rep.payouts} payouts, round-robin "
        f"over {', '.join(rep.providers)}, {AMOUNT_XOF:,} XOF each, test numbers that succeed. "
        f"Closed loop with `httpx.AsyncClient`: at most **{rep.concurrency} payouts in flight**; "
        f"each is `POST /v1/payouts`, then `GET /v1/payouts/{{ref}}` every "
        f"{rep.poll_interval:g} s until final (deadline {rep.payout_timeout:.0f} s per payout).",
        "- **Workflow poll schedule** (status reads while waiting for a webhook, last value "
        "repeats): "
        + ", ".join(f"{p} {rep.schedules[p]} s" for p in rep.providers)
        + " (`MOMOFLOW_PAYOUT_TIMINGS` of `tests/stack.py`; MOBILE-PAY from "
        "`MOMOFLOW_MOBILEPAY__POLL_SCHEDULE_S`).",
        "",
        "### Results",
        "",
    ]
    seen_lat, own_lat = _latency_cells(runs)
    seen_max = max(r.latency_s or 0.0 for r in runs)
    out += table(
        ["metric", "value"],
        [
            ["payouts / in flight", f"{n} / {main.concurrency}"],
            ["wall time, first POST to last seen final", f"{wall:.1f} s"],
            ["**payouts/s end to end**", f"**{main.rate:.1f}**"],
            ["latency POST → seen final, p50 / p95 / p99 ms", f"{seen_lat} (max {ms(seen_max)})"],
            ["latency POST → workflow `completed_at`, p50 / p95 / p99 ms", own_lat],
            [
                "gateway `POST /v1/payouts` latency, p50 / p99 ms",
                f"{ms(percentile(posts, 50))} / {ms(percentile(posts, 99))}",
            ],
            [
                "GETs per payout (mean); non-200 answers",
                f"{mean(gets):.1f}; "
                + (
                    ", ".join(f"{k or 'error'}×{v}" for k, v in sorted(get_errors.items()))
                    or "none"
                ),
            ],
            ["history events per payout, mean / min / max", _events_cell(rep.histories)],
            [
                "history size per payout, mean",
                f"{mean([h.bytes for h in rep.histories]) / 1024:.1f} KiB",
            ],
            ["completion paths", _paths(runs)],
            [
                "sandbox ledgers: transfers executed exactly once",
                f"{rep.ledger.get(1, 0)} of {n}",
            ],
        ],
    )
    out += [
        "",
        "CPU seconds used during the measured run (utime + stime of each process group from "
        "`/proc/<pid>/stat`; machine lines from `/proc/stat`):",
        "",
    ]
    cpu_rows = []
    for name in [*stack_names, "bench client", "other", "interrupts", "machine", "steal"]:
        label = {
            "temporal": "Temporal dev server",
            "other": "other processes (not this benchmark)",
            "interrupts": "kernel irq + softirq",
            "machine": "**whole machine, busy**",
            "steal": "steal (hypervisor; not available to this VM)",
        }.get(name, name)
        cpu_rows.append(
            [
                label,
                f"{cpu[name]:.1f}",
                f"{cpu[name] / n * 1000:.1f}",
                f"{cpu[name] / interval:.2f}",
            ]
        )
    out += table(["process", "CPU-s", "ms per payout", "cores busy (avg)"], cpu_rows)

    out += ["", "### Per provider", ""]
    rows = []
    for provider in rep.providers:
        pruns = [r for r in runs if r.provider == provider]
        pstats = [h for h in rep.histories if h.provider == provider]
        seen, own = _latency_cells(pruns)
        rows.append(
            [
                provider,
                str(len(pruns)),
                seen,
                own,
                _events_cell(pstats),
                f"{mean([h.bytes for h in pstats]) / 1024:.1f}",
                _paths(pruns),
            ]
        )
    out += table(
        [
            "provider",
            "payouts",
            "seen final p50 / p95 / p99 ms",
            "`completed_at` p50 / p95 / p99 ms",
            "events mean / min / max",
            "KiB",
            "completion path",
        ],
        rows,
    )

    out += [
        "",
        "Webhooks handled by the gateway during the measured run (from its log):",
        "",
    ]
    outcomes = [name for name, _ in WEBHOOK_LOG_OUTCOMES]
    if any(OTHER_WEBHOOK_LINES in c for c in rep.webhooks.values()):
        outcomes.append(OTHER_WEBHOOK_LINES)
    out += table(
        ["provider", *outcomes],
        [
            [p, *(str(rep.webhooks.get(p, Counter()).get(o, 0)) for o in outcomes)]
            for p in rep.providers
        ],
    )

    def count(outcome: str) -> dict[str, int]:
        return {p: rep.webhooks.get(p, Counter()).get(outcome, 0) for p in rep.providers}

    ignored, deferred = (
        count("ignored: no workflow found"),
        count("kept in the inbox"),
    )
    unmatched = {p: ignored[p] + deferred[p] for p in rep.providers}
    if any(unmatched.values()):
        settled = {
            p: Counter(r.path for r in runs if r.provider == p).most_common(1)[0]
            for p in rep.providers
            if unmatched[p]
        }
        out += [
            "",
            "**Webhooks the gateway could not match to a workflow:** "
            + "; ".join(
                f"{p}: "
                + ", ".join(
                    part
                    for part in (
                        f"{ignored[p]} ignored with a 2xx" if ignored[p] else "",
                        f"{deferred[p]} kept in the inbox until found" if deferred[p] else "",
                    )
                    if part
                )
                + f" (most common completion path of the run's {p} payouts: "
                f"{settled[p][0]}, {settled[p][1]} of {sum(1 for r in runs if r.provider == p)})"
                for p in rep.providers
                if unmatched[p]
            )
            + ". Likely cause: such a webhook (MOBILE-PAY) names only the provider's "
            "transaction id, which the gateway looks up through the `ProviderTransactionId` "
            "search attribute; the workflow publishes it only after the create call returns, "
            "and with instant settlement the webhook can arrive before that (or before "
            "visibility shows it). Those payouts were then settled by the workflow's own "
            "status read; with the production MOBILE-PAY schedule (first read after 60 s) "
            "that read comes a minute later unless a retried webhook arrives first.",
        ]

    out += [
        "",
        "### History events by completion path",
        "",
        "The path is read from the note of the payout's final timeline entry: `webhook` (a "
        "verified webhook settled it), `webhook hint + status read` (MOBILE-PAY webhooks are "
        "unsigned: the workflow reads the status at once and the read settles it), `poll` (a "
        "scheduled status read settled it).",
        "",
    ]
    rows = []
    groups: dict[tuple[str, str], list[HistoryStats]] = defaultdict(list)
    for h in rep.histories:
        groups[(h.provider, h.path)].append(h)
    for h in rep.polling_histories:
        groups[(h.provider + " (webhooks dropped)", h.path)].append(h)
    for (provider, path), stats in sorted(groups.items()):
        rows.append([provider, path, str(len(stats)), _events_cell(stats)])
    out += table(["provider", "path", "payouts", "events mean / min / max"], rows)

    out += [
        "",
        "Mean events per payout by kind (workflow task = scheduled + started + completed):",
        "",
    ]
    kinds = sorted({k for h in [*rep.histories, *rep.polling_histories] for k in h.kinds})
    kind_groups: list[tuple[str, list[HistoryStats]]] = [
        (p, [h for h in rep.histories if h.provider == p]) for p in rep.providers
    ]
    if rep.polling_histories:
        kind_groups.append(("caurisflux, webhooks dropped", rep.polling_histories))
    rows = []
    for name, stats in kind_groups:
        if not stats:
            continue
        rows.append(
            [name, *(f"{mean([h.kinds.get(k, 0) for h in stats]):.1f}" for k in kinds)]
            + [f"{mean([h.events for h in stats]):.1f}"]
        )
    out += table(["payouts", *kinds, "total"], rows)

    if rep.polling is not None:
        pol = rep.polling
        seen, own = _latency_cells(pol.runs)
        out += [
            "",
            "### Polling path",
            "",
            f"{len(pol.runs)} CaurisFlux payouts with the sandbox fault `drop_webhooks` "
            f"(every webhook lost), at most {pol.concurrency} in flight, after the main run; "
            f"faults cleared afterwards. The workflow settles them by reading the status on its "
            f"schedule {rep.schedules.get('caurisflux', rep.schedules[rep.providers[0]])} s.",
            "",
        ]
        out += table(
            ["metric", "value"],
            [
                ["completion paths", _paths(pol.runs)],
                [
                    "history events per payout, mean / min / max",
                    _events_cell(rep.polling_histories),
                ],
                ["latency POST → seen final, p50 / p95 / p99 ms", seen],
                ["latency POST → `completed_at`, p50 / p95 / p99 ms", own],
                ["payouts/s (not a throughput test)", f"{pol.rate:.1f}"],
            ],
        )

    # "What bounds it", from the numbers above only.
    cores = len(os.sched_getaffinity(0))
    server_cores = server / interval
    all_cores = cpu["machine"] / interval
    stack_ms = stack_cpu / n * 1000
    per_event = server / n / mean_events * 1000 if mean_events == mean_events else float("nan")
    saturated = (cpu["machine"] + cpu["steal"]) / interval >= 0.85 * cores
    own_cpu = stack_cpu + cpu["bench client"]
    own_cores = own_cpu / interval
    own_ms = own_cpu / n * 1000
    other_cores = cpu["other"] / interval
    top = max(stack_names, key=lambda k: cpu[k])
    if other_cores >= OTHER_CORES_WARNING:
        verdict = (
            f"**This run was not alone on the machine:** processes outside the benchmark used "
            f"{other_cores:.2f} cores on average, leaving {own_cores:.2f} cores to the stack "
            f"and this client{' on a saturated machine' if saturated else ''}. Treat the rate "
            f"and latencies as lower bounds of what the stack does on a quiet machine; the CPU "
            f"per payout above is not affected by the sharing and stays comparable."
        )
    elif saturated:
        verdict = (
            f"The {cores} cores were saturated, by the benchmark itself: the stack and this "
            f"client used {own_cores:.2f} cores, {own_ms:.0f} ms of CPU per payout, so the "
            f"rate is bounded by CPU; {cores} cores / {own_ms:.0f} ms ≈ "
            f"{cores * 1000 / own_ms:.1f} payouts/s is the ceiling that this CPU cost implies "
            f"(measured: {main.rate:.1f}). The dev server took {server_cores:.2f} cores and "
            f"the Python processes (worker, gateway, sandboxes, client) the rest."
        )
    else:
        verdict = (
            f"The CPU was not saturated ({all_cores:.2f} of {cores} cores busy): the rate "
            f"({main.rate:.1f} payouts/s) was limited by something other than CPU, e.g. the "
            f"{rep.concurrency} payouts in flight and each payout's latency."
        )
    out += [
        "",
        "### What bounds it",
        "",
        f"During the measured run the whole machine was busy {all_cores:.2f} of its {cores} "
        f"cores on average ({cpu['other']:.1f} CPU-s of that in processes outside this "
        f"benchmark; the hypervisor also stole {cpu['steal'] / interval:.2f} cores' worth). "
        f"The Temporal dev server alone used {server_cores:.2f} cores: "
        f"{server / n * 1000:.0f} ms of CPU per payout, about {per_event:.1f} ms per history "
        f"event at {mean_events:.1f} events per payout. All stack processes together used "
        f"{stack_ms:.0f} ms of CPU per payout; the largest share was the "
        f"{'Temporal dev server' if top == 'temporal' else top} "
        f"({cpu[top] / stack_cpu * 100:.0f} %).",
        "",
        verdict,
        "",
        f"For comparison, `/work/shared/temporal-local.md` measured, on the same kind of "
        f"machine, 25–40 small workflows/s with the dev server spending 27–41 ms of CPU per "
        f"11-event workflow in memory (about 2.5–3.7 ms per event); here it spent "
        f"{per_event:.1f} ms per event, "
        f"{'within' if 2.5 <= per_event <= 3.7 else 'below' if per_event < 2.5 else 'above'} "
        f"that range. A payout here is a "
        f"{mean_events:.0f}-event workflow behind an HTTP gateway that also answers "
        f"{mean(gets):.1f} status GETs per payout (each a describe plus a query or a result "
        f"fetch against Temporal), and the whole chain shares the same {cores} cores.",
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.payouts",
        description="Payout throughput, latency and Temporal cost on a private local stack.",
    )
    parser.add_argument("--payouts", type=int, default=300, help="measured payouts (300)")
    parser.add_argument("--concurrency", type=int, default=30, help="payouts in flight (30)")
    parser.add_argument(
        "--providers",
        default=",".join(ALL_PROVIDERS),
        help="comma-separated, round-robin (caurisflux,novasend,mobilepay)",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.5, help="seconds between GETs of a payout (0.5)"
    )
    parser.add_argument(
        "--payout-timeout", type=float, default=120.0, help="per-payout deadline, s (120)"
    )
    parser.add_argument(
        "--batch-timeout", type=float, default=900.0, help="deadline of each batch, s (900)"
    )
    parser.add_argument(
        "--polling-payouts",
        type=int,
        default=POLL_PATH_PAYOUTS,
        help=f"CaurisFlux payouts with webhooks dropped ({POLL_PATH_PAYOUTS}; 0 skips)",
    )
    parser.add_argument("--doc", type=Path, default=DOC_PATH, help="document to update")
    parser.add_argument("--no-doc", action="store_true", help="print only, write no document")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs directory")
    args = parser.parse_args(argv)
    args.provider_list = [p.strip() for p in args.providers.split(",") if p.strip()]
    unknown = [p for p in args.provider_list if p not in CASES]
    if not args.provider_list or unknown:
        parser.error(f"--providers: unknown {unknown}; choose from {', '.join(ALL_PROVIDERS)}")
    if args.payouts < 1 or args.concurrency < 1 or args.poll_interval <= 0:
        parser.error("--payouts and --concurrency must be >= 1, --poll-interval > 0")
    return args


async def measure(stack: Stack, args: argparse.Namespace) -> Measurements:
    """Warm-up, measured run, histories, then the polling batch."""
    run_id = uuid.uuid4().hex[:6]
    providers: list[str] = args.provider_list
    limits = httpx.Limits(max_connections=args.concurrency + 10)
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    timing = {
        "poll_interval": args.poll_interval,
        "payout_timeout": args.payout_timeout,
        "batch_timeout": args.batch_timeout,
    }
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=headers, timeout=30.0, limits=limits
    ) as http:
        print(f"warm-up: {WARMUP_PAYOUTS} payouts ...", flush=True)
        await run_batch(
            http,
            "warm-up",
            build_runs("w", WARMUP_PAYOUTS, providers, run_id),
            concurrency=min(args.concurrency, WARMUP_PAYOUTS),
            **timing,
        )
        print(f"measured run: {args.payouts} payouts, {args.concurrency} in flight ...", flush=True)
        gateway_log = stack.processes["gateway"].log_path
        log_offset = gateway_log.stat().st_size
        before = cpu_snapshot(stack)
        main = await run_batch(
            http,
            "measured run",
            build_runs("m", args.payouts, providers, run_id),
            concurrency=args.concurrency,
            **timing,
        )
        cpu = cpu_delta(before, cpu_snapshot(stack))
        print(f"  {main.rate:.1f} payouts/s over {main.wall_s:.1f} s", flush=True)

        client = await asyncio.wait_for(
            connect_client(TemporalSettings(address=stack.temporal_address)), timeout=30
        )
        print(f"fetching {len(main.runs)} histories ...", flush=True)
        histories = await fetch_histories(client, main.runs)
        found = Measurements(
            main=main,
            cpu=cpu,
            histories=histories,
            webhooks=webhook_outcomes(read_from(gateway_log, log_offset)),
            ledger=await ledger_executions(http, stack, main.runs),
        )
        if set(found.ledger) != {1}:
            raise BenchError(f"sandbox ledgers: payouts per number of executions {found.ledger}")

        if args.polling_payouts > 0:
            print(f"polling path: {args.polling_payouts} CaurisFlux payouts, webhooks dropped ...")
            await asyncio.to_thread(stack.fault, "caurisflux", kind="drop_webhooks", count=1000)
            try:
                found.polling = await run_batch(
                    http,
                    "polling batch",
                    build_runs("p", args.polling_payouts, ["caurisflux"], run_id),
                    concurrency=min(args.concurrency, args.polling_payouts),
                    **timing,
                )
            finally:
                await asyncio.to_thread(stack.clear_faults)
            found.polling_histories = await fetch_histories(client, found.polling.runs)
    return found


def main(argv: Sequence[str]) -> int:
    """Run the benchmark; returns the exit code."""
    args = parse_args(argv)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="momoflow-bench-"))
    stack: Stack | None = None
    ok = False
    try:
        print(f"starting the stack in {root} ...", flush=True)
        stack = start_bench_stack(root)
        found = asyncio.run(measure(stack, args))
        schedules = poll_schedules(stack, args.provider_list)
        ok = True
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop_all()
        if ok and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {root / 'logs'}", file=sys.stderr)

    report = Report(
        command=command_line("bench.payouts", argv),
        started=started,
        total_s=time.monotonic() - t0,
        payouts=args.payouts,
        concurrency=args.concurrency,
        providers=args.provider_list,
        poll_interval=args.poll_interval,
        payout_timeout=args.payout_timeout,
        machine=machine_info(),
        versions=versions(),
        schedules=schedules,
        main=found.main,
        cpu=found.cpu,
        histories=found.histories,
        webhooks=found.webhooks,
        ledger=found.ledger,
        polling=found.polling,
        polling_histories=found.polling_histories,
    )
    section = render_section(report)
    print("\n" + section)
    other_cores = found.cpu["other"] / found.cpu["interval"]
    if other_cores >= OTHER_CORES_WARNING:
        print(
            f"warning: other processes used {other_cores:.2f} cores during the measured run; "
            "rerun on a quiet machine for clean numbers",
            file=sys.stderr,
        )
    if not args.no_doc:
        write_section(args.doc, SECTION, section)
        print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    run_script(main)
