"""``momoflow reconcile``: the operator's side of reconciliation.

::

    momoflow reconcile list [--provider P] [--all] [--json]
    momoflow reconcile show WORKFLOW_ID [--json]
    momoflow reconcile resolve WORKFLOW_ID (--paid|--failed) --reason TEXT --operator NAME
    momoflow reconcile sweep                 run the sweep now (the schedule's action)
    momoflow reconcile report --provider P [--date YYYY-MM-DD]
    momoflow reconcile schedule              create or update both schedules (idempotent)

Each command is a thin translation to :mod:`momoflow.reconciliation.operations`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from temporalio.client import (
    Client,
)
from temporalio.service import RPCError

from momoflow.ids import workflow_task_queue
from momoflow.models import (
    ManualResolution,
    ProviderName,
    ResolutionOutcome,
)

#: How long one ``state`` query may take before the workflow counts as not answering.
from momoflow.reconciliation.operations import (
    ResolveRefused,
    StateView,
    ensure_schedules,
    find_reconciling,
    read_state,
    resolve,
    run_report,
    run_sweep,
)
from momoflow.reconciliation.rules import (
    FindReconcilingInput,
    FoundReconciling,
    ReconcilingTransaction,
    ReportSummary,
    SweepReport,
)
from momoflow.settings import Settings

app = typer.Typer(
    help="Reconciliation: reconciling transactions, manual resolution, sweep and reports.",
    short_help="Money in doubt: list, resolve, sweep, daily report.",
    no_args_is_help=True,
)


def _exit(rc: int) -> None:
    """Leave the way every ``momoflow`` command does (telemetry flushed, no SDK exit crash)."""
    from momoflow.processes import exit_now

    exit_now(rc)


def _run(work: Callable[[Client, Settings], Any]) -> Any:
    from momoflow import telemetry
    from momoflow.settings import get_settings
    from momoflow.temporal import connect_client

    settings = get_settings()
    telemetry.setup(telemetry.Service.CLI, settings)

    async def main() -> Any:
        client = await connect_client(settings.temporal, codec=settings.codec)
        return await work(client, settings)

    return asyncio.run(main())


def _age(row: ReconcilingTransaction, now: datetime) -> str:
    age = row.age(now)
    if age is None:
        return "?"
    hours, rest = divmod(int(age.total_seconds()), 3600)
    return f"{hours // 24}d{hours % 24:02d}h" if hours >= 24 else f"{hours}h{rest // 60:02d}m"


def _amount(amount: int | None, currency: str | None) -> str:
    return "?" if amount is None else f"{amount:,} {currency or ''}".strip()


def _print_rows(rows: Sequence[ReconcilingTransaction]) -> None:
    from rich.console import Console
    from rich.table import Table

    now = datetime.now(UTC)
    table = Table(show_lines=False)
    for column in ("workflow id", "provider", "amount", "phone", "reason", "age", "note"):
        table.add_column(column)
    for row in rows:
        note = row.state_error or row.not_readable_reason or ""
        table.add_row(
            row.workflow_id,
            row.provider.value if row.provider else "?",
            _amount(row.amount, row.currency),
            row.phone_masked or "-",
            row.failure.code if row.failure else "?",
            _age(row, now),
            note,
        )
    Console(width=200).print(table)


@app.command("list")
def list_command(
    provider: Annotated[
        ProviderName | None, typer.Option(help="Only this provider's transactions")
    ] = None,
    include_closed: Annotated[
        bool, typer.Option("--all", help="Also closed workflows that ended reconciling")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document")] = False,
) -> None:
    """The reconciling transactions: reason, age, provider, amount, masked phone."""

    async def work(client: Client, settings: Settings) -> FoundReconciling:
        return await find_reconciling(
            client,
            FindReconcilingInput(
                task_queue=workflow_task_queue(settings.task_queue_prefix),
                limit=limit,
                provider=provider,
                include_closed=include_closed,
            ),
        )

    found: FoundReconciling = _run(work)
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
    else:
        _print_rows(found.transactions)
        more = f" (showing {len(found.transactions)})" if found.truncated else ""
        typer.echo(f"{found.total} reconciling{more}")
    _exit(0)


@app.command("show")
def show_command(
    workflow_id: Annotated[str, typer.Argument(help="e.g. payout-acme-INV-1")],
    as_json: Annotated[bool, typer.Option("--json", help="The whole state as JSON")] = False,
) -> None:
    """One transaction: status, why it is reconciling, provider ids, timeline."""

    async def work(client: Client, settings: Settings) -> StateView:
        return await read_state(client, workflow_id)

    try:
        view: StateView = _run(work)
    except RPCError as exc:
        typer.echo(f"error: {workflow_id}: {exc.message}", err=True)
        _exit(1)
        return
    except TimeoutError:
        typer.echo(f"error: {workflow_id}: no worker answered; is a worker running?", err=True)
        _exit(1)
        return
    if as_json:
        typer.echo(view.model_dump_json(indent=2))
        _exit(0)
    now = datetime.now(UTC)
    lines = [
        f"{view.workflow_id}: {view.status.value}",
        f"  provider      {view.provider.value if view.provider else '?'}"
        f" (transaction {view.provider_transaction_id or 'unknown'}, status "
        f"{view.provider_status or 'unknown'})",
        f"  amount        {_amount(view.amount, view.currency)}",
        f"  phone         {view.phone_masked or '-'}",
        f"  merchant      {view.merchant} / {view.reference}",
    ]
    if view.failure:
        lines.append(f"  reason        {view.failure.code}: {view.failure.message}")
    if view.reconciling_since:
        lines.append(
            f"  reconciling   since {view.reconciling_since:%Y-%m-%d %H:%M} UTC "
            f"({now - view.reconciling_since} ago), {view.status_polls} status reads"
        )
    if view.resolution:
        r = view.resolution
        lines.append(
            f"  resolved      {r.outcome.value} by {r.operator} at "
            f"{r.resolved_at:%Y-%m-%d %H:%M} UTC: {r.reason}"
        )
    lines.append("  timeline:")
    lines += [f"    {e.at:%Y-%m-%d %H:%M:%S} {e.status.value:<12} {e.note}" for e in view.timeline]
    typer.echo("\n".join(lines))
    _exit(0)


@app.command("resolve")
def resolve_command(
    workflow_id: Annotated[str, typer.Argument(help="e.g. payout-acme-INV-1")],
    reason: Annotated[str, typer.Option(help="What proves the outcome (kept in the history)")],
    operator: Annotated[str, typer.Option(help="Who resolves it (kept in the history)")],
    paid: Annotated[bool, typer.Option("--paid", help="The money moved")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="The money did not move")] = False,
) -> None:
    """Close a reconciling transaction by hand: --paid or --failed, with a reason."""
    if paid == failed:
        typer.echo("error: say --paid or --failed (exactly one)", err=True)
        _exit(2)
    outcome = ResolutionOutcome.PAID if paid else ResolutionOutcome.FAILED
    resolution = ManualResolution(outcome=outcome, reason=reason, operator=operator)

    async def work(client: Client, settings: Settings) -> dict[str, Any]:
        return await resolve(client, workflow_id, resolution)

    try:
        state: dict[str, Any] = _run(work)
    except ResolveRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        _exit(1)
        return
    typer.echo(f"{workflow_id}: {state.get('status')} (resolved by {operator.strip()})")
    _exit(0)


@app.command("sweep")
def sweep_command(
    as_json: Annotated[bool, typer.Option("--json", help="The sweep report as JSON")] = False,
) -> None:
    """Run the sweep once now and print what it resolved and what is left."""

    async def work(client: Client, settings: Settings) -> SweepReport:
        return await run_sweep(client, settings)

    report: SweepReport = _run(work)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(report.markdown())
    _exit(0)


def _parse_day(value: str | None) -> date:
    if value is None:
        return datetime.now(UTC).date() - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@app.command("report")
def report_command(
    provider: Annotated[ProviderName, typer.Option(help="The provider to reconcile")],
    day: Annotated[
        str | None, typer.Option("--date", help="UTC day, YYYY-MM-DD (default: yesterday)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole report as JSON")] = False,
) -> None:
    """Compare a provider's records of one day with momoflow's outcomes, now."""
    when = _parse_day(day)

    async def work(client: Client, settings: Settings) -> ReportSummary:
        return await run_report(client, settings, provider, when)

    summary: ReportSummary = _run(work)
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
        _exit(0)
    typer.echo(f"{provider.value} {when.isoformat()}: {summary.method}")
    typer.echo(
        f"momoflow {summary.momoflow_transactions}, provider {summary.provider_transactions}, "
        f"matched {summary.matched}, not checked {summary.unchecked}, "
        f"mismatches {summary.total_mismatches}" + (" (INCOMPLETE)" if summary.incomplete else "")
    )
    for mismatch in summary.mismatches:
        typer.echo(
            f"  {mismatch.kind.value}: {mismatch.workflow_id or mismatch.provider_transaction_id}"
            f" — {mismatch.detail}"
        )
    for path in summary.files:
        typer.echo(f"written: {path}")
    _exit(0)


@app.command("schedule")
def schedule_command() -> None:
    """Create or update the sweep and daily report schedules (idempotent)."""

    async def work(client: Client, settings: Settings) -> dict[str, str]:
        return await ensure_schedules(client, settings)

    done: dict[str, str] = _run(work)
    for schedule_id, what in done.items():
        typer.echo(f"{schedule_id}: {what}")
    _exit(0)
