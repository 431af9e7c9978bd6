"""``momoflow db upgrade``: bring the record store's schema to a revision with Alembic."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = ["HEAD", "alembic_config", "current_revision", "run_db_upgrade", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "head"


def alembic_config(url: str) -> Config:
    """Alembic's configuration for ``url``, built in code (no ``alembic.ini``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = HEAD) -> None:
    """Migrate the database at ``url`` up to ``revision``; idempotent. Runs its own event
    loop: call it from synchronous code (the CLI, a test's set-up)."""
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest revision this momoflow knows."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None: never migrated)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def run_db_upgrade(env: Mapping[str, str], log_path: Path, *, timeout: float = 120) -> None:
    """Run ``momoflow db upgrade`` (the command operators run) as a child process with
    ``env``; ``ProcessError`` with its output when it fails."""
    from momoflow.processes import ManagedProcess, ProcessError

    migration = ManagedProcess(
        "db-upgrade",
        [sys.executable, "-m", "momoflow.cli", "db", "upgrade"],
        log_path=log_path,
        env=env,
    ).start()
    assert migration.proc is not None
    try:
        code = migration.proc.wait(timeout=timeout)
    finally:
        migration.stop()
    if code != 0:
        raise ProcessError(f"momoflow db upgrade failed ({code}):\n{migration.tail()}")
