"""An embedded PostgreSQL 16 for ``momoflow dev`` and the tests, from the ``pgserver`` wheel.

Only the wheel's binaries are used: the server runs as one of momoflow's managed processes
(:class:`~momoflow.processes.ManagedProcess`), listening on loopback TCP, so that a test can
kill and restart it like any other part. PostgreSQL refuses to run as root; as root, the data
directory is given to the system user ``pgserver`` (created when missing, as the wheel does)
and the server runs as that user.

Deployments do not use this: they set ``MOMOFLOW_DATABASE__URL`` to their own PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import pwd
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from momoflow.processes import ManagedProcess, ProcessError, tcp_ready

__all__ = ["EmbeddedPostgres"]

#: The system user the server runs as when momoflow runs as root.
SYSTEM_USER = "pgserver"
#: The database the embedded server's URL names (created by ``initdb``).
DATABASE = "postgres"


#: What to do where the pgserver wheel does not exist (it covers x86-64 Linux and macOS).
NO_WHEEL = (
    "no embedded PostgreSQL on this platform (the pgserver wheel covers x86-64 Linux and "
    "macOS): set MOMOFLOW_DATABASE__URL to a PostgreSQL 14 or newer"
)


def _bin_dir() -> Path:
    # pgserver reads a platform directory at import and warns when XDG_RUNTIME_DIR is unset;
    # only its binaries are used here.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise ProcessError(NO_WHEEL) from None
    return Path(POSTGRES_BIN_PATH)


def _utils() -> object:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver import utils
    except ImportError:
        raise ProcessError(NO_WHEEL) from None
    return utils


@dataclass
class EmbeddedPostgres:
    """One embedded server: its data directory and its loopback port.

    ``durable=False`` turns ``fsync`` off: a killed server loses nothing (the operating
    system still holds its writes), only a machine crash could. The tests use it.
    """

    data_dir: Path
    port: int
    durable: bool = True

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server's database (no password: trust on loopback)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def prepare(self) -> None:
        """Create the data directory with ``initdb`` the first time; idempotent."""
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = None
        if self._as_root:
            utils = _utils()
            utils.ensure_user_exists(SYSTEM_USER)  # type: ignore[attr-defined]
            utils.ensure_prefix_permissions(self.data_dir)  # type: ignore[attr-defined]
            bins = _bin_dir()
            utils.ensure_prefix_permissions(bins)  # type: ignore[attr-defined]
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            self.data_dir.chmod(0o700)
            user = SYSTEM_USER
        if (self.data_dir / "PG_VERSION").exists():
            return
        done = subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=utf8",
                "--no-instructions",
                "-U",
                "postgres",
            ],
            capture_output=True,
            text=True,
            user=user,
            timeout=120,
        )
        if done.returncode != 0:
            raise ProcessError(
                f"initdb failed in {self.data_dir} ({done.returncode}):\n"
                f"{(done.stdout + done.stderr).strip()[-2000:]}"
            )

    def server_argv(self) -> list[str]:
        """The ``postgres`` command line (loopback TCP only, no Unix socket)."""
        argv = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir.resolve()),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            # No Unix socket: loopback TCP only, and no socket file to clean up.
            "-k",
            "",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        return argv

    def process(self, log_path: Path) -> ManagedProcess:
        """The server as a managed process. Its command is this module's launcher
        (``python -m momoflow.records.embedded``): every start, a restart too, prepares the
        data directory (and, as root, the way to it: pytest closes its base directory again
        at each session's start) before it becomes ``postgres``."""
        argv = [
            sys.executable,
            "-m",
            "momoflow.records.embedded",
            "--data-dir",
            str(self.data_dir.resolve()),
            "--port",
            str(self.port),
        ]
        if not self.durable:
            argv.append("--not-durable")
        return ManagedProcess(
            "postgres", argv, log_path=log_path, ready=tcp_ready("127.0.0.1", self.port)
        )


def main(args: list[str] | None = None) -> None:
    """The launcher: prepare the data directory, then become the server (as the system
    user ``pgserver`` when started as root), keeping this process id."""
    parser = argparse.ArgumentParser(description="momoflow's embedded PostgreSQL")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--not-durable", action="store_true")
    parsed = parser.parse_args(args)
    server = EmbeddedPostgres(parsed.data_dir, parsed.port, durable=not parsed.not_durable)
    server.prepare()
    argv = server.server_argv()
    sys.stdout.flush()
    if server._as_root:
        entry = pwd.getpwnam(SYSTEM_USER)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
