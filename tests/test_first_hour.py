"""A newcomer's first hour, exactly as the README and docs/campaigns.md tell it.

``./scripts/dev`` from the root of a fresh checkout, with no ``MOMOFLOW_*`` variable, the
default state directory (``.momoflow``, relative) and the default ports; then a campaign of
21 lines with the demo merchant's key: ``submit``, ``problems``, ``approve``, ``watch``,
``report``; then Ctrl-C. The checkout is a copy of this repository's files (so that a
developer's own ``.momoflow`` is left alone) sharing this repository's ``.venv``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from momoflow.processes import port_in_use
from momoflow.settings import DEV_API_KEY

REPO = Path(__file__).resolve().parents[1]

#: The ports ``momoflow dev`` uses by default.
DEFAULT_PORTS = {
    "Temporal gRPC": 7233,
    "Temporal UI": 8233,
    "gateway": 8000,
    "CaurisFlux sandbox": 8101,
    "NovaSend sandbox": 8102,
    "MOBILE-PAY sandbox": 8103,
    "PostgreSQL": 5433,
}
SANDBOX_LEDGERS = [f"http://127.0.0.1:{port}/_sandbox/ledger" for port in (8101, 8102, 8103)]
CAMPAIGN = "FIRST-HOUR-1"
#: The test's whole budget; the stack and the campaign need well under it.
BUDGET_S = 170.0


def _campaign_file() -> tuple[str, dict[str, str], dict[str, str]]:
    """The CSV, its valid lines (reference -> provider) and its invalid lines (reference
    -> the rule pre-flight must name). Phone numbers end in digits that every sandbox
    pays (docs/sandbox-*.md: "anything else" / "other")."""
    header = "reference,provider,country,operator,phone,name,amount,currency,description"
    rows = [header]
    valid: dict[str, str] = {}
    lines = (
        [("caurisflux", "SN", ("wave", "orange_money")[i % 2], f"+2217712345{10 + 7 * i}", "XOF")
         for i in range(7)]
        + [("novasend", "CI", ("wave", "mtn_momo")[i % 2], f"+22507012345{10 + 7 * i}", "XOF")
           for i in range(4)]
        + [("novasend", "CM", "mtn_momo", f"+2376770012{10 + 7 * i}", "XAF") for i in range(2)]
        + [("mobilepay", "CI", "orange_money", f"+22505012345{10 + 7 * i}", "XOF")
           for i in range(6)]
    )  # fmt: skip
    for number, (provider, country, operator, phone, currency) in enumerate(lines, start=1):
        reference = f"FH-{number:02d}"
        valid[reference] = provider
        amount = 1000 + 250 * number
        rows.append(
            f"{reference},{provider},{country},{operator},{phone},Supplier {number},"
            f"{amount},{currency},first hour {number}"
        )
    invalid = {"FH-20": "number_in_country", "FH-21": "whole_number"}
    rows.append("FH-20,caurisflux,SN,wave,+2250701234567,Wrong Country,5000,XOF,")
    rows.append('FH-21,caurisflux,SN,wave,+221771234599,Bad Amount,"5 000,50",XOF,')
    return "\n".join(rows) + "\n", valid, invalid


# ------------------------------------------------------------------ processes


def _children(pid: int) -> dict[int, int]:
    """Every process's parent, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (2nd field) may hold spaces and parentheses: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def _descendants(pid: int) -> set[int]:
    """The processes started, directly or not, by ``pid``."""
    parents = _children(pid)
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_groups(pids: set[int]) -> None:
    """SIGKILL the process group of each pid (the stack starts each child in its own),
    never this test's own group."""
    ours = os.getpgrp()
    for pid in pids:
        try:
            group = os.getpgid(pid)
            if group != ours:
                os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class _Output:
    """The stack's output, read line by line in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def join(self) -> None:
        """Wait for the last line (the stack has exited), then close the pipe."""
        self._thread.join(timeout=10)
        if not self._thread.is_alive() and self._proc.stdout is not None:
            self._proc.stdout.close()

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, needle: str, *, deadline: float) -> None:
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return
            if self._proc.poll() is not None:
                self._thread.join(timeout=5)
                pytest.fail(f"the stack exited with {self._proc.returncode}:\n{self.tail()}")
            time.sleep(0.2)
        pytest.fail(f"{needle!r} not printed in time:\n{self.tail()}")

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.lines[-lines:])


# ------------------------------------------------------------------ the checkout


def _checkout(root: Path) -> Path:
    """A copy of the repository's files (tracked, and new ones not ignored) with this
    repository's ``.venv`` linked in."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    copy = root / "momoflow"
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if not source.exists():  # deleted in the working tree, not yet in git
            continue
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    (copy / ".venv").symlink_to(REPO / ".venv")
    return copy


def _check_venv_is_installed() -> None:
    """``scripts/_venv.sh`` installs into ``.venv`` when ``pyproject.toml`` changed since the
    last install; in the copy that would re-point the shared editable install at a
    temporary directory, so refuse to start instead."""
    want = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    stamps = [REPO / ".venv" / ".momoflow-installed", REPO / ".venv" / ".momoflow-installed-test"]
    if not any(p.is_file() and p.read_text().strip() == want for p in stamps):
        pytest.fail(
            ".venv is not installed for the current pyproject.toml: run ./scripts/test (or "
            "./scripts/dev) once, then this test"
        )


def _newcomer_env() -> dict[str, str]:
    """The environment of someone who just cloned the repository: no momoflow settings,
    output to a pipe (no terminal size either)."""
    drop = ("MOMOFLOW_", "VIRTUAL_ENV", "COLUMNS", "LINES", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    taken = [f"{name} port {port}" for name, port in DEFAULT_PORTS.items() if port_in_use(port)]
    if taken:
        pytest.fail(
            f"default {', '.join(taken)} already in use: this test runs ./scripts/dev on the "
            "default ports, as a newcomer does; stop what holds them (a `momoflow dev`?)"
        )
    _check_venv_is_installed()
    yield _checkout(tmp_path)


# ------------------------------------------------------------------ the test


def test_first_hour_of_a_newcomer(checkout: Path) -> None:
    started = time.monotonic()
    deadline = started + BUDGET_S
    env = _newcomer_env()
    stack = subprocess.Popen(
        ["./scripts/dev"],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    output = _Output(stack)
    family: set[int] = set()
    try:
        output.wait_for("press Ctrl-C to stop", deadline=started + 120)
        family = _descendants(stack.pid)
        assert "installing momoflow" not in output.text()
        # The banner's example is one line that can be copied whole.
        tries = [line for line in output.lines if line.startswith("try: curl ")]
        assert len(tries) == 1, output.tail()
        assert tries[0].endswith('"amount":5000,"currency":"XOF"}\''), tries[0]

        _campaign(checkout, env, deadline)

        stack.send_signal(signal.SIGINT)
        rc = stack.wait(timeout=45)
        output.join()
    except BaseException:
        family |= _descendants(stack.pid) if stack.poll() is None else set()
        _kill_groups(family | {stack.pid})
        raise
    finally:
        if stack.poll() is None:
            _kill_groups(_descendants(stack.pid) | family | {stack.pid})
            stack.wait(timeout=10)
        output.join()
        # The .venv link must not lead pytest's tmp_path cleanup into the real .venv.
        (checkout / ".venv").unlink(missing_ok=True)

    assert rc == 0, output.tail()
    assert "stopped." in output.lines[-3:], output.tail()
    left = {pid for pid in family if _alive(pid)}
    if left:
        _kill_groups(left)
    assert not left, f"processes left behind after Ctrl-C: {sorted(left)}"
    busy = [f"{name} {port}" for name, port in DEFAULT_PORTS.items() if port_in_use(port)]
    assert not busy, f"ports still held after Ctrl-C: {busy}"
    # The newcomer's state is where the README says, in the checkout.
    assert (checkout / ".momoflow" / "temporal.db").is_file()
    assert (checkout / ".momoflow" / "logs" / "worker.log").is_file()
    assert time.monotonic() - started < BUDGET_S + 30


def _campaign(root: Path, stack_env: dict[str, str], deadline: float) -> None:
    """docs/campaigns.md's five commands, with the demo merchant's key."""
    text, valid, invalid = _campaign_file()
    (root / "first-hour.csv").write_text(text)
    env = {**stack_env, "MOMOFLOW_API_KEY": DEV_API_KEY}
    momoflow = str(root / ".venv" / "bin" / "momoflow")

    def run(*args: str) -> str:
        """``momoflow campaign ARGS``: must succeed; its standard output."""
        left = deadline - time.monotonic()
        assert left > 0, "out of time"
        done = subprocess.run(
            [momoflow, "campaign", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=left,
        )
        said = done.stdout + done.stderr
        assert done.returncode == 0, f"campaign {' '.join(args)}: rc {done.returncode}\n{said}"
        return done.stdout

    submitted = run("submit", "first-hour.csv", "--reference", CAMPAIGN, "--name", "First hour")
    assert "21 lines" in submitted, submitted

    # Pre-flight takes a moment; the CLI says so and the newcomer asks again.
    while "has not finished yet" in (problems := run("problems", CAMPAIGN)):
        time.sleep(1)
    for reference, rule in invalid.items():
        assert reference in problems and rule in problems, problems
    for reference in valid:
        assert reference not in problems, problems

    run("approve", CAMPAIGN, "--by", "A Newcomer")
    watched = run("watch", CAMPAIGN, "--interval", "1")
    assert f"Campaign {CAMPAIGN} completed" in watched, watched
    assert f"{len(valid)} succeeded" in watched and f"{len(invalid)} invalid" in watched, watched

    report = list(csv.DictReader(io.StringIO(run("report", CAMPAIGN))))
    statuses = {row["reference"]: row["status"] for row in report}
    assert statuses == {**dict.fromkeys(valid, "succeeded"), **dict.fromkeys(invalid, "invalid")}

    # Each paid line moved money exactly once, at its provider, and nowhere else.
    entries: dict[str, list[tuple[str, int]]] = {}
    with httpx.Client(timeout=10) as http:
        for ledger in SANDBOX_LEDGERS:
            for transfer in http.get(ledger).raise_for_status().json()["transfers"]:
                entries.setdefault(transfer["externalReference"], []).append(
                    (ledger, transfer["executions"])
                )
    for reference, provider in valid.items():
        found = entries.get(f"payout-demo-{reference}", [])
        port = {"caurisflux": 8101, "novasend": 8102, "mobilepay": 8103}[provider]
        assert found == [(f"http://127.0.0.1:{port}/_sandbox/ledger", 1)], (reference, found)
    for reference in invalid:
        assert f"payout-demo-{reference}" not in entries
