"""``momoflow db`` and ``momoflow records``: the record store's schema and its consistency.

::

    momoflow db upgrade [--revision R]     migrate the schema (idempotent; waits for the server)
    momoflow db current                    the schema's revision
    momoflow records verify [--since-hours H] [--json]
                                           compare records with their workflows, repair lag
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

db_app = typer.Typer(help="The record store's schema (PostgreSQL).", no_args_is_help=True)
records_app = typer.Typer(
    help="The record store: verify records against their workflows.", no_args_is_help=True
)


def _url() -> str:
    from momoflow.settings import get_settings

    url = get_settings().database.url
    if url is None:
        typer.echo(
            "error: no record store: set MOMOFLOW_DATABASE__URL to a PostgreSQL URL "
            "(postgresql://user:password@host:5432/momoflow)",
            err=True,
        )
        raise typer.Exit(2)
    return url.get_secret_value()


async def _wait(url: str, wait_s: float) -> None:
    from momoflow.records.store import RecordStore

    store = RecordStore.connect(url)
    try:
        await store.wait_ready(wait_s)
    finally:
        await store.close()


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    wait_s: Annotated[
        float, typer.Option(help="How long to wait for the server to accept connections.")
    ] = 30.0,
) -> None:
    """Migrate the record store to REVISION (default: the newest); safe to run again."""
    from momoflow.records import migrate
    from momoflow.records.store import StoreUnavailable, async_url

    url = async_url(_url())
    try:
        asyncio.run(_wait(url, wait_s))
    except StoreUnavailable:
        typer.echo(f"error: the record store did not answer within {wait_s:.0f} s", err=True)
        raise typer.Exit(1) from None
    migrate.upgrade(url, revision)
    typer.echo(f"record store at revision {asyncio.run(migrate.current_revision(url))}")


@db_app.command("current")
def current() -> None:
    """Print the record store's schema revision ("none" before the first upgrade)."""
    from momoflow.records import migrate
    from momoflow.records.store import async_url

    revision = asyncio.run(migrate.current_revision(async_url(_url())))
    typer.echo(revision or "none")


@records_app.command("verify")
def verify(
    since_hours: Annotated[
        float | None,
        typer.Option(
            help="Only records changed, and workflows started, in the last H hours "
            "(records not final are always checked). Default: everything."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare every record with its workflow and repair any lag (idempotent).

    Exit code 0: consistent; 1: some records could not be verified (listed)."""
    from momoflow import telemetry
    from momoflow.records.store import RecordStore
    from momoflow.records.verify import VerifyReport
    from momoflow.records.verify import verify as run_verify
    from momoflow.settings import get_settings
    from momoflow.temporal import connect_client

    settings = get_settings()
    telemetry.setup(telemetry.Service.CLI, settings)
    since = datetime.now(UTC) - timedelta(hours=since_hours) if since_hours else None

    async def _run() -> VerifyReport:
        client = await connect_client(settings.temporal, codec=settings.codec)
        store = RecordStore.from_settings(settings.database)
        try:
            return await run_verify(client, store, since=since)
        finally:
            await store.close()

    report = asyncio.run(_run())
    if as_json:
        typer.echo(json.dumps({**asdict(report), "consistent": report.consistent}, indent=2))
    else:
        typer.echo(
            f"checked {report.checked_records} records and {report.checked_workflows} "
            f"workflows: {len(report.repaired)} repaired, "
            f"{len(report.created)} recorded, {len(report.orphans_removed)} orphan claims "
            f"removed"
        )
        for title, names in (
            ("repaired", report.repaired),
            ("recorded", report.created),
            ("orphan claims removed", report.orphans_removed),
            ("not final, workflow gone (settle with the provider)", report.unverifiable),
            ("no answer from the workflow (run again later)", report.unanswered),
        ):
            if names:
                typer.echo(f"{title}: {', '.join(names)}")
    from momoflow.processes import exit_now

    # The Temporal SDK can crash the interpreter at exit (sdk-python#300): leave directly.
    exit_now(0 if report.consistent else 1)
