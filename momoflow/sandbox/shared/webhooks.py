"""Webhook delivery: background POSTs with retries, fault hooks and a delivery log.

A :class:`Delivery` is one event for one URL. Its body bytes and id are fixed when it is
prepared; every attempt (first try, retries, a duplicate) sends those same bytes, with
headers rebuilt by the simulator's ``HeaderBuilder`` at the time of the attempt (so a
signature over a timestamp is recomputed while the body never changes).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .core import Clock, TaskSupervisor, iso_timestamp
from .faults import FaultRegistry

__all__ = ["Delivery", "DeliveryAttempt", "HeaderBuilder", "WebhookDispatcher"]


@dataclass
class DeliveryAttempt:
    """One HTTP POST of a delivery."""

    at: str
    status_code: int | None
    error: str | None
    duplicate: bool = False


@dataclass
class Delivery:
    """One event to deliver to one URL, and what happened to it."""

    id: str
    event: str
    url: str
    body: bytes
    transaction_id: str | None
    created_at: str
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    delivered: bool = False
    given_up: bool = False
    dropped: bool = False
    duplicate: bool = False

    @property
    def last_status(self) -> int | None:
        """HTTP status of the latest attempt (None: no attempt or no response)."""
        return self.attempts[-1].status_code if self.attempts else None

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "deliveryId": self.id,
            "event": self.event,
            "url": self.url,
            "transactionId": self.transaction_id,
            "createdAt": self.created_at,
            "attempts": len(self.attempts),
            "lastStatus": self.last_status,
            "delivered": self.delivered,
            "givenUp": self.given_up,
            "dropped": self.dropped,
            "duplicated": self.duplicate,
            "attemptLog": [
                {
                    "at": a.at,
                    "statusCode": a.status_code,
                    "error": a.error,
                    "duplicate": a.duplicate,
                }
                for a in self.attempts
            ],
        }


#: Builds the headers of one attempt from the delivery and the attempt's Unix timestamp.
HeaderBuilder = Callable[[Delivery, int], Mapping[str, str]]


def _any_2xx(status_code: int) -> bool:
    return 200 <= status_code < 300


class WebhookDispatcher:
    """Sends deliveries in the background with one shared ``httpx.AsyncClient``.

    A non-2xx answer (or one ``is_success`` rejects) or a connection error is retried
    after each delay of ``retry_schedule`` (simulated seconds, compressed by the clock's
    ``time_scale``); when the schedule is exhausted the delivery is given up. Webhook faults
    are consumed here: ``drop_webhooks`` and ``duplicate_webhooks``. Ordering
    (``reorder_webhooks``) is the simulator's business: :meth:`dispatch` sends the first
    attempts of the deliveries it is given in that order.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        tasks: TaskSupervisor,
        faults: FaultRegistry,
        headers: HeaderBuilder,
        retry_schedule: Sequence[float],
        timeout: float = 5.0,
        id_prefix: str = "whd_",
        max_log: int = 50_000,
        is_success: Callable[[int], bool] | None = None,
    ) -> None:
        self._clock = clock
        self._is_success = is_success or _any_2xx
        self._tasks = tasks
        self._faults = faults
        self._headers = headers
        self.retry_schedule: tuple[float, ...] = tuple(retry_schedule)
        self._timeout = timeout
        self._id_prefix = id_prefix
        self._log: deque[Delivery] = deque(maxlen=max_log)
        self._client: httpx.AsyncClient | None = None
        self._tails: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Open the shared HTTP client (call from the app's lifespan)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)

    async def close(self) -> None:
        """Close the shared HTTP client (background tasks must be cancelled first)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def prepare(
        self, *, url: str, event: str, body: bytes, transaction_id: str | None = None
    ) -> Delivery:
        """Create and log a delivery without sending it."""
        delivery = Delivery(
            id=self._id_prefix + secrets.token_hex(12),
            event=event,
            url=url,
            body=body,
            transaction_id=transaction_id,
            created_at=iso_timestamp(self._clock.now()),
        )
        self._log.append(delivery)
        return delivery

    def dispatch(self, *deliveries: Delivery, order_key: str | None = None) -> None:
        """Send ``deliveries`` in the background, first attempts in the given order.

        Dispatches that share an ``order_key`` (e.g. a transaction id) make their first
        attempts in dispatch order, even when the simulated delay between them is zero;
        retries are not ordered, as with a real provider.
        """
        if not deliveries:
            return
        previous = self._tails.get(order_key) if order_key is not None else None
        task = self._tasks.spawn(self._run_chain(deliveries, tuple(self.retry_schedule), previous))
        if order_key is not None:
            self._tails[order_key] = task
            task.add_done_callback(lambda done: self._forget_tail(order_key, done))

    def _forget_tail(self, order_key: str, task: asyncio.Task[None]) -> None:
        if self._tails.get(order_key) is task:
            del self._tails[order_key]

    def deliveries(self) -> list[Delivery]:
        """The delivery log, oldest first."""
        return list(self._log)

    def clear(self) -> None:
        """Forget the delivery log (cancel the background tasks first)."""
        self._log.clear()
        self._tails.clear()

    async def _run_chain(
        self,
        deliveries: Sequence[Delivery],
        schedule: tuple[float, ...],
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        for delivery in deliveries:
            if self._faults.take_webhook("drop_webhooks") is not None:
                delivery.dropped = True
                continue
            if self._faults.take_webhook("duplicate_webhooks") is not None:
                delivery.duplicate = True
            await self._attempt(delivery)
            if delivery.delivered:
                await self._after_success(delivery)
            else:
                self._tasks.spawn(self._retry(delivery, schedule))

    async def _retry(self, delivery: Delivery, schedule: tuple[float, ...]) -> None:
        for delay in schedule:
            await self._clock.sleep(delay)
            await self._attempt(delivery)
            if delivery.delivered:
                await self._after_success(delivery)
                return
        delivery.given_up = True

    async def _after_success(self, delivery: Delivery) -> None:
        if delivery.duplicate:
            await self._attempt(delivery, duplicate=True)

    async def _attempt(self, delivery: Delivery, *, duplicate: bool = False) -> None:
        if self._client is None:
            await self.start()
        assert self._client is not None
        timestamp = int(self._clock.now())
        headers = dict(self._headers(delivery, timestamp))
        at = iso_timestamp(self._clock.now())
        try:
            response = await self._client.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            delivery.attempts.append(
                DeliveryAttempt(
                    at=at,
                    status_code=None,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                    duplicate=duplicate,
                )
            )
            return
        delivery.attempts.append(
            DeliveryAttempt(
                at=at, status_code=response.status_code, error=None, duplicate=duplicate
            )
        )
        if not duplicate and self._is_success(response.status_code):
            delivery.delivered = True
