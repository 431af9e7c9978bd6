"""Heartbeats for activities whose work has no natural steps to report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity


@contextlib.asynccontextmanager
async def heartbeating(every_s: float) -> AsyncIterator[None]:
    """Heartbeat the running activity every ``every_s`` seconds while the block runs.

    With a heartbeat timeout on the activity, Temporal notices a worker that died mid-call
    after that timeout instead of after the whole start-to-close timeout.
    """

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
