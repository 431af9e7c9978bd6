"""``momoflow campaign``: bulk supplier payouts for finance teams, over the gateway's API.

::

    momoflow campaign submit FILE --reference R [--name N] [--auto-approve] [--max-in-flight N]
    momoflow campaign status R [--json]          progress, pre-flight verdict
    momoflow campaign problems R [--json]        every problem of every invalid line
    momoflow campaign approve R --by NAME [--override-blocking]
    momoflow campaign pause R --by NAME [--provider P]
    momoflow campaign resume R --by NAME [--provider P]
    momoflow campaign cancel R --by NAME --reason TEXT
    momoflow campaign retry R --by NAME          run the step that blocked the campaign again
    momoflow campaign report R [-o FILE]         the CSV report, one row per line of the file
    momoflow campaign watch R                    live progress until the campaign is final

Every command talks HTTP to a gateway (``--gateway``, default ``MOMOFLOW_PUBLIC_URL``) with a
business API key (``--api-key``, default ``MOMOFLOW_API_KEY``), through
:class:`momoflow.client.SyncMomoflowClient`. The CLI keeps no state:
``watch`` only reads the campaign's progress, so stopping it and starting it again, on this
machine or another, changes nothing for the campaign.

Exit codes: 0 done; 1 ``watch`` saw the campaign end cancelled or rejected; 2 bad arguments;
3 API key refused (401); 4 no such campaign (404); 5 refused in the campaign's current state
or reference already used with another file (409); 6 invalid request or file (413, 415,
422); 7 gateway unreachable or unavailable; 8 ``watch --timeout`` elapsed; 9 ``watch`` saw
the campaign ``blocked`` (it waits for someone to fix the cause and ``retry``); 130/143
``watch`` interrupted (Ctrl-C/SIGTERM).
"""

from __future__ import annotations

import csv
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import typer
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from momoflow.campaigns.models import (
    ApproveRequest,
    CampaignPhase,
    CampaignProblems,
    CampaignProgress,
    CancelRequest,
    PauseRequest,
    Preflight,
    ProviderTotals,
    RetryRequest,
)
from momoflow.campaigns.parsing import detect_format
from momoflow.client import (
    CampaignSubmission,
    MomoflowError,
    NotFound,
    Problem,
    SyncMomoflowClient,
    ValidationFailed,
)
from momoflow.ids import REFERENCE_PATTERN, is_valid_reference
from momoflow.models import ProviderName
from momoflow.money import format_amount
from momoflow.settings import Settings

EXIT_OK = 0
EXIT_NOT_COMPLETED = 1
EXIT_USAGE = 2
EXIT_UNAUTHENTICATED = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_INVALID = 6
EXIT_UNAVAILABLE = 7
EXIT_TIMEOUT = 8
EXIT_BLOCKED = 9
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

BAR_WIDTH = 40
#: Seconds each request may take (the upload and the report get longer, from the client).
REQUEST_TIMEOUT_S = 30.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Without a terminal, ``watch`` prints a line at least this often, even with no change.
HEARTBEAT_S = 30.0
#: Statuses shown first, in this order; any other status follows alphabetically.
STATUS_ORDER = ("succeeded", "failed", "expired", "cancelled", "reconciling", "skipped")
STATUS_STYLES = {
    "succeeded": "green",
    "failed": "red",
    "expired": "red",
    "cancelled": "red",
    "reconciling": "yellow",
    "skipped": "magenta",
}
PHASE_STYLES = {
    CampaignPhase.PREFLIGHT: "cyan",
    CampaignPhase.AWAITING_APPROVAL: "bold yellow",
    CampaignPhase.RUNNING: "bold blue",
    CampaignPhase.PAUSED: "bold yellow",
    CampaignPhase.DRAINING: "blue",
    CampaignPhase.COMPLETED: "bold green",
    CampaignPhase.CANCELLED: "bold red",
    CampaignPhase.REJECTED: "bold red",
    CampaignPhase.BLOCKED: "bold red",
}

app = typer.Typer(
    help="Bulk supplier payout campaigns: submit a file, review, approve, watch, report.",
    short_help="Bulk payout campaigns: submit, approve, watch, report.",
    no_args_is_help=True,
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


class _GatewaySettings(BaseSettings):
    """Only what the CLI needs from the settings, so that it runs on a finance laptop
    where none of the server's secrets are set."""

    model_config = SettingsConfigDict(
        env_prefix="MOMOFLOW_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    public_url: str = Settings.model_fields["public_url"].default


# ---------------------------------------------------------------------- options

GatewayOption = Annotated[
    str | None,
    typer.Option(
        "--gateway",
        help="The gateway's base URL (default: MOMOFLOW_PUBLIC_URL, or http://127.0.0.1:8000).",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="MOMOFLOW_API_KEY",
        help="Your business API key (prefer the MOMOFLOW_API_KEY variable: command lines "
        "are visible to other users of the machine).",
        show_default=False,
    ),
]
ReferenceArg = Annotated[str, typer.Argument(help="The campaign's reference.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]


def _api(gateway: str | None, api_key: str | None) -> SyncMomoflowClient:
    if not api_key or not api_key.strip():
        err.print("error: no API key: set MOMOFLOW_API_KEY or pass --api-key")
        raise typer.Exit(EXIT_USAGE)
    url = gateway or _GatewaySettings().public_url
    if not url.startswith(("http://", "https://")):
        err.print(f"error: --gateway must be an http:// or https:// URL, not {escape(repr(url))}")
        raise typer.Exit(EXIT_USAGE)
    host = urlsplit(url).hostname or ""
    if url.startswith("http://") and host not in LOOPBACK_HOSTS:
        err.print(
            f"[yellow]warning:[/yellow] {escape(host)} is reached over plain http: the API key "
            "crosses the network unencrypted; use https"
        )
    # One attempt: a person runs these commands, and watch retries by itself. The gateway
    # reads the key with surrounding spaces dropped; the client wants it that way.
    return SyncMomoflowClient(url, api_key.strip(), timeout=REQUEST_TIMEOUT_S, max_attempts=1)


def _call(
    api: SyncMomoflowClient, reference: str, action: Callable[[], R], *, submitting: bool = False
) -> R:
    """``action()``; a refusal or a gateway that cannot be reached ends the command."""
    if not is_valid_reference(reference):
        _fail(api, _invalid_reference(reference, submitting=submitting), reference)
    try:
        return action()
    except MomoflowError as exc:
        _fail(api, exc, reference)


def _invalid_reference(reference: str, *, submitting: bool) -> MomoflowError:
    """The gateway's answer to a reference that cannot be one, given without asking it
    (the client refuses to put such a reference in a URL)."""
    if submitting:
        problem = Problem("reference", "pattern", f"must match {REFERENCE_PATTERN}")
        return ValidationFailed("1 problem in the request; nothing was started", problems=[problem])
    return NotFound(f"no campaign with reference {reference!r}", status=404, code="not_found")


def _unreachable(api: SyncMomoflowClient, exc: MomoflowError) -> str | None:
    """Why the gateway gave no answer (the HTTP library's words), or None when it
    answered."""
    if exc.status is not None:
        return None
    cause = exc.__cause__
    reason = (str(cause) or type(cause).__name__) if cause is not None else exc.message
    return f"cannot reach the gateway at {api.base_url}: {reason}"


def _transient(exc: MomoflowError) -> bool:
    """True when asking again later may succeed (the gateway or Temporal is busy)."""
    return exc.status is None or exc.status >= 500 or exc.status == 429


def _exit_code(status: int) -> int:
    if status == 401:
        return EXIT_UNAUTHENTICATED
    if status == 404:
        return EXIT_NOT_FOUND
    if status == 409:
        return EXIT_CONFLICT
    if status in (413, 415, 422):
        return EXIT_INVALID
    return EXIT_UNAVAILABLE


def _refusal_message(exc: MomoflowError) -> str:
    if exc.code == "unexpected_answer":
        return f"{exc.message}; use the CLI of the gateway's release"
    response = exc.response
    if response is not None and "json" not in response.headers.get("content-type", ""):
        # Not the gateway's JSON (a proxy's error page): its own words.
        return response.text.strip()[:300] or response.reason_phrase
    return exc.message


def _fail(api: SyncMomoflowClient, exc: MomoflowError, reference: str | None = None) -> NoReturn:
    unreachable = _unreachable(api, exc)
    if unreachable is not None:
        err.print(f"[red]error:[/red] {escape(unreachable)}")
        raise typer.Exit(EXIT_UNAVAILABLE)
    assert exc.status is not None
    code = exc.code or "http_error"
    err.print(f"[red]error ({exc.status} {escape(code)}):[/red] {escape(_refusal_message(exc))}")
    if exc.status == 401:
        err.print("The gateway does not know this API key: check --api-key or MOMOFLOW_API_KEY.")
    elif exc.status == 404 and reference is not None:
        err.print(
            f"No campaign {escape(repr(reference))} for this API key's merchant: check the "
            "reference and the key (campaigns are only visible to the merchant that submitted "
            "them)."
        )
    problems = exc.problems if isinstance(exc, ValidationFailed) else []
    if problems:
        table = Table("field", "rule", "message", title="problems", title_justify="left")
        for problem in problems:
            table.add_row(escape(problem.field), escape(problem.rule), escape(problem.message))
        err.print(table)
    raise typer.Exit(_exit_code(exc.status))


# ---------------------------------------------------------------------- rendering


def _currencies(progress: CampaignProgress) -> list[str]:
    found = set(progress.paid)
    if progress.preflight is not None:
        found |= {t.currency.value for t in progress.preflight.totals}
    return sorted(found)


def _money(progress: CampaignProgress, amount: int) -> str:
    # Per-status amounts carry no currency: only a one-currency campaign can name it.
    currencies = _currencies(progress)
    if len(currencies) == 1:
        return format_amount(amount, currencies[0])
    return f"{amount:,} (several currencies)"


def _statuses(progress: CampaignProgress) -> list[str]:
    known = [s for s in STATUS_ORDER if s in progress.by_status]
    return known + sorted(set(progress.by_status) - set(known))


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else ""


def _phase(progress: CampaignProgress) -> Text:
    return Text(progress.phase.value, style=PHASE_STYLES.get(progress.phase, ""))


def _percent(progress: CampaignProgress) -> str:
    if not progress.valid_lines:
        return "no payable line"
    share = 100 * progress.settled_lines // progress.valid_lines
    return f"{progress.settled_lines:,}/{progress.valid_lines:,} lines settled ({share}%)"


def progress_line(progress: CampaignProgress) -> str:
    """One plain line of progress (``watch`` when the output is not a terminal)."""
    parts = [f"campaign {progress.reference}: {progress.phase.value}", _percent(progress)]
    if progress.in_flight:
        parts.append(f"in flight {progress.in_flight:,}")
    parts += [f"{s} {progress.by_status[s].lines:,}" for s in _statuses(progress)]
    if progress.rate_per_s:
        parts.append(f"{progress.rate_per_s:g} lines/s")
    if progress.eta_s is not None:
        parts.append(f"ETA {_duration(progress.eta_s)}")
    parts += [f"{p} paused: {why}" for p, why in sorted(progress.paused_providers.items())]
    if progress.phase is CampaignPhase.BLOCKED:
        parts.append(progress.phase_reason)
    return " | ".join(parts)


def _bar(progress: CampaignProgress, *, terminal: bool) -> RenderableType:
    total = max(progress.valid_lines, 1)
    done = progress.settled_lines if progress.valid_lines else 0
    if terminal:
        return ProgressBar(
            total=total,
            completed=done,
            width=BAR_WIDTH,
            complete_style=PHASE_STYLES.get(progress.phase, "blue"),
            finished_style="green",
        )
    # Logs and files get characters that survive any encoding and no colour.
    filled = BAR_WIDTH * done // total
    return Text("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")


def render_progress(
    progress: CampaignProgress, *, note: str = "", verdict: bool = True, terminal: bool = True
) -> RenderableType:
    """The campaign's progress: phase, bar, counts and amounts by status, rate, ETA (and,
    while it awaits approval, pre-flight's blocking problems and warnings if ``verdict``)."""
    title = Text.assemble(("Campaign ", "bold"), (progress.reference, "bold"))
    if progress.name:
        title.append(f"  {progress.name}")
    title.append("  phase: ")
    title.append_text(_phase(progress))
    parts: list[RenderableType] = [title]
    if progress.phase_reason:
        blocked = progress.phase is CampaignPhase.BLOCKED
        reason = f"  {'blocked: ' if blocked else ''}{progress.phase_reason}"
        parts.append(Text(reason, style="bold red" if blocked else "italic"))
    bar = Table.grid(padding=(0, 2))
    bar.add_row(_bar(progress, terminal=terminal), Text(_percent(progress)))
    parts.append(bar)
    if progress.phase.is_final:
        if progress.started_at and progress.completed_at:
            took = (progress.completed_at - progress.started_at).total_seconds()
            parts.append(
                Text(
                    f"ran {_duration(took)}: started {_when(progress.started_at)}, "
                    f"ended {_when(progress.completed_at)}"
                )
            )
    else:
        speed = [
            f"in flight {progress.in_flight:,}",
            f"rate {progress.rate_per_s:g} lines/s",
            f"ETA {_duration(progress.eta_s)}" if progress.eta_s is not None else "ETA -",
        ]
        parts.append(Text("  ".join(speed)))
    parts.append(
        Text(
            f"lines {progress.lines:,}  valid {progress.valid_lines:,}  "
            f"invalid {progress.invalid_lines:,}  started {progress.started_lines:,}  "
            f"skipped {progress.skipped_lines:,}"
        )
    )
    if progress.by_status:
        table = Table("status", "lines", "amount", box=box.SIMPLE_HEAD)
        for status in _statuses(progress):
            count = progress.by_status[status]
            table.add_row(
                Text(status, style=STATUS_STYLES.get(status, "")),
                f"{count.lines:,}",
                _money(progress, count.amount),
            )
        parts.append(table)
    if progress.paid:
        paid = ", ".join(format_amount(a, c) for c, a in sorted(progress.paid.items()))
        parts.append(Text(f"paid: {paid}", style="green"))
    for provider, reason in sorted(progress.paused_providers.items()):
        parts.append(Text(f"{provider} paused: {reason}", style="yellow"))
    if progress.approved_by:
        parts.append(Text(f"approved by {progress.approved_by} {_when(progress.approved_at)}"))
    if progress.cancelled_by:
        parts.append(Text(f"cancelled by {progress.cancelled_by}", style="red"))
    awaiting = progress.phase is CampaignPhase.AWAITING_APPROVAL
    if verdict and awaiting and progress.preflight is not None:
        parts += _verdict(progress.preflight)
    if note:
        parts.append(Text(note, style="dim"))
    return Group(*parts)


def _verdict(preflight: Preflight) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for reason in preflight.blocking:
        parts.append(Text(f"blocking: {reason}", style="bold red"))
    for warning in preflight.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return parts


def render_preflight(preflight: Preflight) -> RenderableType:
    """Pre-flight's totals per provider and currency, and its verdict."""
    prepared = preflight.prepared
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for header in ("provider", "ccy", "lines", "amount", "fees*", "amount+fees", "balance"):
        table.add_column(header, justify="left" if header in ("provider", "ccy") else "right")
    table.add_column("available")
    for total in preflight.totals:
        balance = Text("unknown" if total.balance is None else f"{total.balance:,}")
        if total.short_by:
            balance = Text(f"{total.balance:,} (short {total.short_by:,})", style="bold red")
        available = {True: Text("yes"), False: Text("no", style="bold red"), None: Text("?")}
        table.add_row(
            total.provider.value,
            total.currency.value,
            f"{total.lines:,}",
            f"{total.amount:,}",
            _fees(total),
            _with_unknown(total.required, total),
            balance,
            available[total.available],
        )
    parts: list[RenderableType] = [
        Text(
            f"Pre-flight ({_when(preflight.checked_at)}): {prepared.lines:,} lines, "
            f"{prepared.valid_lines:,} valid, {prepared.invalid_lines:,} invalid "
            f"({prepared.problem_count:,} problems)",
            style="bold",
        ),
        table,
        Text(
            "* fees quoted by the provider, or estimated (see the warnings); unknown: not "
            "known before payment; amounts in the currency's minor unit",
            style="dim",
        ),
    ]
    parts += _verdict(preflight)
    if not preflight.blocking:
        parts.append(Text("no blocking problem", style="green"))
    return Group(*parts)


def _with_unknown(known: int, total: ProviderTotals) -> str:
    return f"{known:,} + unknown" if total.fees_unknown_lines else f"{known:,}"


def _fees(total: ProviderTotals) -> str:
    # An unknown fee is never shown as 0: 0 is a fee a provider can quote.
    if total.fees is None:
        return "unknown"
    return _with_unknown(total.fees, total)


# ---------------------------------------------------------------------- commands


@app.command()
def submit(
    file: Annotated[
        Path,
        typer.Argument(
            help="The campaign file: .csv, or .jsonl/.ndjson (JSON lines).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    reference: Annotated[
        str, typer.Option("--reference", help="Your unique campaign reference.", show_default=False)
    ],
    name: Annotated[str | None, typer.Option(help="A name for people (up to 100 chars).")] = None,
    auto_approve: Annotated[
        bool,
        typer.Option(
            "--auto-approve", help="Start paying once pre-flight passes with no blocking problem."
        ),
    ] = False,
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            "--max-in-flight",
            min=1,
            max=1000,
            help="Payouts in flight per provider (default: sized from each provider's rate "
            "limit, at most 50).",
        ),
    ] = None,
    outage_error_threshold: Annotated[
        int | None,
        typer.Option(min=1, help="Provider errors in a row that pause a provider (API: 5)."),
    ] = None,
    outage_probe_interval: Annotated[
        int | None,
        typer.Option(min=1, help="Seconds between checks of a paused provider (API: 60)."),
    ] = None,
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Upload a campaign file (CSV or JSON lines) under your campaign reference.

    Pre-flight then checks every line; nothing is paid before approval (unless
    --auto-approve). Submitting the same file again under the same reference is harmless.
    """
    file_format = detect_format(None, file.name)
    if file_format is None:
        err.print(
            f"error: cannot tell the format of {escape(repr(file.name))}: name it .csv, .jsonl "
            "or .ndjson"
        )
        raise typer.Exit(EXIT_USAGE)
    options = CampaignSubmission(
        file_format=file_format,
        name=name or "",
        auto_approve=auto_approve,
        max_in_flight_per_provider=max_in_flight,
        outage_error_threshold=outage_error_threshold,
        outage_probe_interval_s=outage_probe_interval,
    )
    with _api(gateway, api_key) as api:
        submitted = _call(
            api,
            reference,
            lambda: api.submit_campaign_result(reference, file, options),
            submitting=True,
        )
    progress = submitted.state
    if json_output:
        out.print_json(progress.model_dump_json())
        return
    if submitted.created:
        out.print(
            f"Campaign [bold]{escape(reference)}[/bold] submitted: {progress.lines:,} lines "
            f"({file_format.value}). Pre-flight is checking every line."
        )
    else:
        out.print(
            f"Campaign [bold]{escape(reference)}[/bold] already exists with this file "
            f"(phase: {progress.phase.value}); nothing new was started."
        )
    _next_steps(progress)


@app.command()
def status(
    reference: ReferenceArg,
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """A campaign's progress: phase, counts and amounts by status, rate, ETA, pre-flight."""
    with _api(gateway, api_key) as api:
        progress = _call(api, reference, lambda: api.get_campaign(reference))
    if json_output:
        out.print_json(progress.model_dump_json())
        return
    out.print(render_progress(progress, verdict=False, terminal=out.is_terminal))
    if progress.preflight is not None:
        out.print(render_preflight(progress.preflight))
    _next_steps(progress)


@app.command()
def problems(
    reference: ReferenceArg,
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Pre-flight's verdict and every problem of every invalid line (not paid)."""
    with _api(gateway, api_key) as api:
        found = _call(api, reference, lambda: api.get_campaign_problems(reference))
    if json_output:
        out.print_json(found.model_dump_json())
        return
    if found.phase is CampaignPhase.BLOCKED:
        out.print(Text(f"Campaign {reference} is blocked: {found.phase_reason}", style="bold red"))
        out.print(f"Once the cause is fixed: momoflow campaign retry {escape(reference)} --by NAME")
    if found.preflight is None:
        if found.phase is not CampaignPhase.BLOCKED:
            out.print("Pre-flight has not finished yet: try again in a moment.")
        return
    out.print(render_preflight(found.preflight))
    if not found.problems:
        out.print("[green]No line problem: every line is valid.[/green]")
        return
    table = Table(
        "line",
        "reference",
        "field",
        "rule",
        "message",
        title=f"{len(found.problems):,} problem(s) on "
        f"{len({p.line for p in found.problems}):,} line(s); these lines are not paid",
        title_justify="left",
    )
    for problem in found.problems:
        table.add_row(
            str(problem.line) if problem.line else "file",
            escape(problem.reference or ""),
            escape(problem.field),
            escape(problem.rule),
            escape(problem.message),
        )
    out.print(table)


@app.command()
def approve(
    reference: ReferenceArg,
    by: Annotated[str, typer.Option("--by", help="Who approves (recorded).", show_default=False)],
    override_blocking: Annotated[
        bool,
        typer.Option(
            "--override-blocking",
            help="Approve although pre-flight found a blocking problem (a short balance, an "
            "unavailable provider); you take responsibility, and it is recorded.",
        ),
    ] = False,
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Approve the campaign: its valid lines start paying."""
    body = _body(ApproveRequest, approved_by=by, override_blocking=override_blocking)
    _control(
        gateway,
        api_key,
        reference,
        lambda api: api.approve_campaign(
            reference, body.approved_by, override_blocking=body.override_blocking
        ),
    )
    out.print(
        f"Campaign [bold]{escape(reference)}[/bold] approved by {escape(by)}: its valid lines "
        "start paying. Follow it with:"
    )
    out.print(f"  momoflow campaign watch {escape(reference)}")


@app.command()
def pause(
    reference: ReferenceArg,
    by: Annotated[str, typer.Option("--by", help="Who pauses (recorded).", show_default=False)],
    provider: Annotated[
        ProviderName | None,
        typer.Option(help="Pause only this provider's lines.", show_default=False),
    ] = None,
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Stop starting lines (all, or one provider's); lines in flight finish."""
    body = _body(PauseRequest, by=by, provider=provider)
    progress = _control(
        gateway,
        api_key,
        reference,
        lambda api: api.pause_campaign(reference, body.by, provider=body.provider),
    )
    what = f"{provider.value} lines of campaign" if provider else "campaign"
    out.print(f"Paused the {what} [bold]{escape(reference)}[/bold].")
    _next_steps(progress)


@app.command()
def resume(
    reference: ReferenceArg,
    by: Annotated[str, typer.Option("--by", help="Who resumes (recorded).", show_default=False)],
    provider: Annotated[
        ProviderName | None,
        typer.Option(
            help="Resume only this provider's lines (also lifts an outage pause).",
            show_default=False,
        ),
    ] = None,
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Start lines again (the whole campaign and every provider, or one provider)."""
    body = _body(PauseRequest, by=by, provider=provider)
    progress = _control(
        gateway,
        api_key,
        reference,
        lambda api: api.resume_campaign(reference, body.by, provider=body.provider),
    )
    what = f"{provider.value} lines of campaign" if provider else "campaign"
    out.print(f"Resumed the {what} [bold]{escape(reference)}[/bold].")
    _next_steps(progress)


@app.command()
def cancel(
    reference: ReferenceArg,
    by: Annotated[str, typer.Option("--by", help="Who cancels (recorded).", show_default=False)],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (recorded, up to 500 chars).", show_default=False)
    ],
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel for good: no new line starts; lines already sent finish and are reported."""
    body = _body(CancelRequest, by=by, reason=reason)
    progress = _control(
        gateway,
        api_key,
        reference,
        lambda api: api.cancel_campaign(reference, body.by, body.reason),
    )
    out.print(
        f"Campaign [bold]{escape(reference)}[/bold] cancelled: no new line starts; "
        f"{progress.in_flight:,} line(s) in flight finish and are reported."
    )
    _next_steps(progress)


@app.command()
def retry(
    reference: ReferenceArg,
    by: Annotated[str, typer.Option("--by", help="Who retries (recorded).", show_default=False)],
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Run the step that blocked the campaign again, once its cause is fixed.

    The campaign goes on from where it was (pre-flight, or paying its lines). Refused (exit
    5) unless the campaign is blocked.
    """
    body = _body(RetryRequest, by=by)
    progress = _control(
        gateway, api_key, reference, lambda api: api.retry_campaign(reference, body.by)
    )
    out.print(
        f"Campaign [bold]{escape(reference)}[/bold] retried by {escape(by)}: the step that "
        "failed runs again."
    )
    _next_steps(progress)


@app.command()
def report(
    reference: ReferenceArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the CSV here (default: standard output).", dir_okay=False
        ),
    ] = None,
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """The campaign report (CSV): one row per line of the file.

    Each row has the line's status, provider transaction id and reference, fees and error.
    """
    with _api(gateway, api_key) as api:
        if output is None:
            _call(
                api, reference, lambda: api.download_campaign_report(reference, sys.stdout.buffer)
            )
            sys.stdout.flush()
            return
        target = output.resolve()
        # The client writes beside the target and renames: never half a report.
        _call(api, reference, lambda: api.download_campaign_report(reference, target))
    with target.open(newline="", encoding="utf-8") as written:
        counts = Counter(row.get("status", "") for row in csv.DictReader(written))
    summary = ", ".join(f"{n:,} {s}" for s, n in sorted(counts.items(), key=lambda i: -i[1]))
    err.print(f"Report written to {target}: {sum(counts.values()):,} lines ({summary}).")


class _Stop(Exception):
    """SIGTERM while watching."""


@app.command()
def watch(
    reference: ReferenceArg,
    interval: Annotated[
        float, typer.Option(min=0.5, help="Seconds between two reads of the progress.")
    ] = 2.0,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1, help="Give up watching after this many seconds (exit 8).", show_default=False
        ),
    ] = None,
    gateway: GatewayOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Follow the campaign live until it is completed, cancelled or rejected.

    A blocked campaign ends the watch too (exit 9), with the reason: someone must fix the
    cause and run `momoflow campaign retry`. Stopping watch (Ctrl-C) and starting it again
    changes nothing for the campaign.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with _api(gateway, api_key) as api:
            final = _follow(api, reference, interval, timeout)
    except KeyboardInterrupt:
        err.print(_stopped(reference))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except _Stop:
        err.print(_stopped(reference))
        raise typer.Exit(EXIT_TERMINATED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if final is None:
        err.print(f"Stopped watching after {timeout:g} s; the campaign goes on.")
        raise typer.Exit(EXIT_TIMEOUT)
    out.print(render_progress(final, terminal=out.is_terminal))
    if final.phase is CampaignPhase.BLOCKED:
        out.print(f"Campaign {final.reference} is blocked: {final.phase_reason}", markup=False)
        out.print(
            f"Fix the cause, then: momoflow campaign retry {final.reference} --by NAME (or "
            "cancel it), and watch it again.",
            markup=False,
        )
        raise typer.Exit(EXIT_BLOCKED)
    out.print(f"Campaign {final.reference} {final.phase.value}: {_summary(final)}.")
    if final.phase is not CampaignPhase.COMPLETED:
        raise typer.Exit(EXIT_NOT_COMPLETED)


def _follow(
    api: SyncMomoflowClient, reference: str, interval: float, timeout: float | None
) -> CampaignProgress | None:
    """Poll until the campaign is final or blocked (its progress) or ``timeout`` passes
    (None).

    On a terminal the display is redrawn in place; elsewhere (a log, a pipe) one line is
    printed whenever the progress changes, and at least every ``HEARTBEAT_S`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    live = Live(console=out, refresh_per_second=4, transient=True) if out.is_terminal else None
    last_line, last_print = "", 0.0
    try:
        if live is not None:
            live.start()
        for progress, trouble in _poll(api, reference, interval, deadline):
            if progress is not None and _watch_ends(progress):
                return progress
            if live is not None:
                note = trouble or (
                    f"updated {datetime.now():%H:%M:%S}; Ctrl-C stops watching, not the campaign"
                )
                live.update(
                    Text(note)
                    if progress is None
                    else render_progress(progress, note=note, terminal=True)
                )
                continue
            line = progress_line(progress) if progress is not None else ""
            if trouble:
                line = f"{line} ({trouble})" if line else trouble
            if line != last_line or time.monotonic() - last_print >= HEARTBEAT_S:
                out.print(f"{datetime.now():%H:%M:%S} {line}", soft_wrap=True, markup=False)
                last_line, last_print = line, time.monotonic()
        return None
    finally:
        if live is not None:
            live.stop()


def _poll(
    api: SyncMomoflowClient, reference: str, interval: float, deadline: float | None
) -> Iterator[tuple[CampaignProgress | None, str]]:
    """(last progress read, trouble) at every interval: a gateway that cannot answer now
    keeps the last progress and says why in ``trouble``; refusals (401, 404) end the
    command."""
    if not is_valid_reference(reference):
        _fail(api, _invalid_reference(reference, submitting=False), reference)
    last: CampaignProgress | None = None
    while deadline is None or time.monotonic() < deadline:
        trouble = ""
        try:
            last = api.get_campaign(reference)
        except MomoflowError as exc:
            if not _transient(exc):
                _fail(api, exc, reference)
            unreachable = _unreachable(api, exc)
            if unreachable is not None:
                trouble = f"{unreachable}; retrying every {interval:g} s"
            else:
                trouble = (
                    f"gateway answered {exc.status}: {_refusal_message(exc)}; "
                    f"retrying every {interval:g} s"
                )
        yield last, trouble
        if last is not None and _watch_ends(last):
            return
        pause = interval if deadline is None else min(interval, deadline - time.monotonic())
        time.sleep(max(0.0, pause))


def _watch_ends(progress: CampaignProgress) -> bool:
    # Blocked waits for a person: watching on would wait for ever without saying so.
    return progress.phase.is_final or progress.phase is CampaignPhase.BLOCKED


def _stopped(reference: str) -> str:
    return (
        f"Stopped watching; the campaign goes on. Follow it again with: "
        f"momoflow campaign watch {reference}"
    )


def _summary(progress: CampaignProgress) -> str:
    counts = [f"{progress.by_status[s].lines:,} {s}" for s in _statuses(progress)]
    if progress.invalid_lines:
        counts.append(f"{progress.invalid_lines:,} invalid")
    not_sent = progress.valid_lines - progress.started_lines
    if progress.phase.is_final and not_sent > 0:
        counts.append(f"{not_sent:,} not sent")
    paid = ", ".join(format_amount(a, c) for c, a in sorted(progress.paid.items()))
    return (
        f"{progress.lines:,} lines: "
        + (", ".join(counts) or "none settled")
        + (f"; paid {paid}" if paid else "")
    )


def _body(model: type[M], **values: Any) -> M:
    try:
        return model(**values)
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(part) for part in problem["loc"])
            err.print(f"error: {where}: {problem['msg']}")
        raise typer.Exit(EXIT_USAGE) from None


def _control(
    gateway: str | None,
    api_key: str | None,
    reference: str,
    action: Callable[[SyncMomoflowClient], CampaignProgress],
) -> CampaignProgress:
    with _api(gateway, api_key) as api:
        return _call(api, reference, lambda: action(api))


def _next_steps(progress: CampaignProgress) -> None:
    ref = progress.reference
    hints = {
        CampaignPhase.PREFLIGHT: [
            f"momoflow campaign status {ref}      pre-flight's verdict, once it has run",
            f"momoflow campaign watch {ref}       follow it live",
        ],
        CampaignPhase.AWAITING_APPROVAL: [
            f"momoflow campaign problems {ref}    every problem of every invalid line",
            f"momoflow campaign approve {ref} --by NAME",
        ],
        CampaignPhase.RUNNING: [f"momoflow campaign watch {ref}"],
        CampaignPhase.PAUSED: [f"momoflow campaign resume {ref} --by NAME"],
        CampaignPhase.DRAINING: [f"momoflow campaign watch {ref}"],
        CampaignPhase.BLOCKED: [
            f"fix the cause above, then: momoflow campaign retry {ref} --by NAME",
            f"or give up: momoflow campaign cancel {ref} --by NAME --reason TEXT",
        ],
    }.get(progress.phase, [f"momoflow campaign report {ref} -o {ref}.csv"])
    out.print(f"phase: {progress.phase.value}. Next:")
    for hint in hints:
        out.print(f"  {escape(hint)}")


__all__ = [
    "CampaignProblems",
    "app",
    "progress_line",
    "render_preflight",
    "render_progress",
]
