"""``python -m momoflow.sandbox``: readiness line, env configuration, signals, taken port."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "momoflow.sandbox", *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ready_url(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """The URL of the ready line, read with a deadline."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no ready line within {timeout}s")
    line = proc.stdout.readline().strip()
    prefix = "caurisflux sandbox listening on "
    assert line.startswith(prefix), (line, proc.stderr.read() if proc.stderr else "")
    return line.removeprefix(prefix)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_reads_env_and_exits_cleanly_on_signal(
    processes: list[subprocess.Popen[str]], sig: signal.Signals
) -> None:
    env = {
        "CAURISFLUX_SANDBOX_PUBLIC_KEY": "pk_test_env",
        "CAURISFLUX_SANDBOX_SECRET_KEY": "sk_test_env",
        "CAURISFLUX_SANDBOX_RATE_LIMIT_PER_MINUTE": "7",
        "CAURISFLUX_SANDBOX_SETTLE_DELAY": "0.5",
    }
    proc = _spawn("caurisflux", "--host", "127.0.0.1", "--port", "0", env=env)
    processes.append(proc)
    url = _ready_url(proc)
    assert url.startswith("http://127.0.0.1:")
    ok = httpx.get(
        f"{url}/api/v1/payments/balance", headers={"X-API-Key": "pk_test_env:sk_test_env"}
    )
    assert ok.status_code == 200 and ok.headers["x-ratelimit-limit"] == "7"
    default_key = {"X-API-Key": "pk_test_momoflow:sk_test_momoflow"}
    assert httpx.get(f"{url}/api/v1/payments/balance", headers=default_key).status_code == 401
    config = httpx.get(f"{url}/_sandbox/config").json()
    assert config["settle_delay"] == 0.5
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 0


def test_cli_flag_wins_over_env(processes: list[subprocess.Popen[str]]) -> None:
    env = {"CAURISFLUX_SANDBOX_SETTLE_DELAY": "9"}
    proc = _spawn("caurisflux", "--port", "0", "--settle-delay", "0.25", env=env)
    processes.append(proc)
    url = _ready_url(proc)
    assert httpx.get(f"{url}/_sandbox/config").json()["settle_delay"] == 0.25
    proc.terminate()
    assert proc.wait(timeout=10) == 0


def test_cli_refuses_a_taken_port(processes: list[subprocess.Popen[str]]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _spawn("caurisflux", "--port", str(port))
        processes.append(proc)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert stderr.strip().count("\n") == 0
    assert "already in use" in stderr and str(port) in stderr
    assert time.monotonic() - started < 15
