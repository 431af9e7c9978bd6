"""The ``momoflow`` command line.

::

    momoflow dev [--demo] [--state-dir D] the whole local stack on this machine
    momoflow worker                       a worker (workflows + provider activities)
    momoflow gateway                      the HTTP gateway
    momoflow sandboxes                    every provider's simulator at once
    momoflow sandbox caurisflux ...       one provider simulator
    momoflow temporal register-search-attributes
    momoflow keys generate MERCHANT       a new API key and its MOMOFLOW_API_KEYS entry
    momoflow keys codec KEY_ID            a new payload encryption key (MOMOFLOW_CODEC__KEYS)
    momoflow keys operator NAME           a new operator token for the codec endpoints
    momoflow reconcile list|show|resolve  reconciling transactions, resolved by hand
    momoflow reconcile sweep|report|schedule   the sweep, daily reports and their schedules
    momoflow campaign submit|status|problems|approve|pause|resume|cancel|report|watch
                                          bulk payout campaigns, over the gateway's API
    momoflow db upgrade|current           the record store's schema (PostgreSQL)
    momoflow records verify               compare records with their workflows, repair lag
    momoflow operators add|list|disable|enable|password
                                          finance console operators (/console)
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Annotated

import typer

from momoflow.campaigns.cli import app as campaign_app
from momoflow.console.cli import operators_app
from momoflow.reconciliation.cli import app as reconcile_app
from momoflow.records.cli import db_app, records_app

app = typer.Typer(
    name="momoflow",
    help="Durable payin/payout orchestration for West African mobile money.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help, for every subcommand too: typer's Rich panels label every flag (--help
    # included) "<bool>" and box the text, which then cannot be copied from a file.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
temporal_app = typer.Typer(help="Temporal server administration.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Business API keys, payload encryption keys and operator tokens.", no_args_is_help=True
)
app.add_typer(temporal_app, name="temporal")
app.add_typer(keys_app, name="keys")
app.add_typer(reconcile_app, name="reconcile")
app.add_typer(campaign_app, name="campaign")
app.add_typer(db_app, name="db")
app.add_typer(records_app, name="records")
app.add_typer(operators_app, name="operators")


def _exit(rc: int) -> None:
    from momoflow.processes import exit_now

    exit_now(rc)


@app.command()
def worker() -> None:
    """Run a worker: workflows and provider activities.

    Runs until SIGINT or SIGTERM; settings come from MOMOFLOW_* variables or .env. Run as
    many as you like.
    """
    import worker as worker_module

    worker_module.main()


@app.command()
def gateway(
    host: Annotated[str | None, typer.Option(help="Bind address (MOMOFLOW_GATEWAY_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (MOMOFLOW_GATEWAY_PORT)")] = None,
) -> None:
    """Run the HTTP gateway: business API, webhooks, health, /docs.

    The OpenAPI docs are at /docs; /healthz and /readyz are for probes.
    """

    import uvicorn

    from momoflow import telemetry
    from momoflow.gateway import create_app
    from momoflow.processes import port_in_use
    from momoflow.settings import configure_logging, get_settings

    settings = get_settings()
    bind_host = host or settings.gateway_host
    bind_port = port or settings.gateway_port
    if port_in_use(bind_port, bind_host):
        typer.echo(f"error: port {bind_port} on {bind_host} is already in use", err=True)
        raise typer.Exit(2)
    configure_logging(settings)
    telemetry.setup(telemetry.Service.GATEWAY, settings)
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # uvicorn's lines go through the root logger: same format, same redaction.
        log_config=None,
    )
    _exit(0)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def sandbox(ctx: typer.Context) -> None:
    """Run one provider simulator: momoflow sandbox NAME --help."""
    from momoflow.sandbox.__main__ import main as sandbox_main

    raise typer.Exit(sandbox_main(list(ctx.args)))


@app.command()
def dev(
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Send sample payouts once the stack is up (scripts/dev does)."),
    ] = False,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port.")] = 8233,
    temporal_port: Annotated[int, typer.Option(help="Temporal gRPC port.")] = 7233,
    gateway_port: Annotated[int, typer.Option(help="Gateway port.")] = 8000,
    sandbox_port: Annotated[
        int, typer.Option("--caurisflux-port", "--sandbox-port", help="CaurisFlux sandbox port.")
    ] = 8101,
    novasend_port: Annotated[int, typer.Option(help="NovaSend sandbox port.")] = 8102,
    mobilepay_port: Annotated[int, typer.Option(help="MOBILE-PAY sandbox port.")] = 8103,
    postgres_port: Annotated[
        int,
        typer.Option(
            help="Embedded PostgreSQL port (the record store; unused when "
            "MOMOFLOW_DATABASE__URL names a database)."
        ),
    ] = 5433,
    state_dir: Annotated[
        str | None,
        typer.Option(
            help="Where Temporal's history, the logs, campaign files and reconciliation "
            "reports are kept, for every process started (MOMOFLOW_STATE_DIR; default: "
            ".momoflow).",
            show_default=False,
        ),
    ] = None,
    exit_after_demo: Annotated[
        bool,
        typer.Option(
            "--exit-after-demo",
            help="Send the demo payouts, then stop once they are final; the exit code says "
            "whether each ended as expected (for CI).",
        ),
    ] = False,
) -> None:
    """Run Temporal, the three sandboxes, a worker and the gateway.

    Starts the Temporal dev server with its UI (unless MOMOFLOW_TEMPORAL__ADDRESS names a
    server), an embedded PostgreSQL 16 for the record store, migrated (unless
    MOMOFLOW_DATABASE__URL names a database), the three provider sandboxes (CaurisFlux,
    NovaSend, MOBILE-PAY), a worker and the gateway, and echoes their logs. Ctrl-C stops
    everything.
    """
    from momoflow.devstack import DevStackConfig, run_dev

    config = DevStackConfig(
        ui_port=ui_port,
        temporal_port=temporal_port,
        gateway_port=gateway_port,
        postgres_port=postgres_port,
        sandbox_port_overrides={
            "caurisflux": sandbox_port,
            "novasend": novasend_port,
            "mobilepay": mobilepay_port,
        },
        state_dir=state_dir,
        demo=demo or exit_after_demo,
        exit_after_demo=exit_after_demo,
    )
    _exit(run_dev(config))


@app.command()
def sandboxes(
    caurisflux_port: Annotated[int, typer.Option(help="CaurisFlux sandbox port.")] = 8101,
    novasend_port: Annotated[int, typer.Option(help="NovaSend sandbox port.")] = 8102,
    mobilepay_port: Annotated[int, typer.Option(help="MOBILE-PAY sandbox port.")] = 8103,
    gateway_url: Annotated[
        str, typer.Option(help="Where the sandboxes send their webhooks.")
    ] = "http://127.0.0.1:8000",
    state_dir: Annotated[
        str | None,
        typer.Option(
            help="Logs go to its logs/ folder (MOMOFLOW_STATE_DIR; default: .momoflow).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the three provider sandboxes until Ctrl-C.

    CaurisFlux, NovaSend and MOBILE-PAY, each on its port, with its ledger at
    /_sandbox/ledger. momoflow dev starts them too.
    """
    from momoflow.devstack import run_sandboxes

    # The named options predate provider specs and stay for compatibility; a provider
    # without one runs on its spec's default port.
    ports = {"caurisflux": caurisflux_port, "novasend": novasend_port, "mobilepay": mobilepay_port}
    _exit(run_sandboxes(ports, gateway_url, state_dir))


@temporal_app.command("register-search-attributes")
def register_search_attributes() -> None:
    """Register momoflow's search attributes on the configured namespace (idempotent)."""
    from momoflow import telemetry
    from momoflow.settings import get_settings
    from momoflow.temporal import connect_client
    from momoflow.temporal import register_search_attributes as register

    settings = get_settings()
    telemetry.setup(telemetry.Service.CLI, settings)

    async def _run() -> list[str]:
        client = await connect_client(settings.temporal, codec=settings.codec)
        return await register(client, settings.temporal.namespace)

    added = asyncio.run(_run())
    typer.echo(f"registered: {', '.join(added)}" if added else "all search attributes present")
    _exit(0)


@keys_app.command("generate")
def generate_key(merchant: str) -> None:
    """Print a new API key for MERCHANT and the entry to add to MOMOFLOW_API_KEYS."""
    from momoflow.ids import is_valid_merchant
    from momoflow.settings import hash_api_key

    if not is_valid_merchant(merchant):
        typer.echo("error: merchant ids are 2-32 characters of a-z, 0-9 and '_' (no '-')", err=True)
        raise typer.Exit(2)
    key = f"mf_{secrets.token_urlsafe(32)}"
    typer.echo(f"API key (give it to the merchant, it is not stored): {key}")
    entry = {"merchant": merchant, "key_sha256": hash_api_key(key)}
    typer.echo(f"MOMOFLOW_API_KEYS entry: {json.dumps(entry)}")


@keys_app.command("codec")
def generate_codec_key(key_id: str) -> None:
    """Print a new AES-256 key for encrypting Temporal payloads, named KEY_ID (e.g. 2026-07)."""
    from momoflow.codec import KEY_ID_PATTERN, generate_key, is_valid_key_id

    if not is_valid_key_id(key_id):
        typer.echo(f"error: key ids must match {KEY_ID_PATTERN}", err=True)
        raise typer.Exit(2)
    typer.echo(
        f"MOMOFLOW_CODEC__KEYS entry (keep it secret): {json.dumps({key_id: generate_key()})}"
    )
    typer.echo(
        "Add it to the keys of every worker and gateway first; once all run with it, set "
        f"MOMOFLOW_CODEC__ACTIVE_KEY_ID={key_id}. Keep the old keys (see docs/operations.md)."
    )


@keys_app.command("operator")
def generate_operator_token(operator: str) -> None:
    """Print a new token that lets OPERATOR read encrypted payloads through /codec."""
    from momoflow.settings import OperatorTokenEntry, hash_api_key

    token = f"mfop_{secrets.token_urlsafe(32)}"
    try:
        entry = OperatorTokenEntry(operator=operator, token_sha256=hash_api_key(token))
    except ValueError:
        typer.echo(
            "error: operator names are 1-64 characters of a-z, 0-9, '.', '_' and '-'", err=True
        )
        raise typer.Exit(2) from None
    typer.echo(f"operator token (give it to {operator}, it is not stored): {token}")
    typer.echo(f"MOMOFLOW_CODEC__OPERATOR_TOKENS entry: {entry.model_dump_json()}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
