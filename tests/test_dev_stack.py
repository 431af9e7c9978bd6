"""``momoflow dev``: the stack comes up on a fresh state directory, sends the demo payouts,
and each ends the way the demo says; every process it starts uses the state directory it
was given; a restart shows only its own log lines; the banner and help read cleanly from a
file; ``scripts/dev --help`` installs nothing."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

import momoflow.cli
from momoflow.devstack import DEV_CONSOLE_PASSWORD
from momoflow.processes import free_port
from momoflow.settings import DEV_API_KEY
from momoflow.temporal_ui import MONEY_IN_DOUBT, NEEDS_ATTENTION_VIEW
from tests.console_support import Account, ConsoleClient
from tests.test_first_hour import _descendants, _kill_groups, _Output

REPO = Path(__file__).resolve().parents[1]
#: ``momoflow dev``'s port options other than the gateway's.
OTHER_PORT_OPTIONS = (
    "--ui-port",
    "--temporal-port",
    "--sandbox-port",
    "--novasend-port",
    "--mobilepay-port",
    "--postgres-port",
)


def test_dev_stack_runs_the_demo_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {
        name: free_port()
        for name in ("ui", "temporal", "gateway", "sandbox", "novasend", "mobilepay", "postgres")
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOMOFLOW_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "momoflow.cli",
            "dev",
            "--exit-after-demo",
            "--ui-port",
            str(ports["ui"]),
            "--temporal-port",
            str(ports["temporal"]),
            "--gateway-port",
            str(ports["gateway"]),
            "--sandbox-port",
            str(ports["sandbox"]),
            "--novasend-port",
            str(ports["novasend"]),
            "--mobilepay-port",
            str(ports["mobilepay"]),
            "--postgres-port",
            str(ports["postgres"]),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        env={**env, "COLUMNS": "200"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert f"http://127.0.0.1:{ports['ui']}" in output
    for status in ("succeeded", "failed", "reconciling"):
        assert status in output
    assert "(not final yet)" not in output
    # The reconciliation sweep and daily report schedules exist from the start.
    assert "reconciliation schedule momoflow-reconcile-sweep: created" in output
    assert "reconciliation schedule momoflow-reconcile-report: created" in output
    assert (tmp_path / "state" / "temporal.db").exists()
    assert "stopped." in output


def test_dev_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "momoflow.cli",
                "dev",
                "--gateway-port",
                str(port),
                # Free ports for the rest: the defaults may be held by another test's stack.
                *(arg for name in OTHER_PORT_OPTIONS for arg in (name, str(free_port()))),
                "--state-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert done.returncode == 2
    assert f"gateway port {port} already in use" in done.stdout + done.stderr


def test_sandboxes_command_starts_all_three_and_stops_on_sigint(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("caurisflux", "novasend", "mobilepay")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "momoflow.cli",
            "sandboxes",
            "--caurisflux-port",
            str(ports["caurisflux"]),
            "--novasend-port",
            str(ports["novasend"]),
            "--mobilepay-port",
            str(ports["mobilepay"]),
            "--state-dir",
            "state",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("MOMOFLOW_")},
    )
    try:
        deadline = time.monotonic() + 60
        healthy: set[str] = set()
        while time.monotonic() < deadline and len(healthy) < 3:
            for name, port in ports.items():
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        healthy.add(name)
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        assert healthy == set(ports)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    for port in ports.values():
        assert f"http://127.0.0.1:{port}" in out
    # Their logs are under the state directory given, relative to the working directory.
    for name in ports:
        assert (tmp_path / "state" / "logs" / f"{name}.log").stat().st_size > 0
    assert not (tmp_path / ".momoflow").exists()


# --------------------------------------------------------------- state dir, restart, banner


def _dev_argv(ports: dict[str, int], state_dir: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "momoflow.cli",
        "dev",
        "--state-dir",
        state_dir,
        "--ui-port",
        str(ports["ui"]),
        "--temporal-port",
        str(ports["temporal"]),
        "--gateway-port",
        str(ports["gateway"]),
        "--caurisflux-port",
        str(ports["caurisflux"]),
        "--novasend-port",
        str(ports["novasend"]),
        "--mobilepay-port",
        str(ports["mobilepay"]),
        "--postgres-port",
        str(ports["postgres"]),
    ]


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], _Output, dict[str, int]]]:
    """``momoflow dev --state-dir state`` (relative) in ``tmp_path/run``, output to a pipe
    with no terminal width, after a previous run left a traceback in every log."""
    run = tmp_path / "run"
    logs = run / "state" / "logs"
    logs.mkdir(parents=True)
    for name in ("temporal", "caurisflux", "novasend", "mobilepay", "worker", "gateway"):
        (logs / f"{name}.log").write_text(
            "Traceback (most recent call last):\n"
            '  File "old.py", line 1, in <module>\n'
            f"RuntimeError: OLD-RUN-{name} [/not markup]\n"
            "momoflow worker ready\n"
        )
    ports = {
        name: free_port()
        for name in ("ui", "temporal", "gateway", "caurisflux", "novasend", "mobilepay", "postgres")
    }
    drop = ("MOMOFLOW_", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    proc = subprocess.Popen(
        _dev_argv(ports, "state"),
        cwd=run,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines = _Output(proc)
    try:
        yield proc, lines, ports
    finally:
        if proc.poll() is None:
            # SIGINT stops the children too; if it does not, kill each one's process group.
            family = _descendants(proc.pid)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                _kill_groups(family | {proc.pid})
                proc.wait(timeout=10)
        lines.join()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_dev_state_dir_restart_and_banner(
    tmp_path: Path, dev_stack: tuple[subprocess.Popen[str], _Output, dict[str, int]]
) -> None:
    proc, lines, ports = dev_stack
    run = tmp_path / "run"
    state = run / "state"
    lines.wait_for("press Ctrl-C to stop", deadline=time.monotonic() + 120)

    # The gateway stores the upload and the worker reads it back for pre-flight: both use
    # the state directory given on the command line, not ./.momoflow.
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    headers = {"Authorization": f"Bearer {DEV_API_KEY}", "Content-Type": "text/csv"}
    body = (
        "reference,provider,country,operator,phone,name,amount,currency\n"
        "SD-1,caurisflux,SN,wave,+221771234567,Awa Diallo,5000,XOF\n"
    )
    with httpx.Client(base_url=gateway, timeout=10) as http:
        answer = http.post(
            "/v1/campaigns", params={"reference": "SD"}, headers=headers, content=body
        )
        assert answer.status_code == 201, answer.text
        deadline = time.monotonic() + 60
        phase = "preflight"
        while phase == "preflight" and time.monotonic() < deadline:
            time.sleep(0.5)
            progress = http.get("/v1/campaigns/SD", headers=headers).raise_for_status().json()
            phase = progress["phase"]
    assert phase == "awaiting_approval", progress
    assert (state / "campaigns" / "campaign-demo-SD").is_dir()
    # The finance console opens with the local operators the banner names.
    with ConsoleClient(gateway) as console:
        home = console.login(Account("dev-checker", DEV_CONSOLE_PASSWORD, "checker", "demo"))
    assert "dev-checker" in home.text
    assert not (run / ".momoflow").exists()

    # A worker killed with SIGKILL is started again; the stack and its sandboxes stay up.
    workers = [pid for pid in _descendants(proc.pid) if "momoflow.cli worker" in _cmdline(pid)]
    assert len(workers) == 1, workers
    os.kill(workers[0], signal.SIGKILL)
    lines.wait_for("worker started again", deadline=time.monotonic() + 60)
    deadline = time.monotonic() + 60
    while lines.text().count("momoflow worker ready") < 2:
        assert time.monotonic() < deadline, lines.text()[-4000:]
        time.sleep(0.2)
    assert proc.poll() is None
    assert "worker exited (code -9); starting it again in 1 s" in lines.text()
    with httpx.Client(base_url=gateway, timeout=10) as http:
        # The new worker answers the campaign's query (the first tries may still go to the
        # dead worker's sticky queue and get a 503 "retry later").
        deadline = time.monotonic() + 60
        while http.get("/v1/campaigns/SD", headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "the campaign is not readable again"
            time.sleep(0.5)
        ledger = httpx.get(f"http://127.0.0.1:{ports['caurisflux']}/_sandbox/ledger", timeout=10)
        assert ledger.status_code == 200

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    lines.join()
    output = lines.text()
    assert "stopped." in output

    # This run's lines are echoed, the previous run's are not (they stay in the files).
    assert "OLD-RUN" not in output, output[-4000:]
    assert re.search(r"^ +worker \| .*momoflow worker ready", output, re.M), output[-4000:]
    for name in ("worker", "gateway", "caurisflux"):
        assert f"OLD-RUN-{name}" in (state / "logs" / f"{name}.log").read_text()

    # Every URL, path and the example command is whole on its line, though the output went
    # to a pipe 80 columns wide.
    expected = [
        f"http://127.0.0.1:{ports['ui']}",
        # One click to the payouts needing attention, and to the money in doubt.
        NEEDS_ATTENTION_VIEW.url(f"http://127.0.0.1:{ports['ui']}"),
        MONEY_IN_DOUBT.url(f"http://127.0.0.1:{ports['ui']}"),
        f"{gateway}/docs",
        f"{gateway}/console",
        *(f"http://127.0.0.1:{ports[n]}/_sandbox/ledger" for n in ("caurisflux", "mobilepay")),
        str(state / "logs"),
    ]
    for value in expected:
        assert any(line.rstrip().endswith(value) for line in lines.lines), (value, output)
    tries = [line for line in lines.lines if line.startswith("try: curl -s -X POST ")]
    assert len(tries) == 1, output
    assert f"{gateway}/v1/payouts -H 'Authorization: Bearer {DEV_API_KEY}'" in tries[0]
    assert tries[0].endswith('"amount":5000,"currency":"XOF"}\''), tries[0]


# --------------------------------------------------------------------------- help texts


def _commands(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every command's path in the CLI's tree, groups included."""
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def test_help_of_every_command_is_plain_and_current() -> None:
    runner = CliRunner()
    root = typer.main.get_command(momoflow.cli.app)
    helps: dict[tuple[str, ...], str] = {}
    for path in _commands(root, ()):
        if path == ("sandbox",):  # argparse's own help, per provider
            continue
        result = runner.invoke(momoflow.cli.app, [*path, "--help"], terminal_width=80)
        assert result.exit_code == 0, (path, result.output)
        helps[path] = result.output
    assert len(helps) > 20
    for path, text in helps.items():
        assert "<bool>" not in text, (path, text)
        assert "╭" not in text, (path, text)
    assert "-h, --help" in helps[()]
    dev = " ".join(helps[("dev",)].split())
    assert "the three sandboxes" in dev and "(CaurisFlux, NovaSend, MOBILE-" in dev
    assert "the CaurisFlux sandbox" not in dev
    assert "--demo " in dev and "--no-demo" not in dev and "--exit-after-demo " in dev
    assert "--caurisflux-port, --sandbox-port" in dev
    assert "MOMOFLOW_STATE_DIR; default: .momoflow" in dev
    assert "MOMOFLOW_STATE_DIR" in helps[("sandboxes",)]
    # The command list shows each summary whole on an 80-column screen.
    assert "..." not in helps[()].split("Commands:")[1].split("reconcile")[0]


def _script_copy(tmp_path: Path) -> Path:
    """scripts/ and pyproject.toml in an empty directory: a checkout with no .venv yet."""
    root = tmp_path / "fresh"
    (root / "scripts").mkdir(parents=True)
    for name in ("scripts/dev", "scripts/_venv.sh", "pyproject.toml"):
        shutil.copy2(REPO / name, root / name)
    return root


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_scripts_dev_help_without_a_venv_installs_nothing(tmp_path: Path, flag: str) -> None:
    root = _script_copy(tmp_path)
    # Any attempt to create the venv would fail loudly with this interpreter.
    env = {**os.environ, "PYTHON": "/bin/false"}
    done = subprocess.run(
        ["scripts/dev", "--gateway-port", "9000", flag],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Usage: ./scripts/dev [OPTIONS]"), done.stdout
    assert not (root / ".venv").exists()
    # The short list names only options that `momoflow dev` has.
    real = CliRunner().invoke(momoflow.cli.app, ["dev", "--help"]).output
    named = re.findall(r"^  (--[a-z-]+)", done.stdout, re.M)
    assert named and all(option in real for option in named), named


def test_scripts_dev_help_with_a_venv_shows_momoflow_dev_help() -> None:
    done = subprocess.run(
        [str(REPO / "scripts" / "dev"), "--help"],
        cwd=REPO / "docs",
        env={k: v for k, v in os.environ.items() if k != "PYTHON"} | {"PYTHON": "/bin/false"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Usage: ./scripts/dev [OPTIONS]" in done.stdout
    assert "Usage: momoflow dev [OPTIONS]" in done.stdout and "--state-dir" in done.stdout
    assert "installing" not in done.stdout + done.stderr
