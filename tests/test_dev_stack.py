"""The README's first command: ``momoflow dev --demo`` brings the stack up on a fresh state
directory, sends the demo payouts, and each ends the way the demo says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from momoflow.processes import free_port


def test_dev_stack_runs_the_demo_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {
        name: free_port()
        for name in ("ui", "temporal", "gateway", "sandbox", "novasend", "mobilepay")
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
    import signal
    import time

    import httpx

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
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
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
