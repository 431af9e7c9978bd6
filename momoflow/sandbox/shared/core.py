"""Time, background tasks and serialization helpers shared by every simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

__all__ = ["Clock", "TaskSupervisor", "canonical_json", "compact_json", "iso_timestamp"]

logger = logging.getLogger(__name__)


class Clock:
    """Wall clock plus *simulated* delays compressed by ``time_scale``.

    Durations of the simulated world (settlement, expiry, webhook retry back-off) are given
    in nominal seconds and multiplied by ``time_scale`` before the simulator really waits:
    ``time_scale=0.01`` turns a 2 s settlement into 20 ms. Timestamps stay real (Unix epoch),
    because clients compare them with their own clocks (webhook timestamp tolerance,
    ``X-RateLimit-Reset``). Tests may subclass it to control ``now()``.
    """

    def __init__(self, *, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale

    @property
    def time_scale(self) -> float:
        """Factor applied to every simulated duration (1.0 = real time)."""
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        if value < 0:
            raise ValueError("time_scale must be >= 0")
        self._time_scale = value

    def now(self) -> float:
        """Current Unix time in seconds."""
        return time.time()

    def scaled(self, seconds: float) -> float:
        """Real seconds corresponding to ``seconds`` of simulated time."""
        return max(0.0, seconds) * self._time_scale

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of simulated time."""
        await asyncio.sleep(self.scaled(seconds))

    async def sleep_real(self, seconds: float) -> None:
        """Sleep for ``seconds`` of real time (fault delays are not compressed)."""
        await asyncio.sleep(max(0.0, seconds))


class TaskSupervisor:
    """Owns the background asyncio tasks of a simulator so they can be cancelled together.

    Tasks may be given a ``key`` (e.g. a transaction id) so that one of them can be replaced
    or cancelled individually, for instance when a settlement is forced through the control
    API.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._keyed: dict[str, asyncio.Task[None]] = {}
        self._key_of: dict[asyncio.Task[None], str] = {}

    def spawn(
        self, coro: Coroutine[Any, Any, None], *, key: str | None = None
    ) -> asyncio.Task[None]:
        """Start ``coro`` in the background; a previous task with the same key is cancelled."""
        if key is not None:
            self.cancel(key)
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        if key is not None:
            self._keyed[key] = task
            self._key_of[task] = key
        return task

    def cancel(self, key: str) -> None:
        """Cancel the task registered under ``key``, if any (never the calling task itself)."""
        task = self._keyed.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        key = self._key_of.pop(task, None)
        if key is not None and self._keyed.get(key) is task:
            del self._keyed[key]
        if not task.cancelled() and task.exception() is not None:
            logger.error("sandbox background task failed", exc_info=task.exception())

    @property
    def pending(self) -> int:
        """Number of tasks still running."""
        return len(self._tasks)

    async def cancel_all(self) -> None:
        """Cancel every task and wait until they have all finished."""
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._keyed.clear()
        self._key_of.clear()


def iso_timestamp(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``, as in ``2024-01-15T14:02:00.000Z``."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def compact_json(value: Any, *, ascii_only: bool = False) -> bytes:
    """Serialize like ``JSON.stringify``: no spaces, UTF-8, non-ASCII kept as is.

    ``ascii_only`` escapes non-ASCII characters as ``\\uXXXX`` instead, so that the bytes
    equal Python's ``json.dumps(value, separators=(",", ":"))``.
    """
    return json.dumps(
        value, ensure_ascii=ascii_only, separators=(",", ":"), allow_nan=False
    ).encode()


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys, used to fingerprint request bodies."""
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    ).encode()
