"""Fixed-window rate limiting per key (typically per API key)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .core import Clock

__all__ = ["FixedWindowRateLimiter", "RateDecision"]


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one request against the limiter, with what the headers should say."""

    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int
    retry_after: int


class FixedWindowRateLimiter:
    """``limit`` requests per ``window`` seconds of real time, per key.

    A key's window opens at its first request (not at a wall-clock minute boundary), so a
    burst is judged the same way whenever it starts; this keeps tests deterministic. A limit
    of 0 means unlimited, and :meth:`hit` then returns None. Rejected requests count too.
    """

    def __init__(self, clock: Clock, *, limit: int, window: float = 60.0) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> RateDecision | None:
        """Count one request for ``key`` and decide whether it may proceed."""
        if self.limit <= 0:
            return None
        now = self._clock.now()
        start, count = self._windows.get(key, (now, 0))
        if now >= start + self.window:
            start, count = now, 0
        count += 1
        self._windows[key] = (start, count)
        reset = start + self.window
        return RateDecision(
            allowed=count <= self.limit,
            limit=self.limit,
            remaining=max(0, self.limit - count),
            reset_epoch=math.ceil(reset),
            retry_after=max(1, math.ceil(reset - now)),
        )

    def clear(self) -> None:
        """Forget every window."""
        self._windows.clear()
