"""The gateway's side of the per-merchant limits (:mod:`momoflow.merchant_limits`).

:class:`MerchantLimiter` admits each ``/v1`` request from tokens this replica leased from
the merchant's limits workflow, and takes a pre-flight slot for each new campaign. When
Temporal does not answer within ``MOMOFLOW_LIMITS__SHARED_TIMEOUT_S``, request limits are
counted by this replica alone for :data:`LOCAL_ONLY_S` (so each replica still holds the
limit; N replicas could admit N times it), and a campaign is refused with a 503: the
campaign could not run without Temporal anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow.campaigns.models import CampaignPhase
from momoflow.contract import (
    ACQUIRE_PREFLIGHT_UPDATE,
    LEASE_UPDATE,
    MERCHANT_LIMITS_WORKFLOW,
    RELEASE_PREFLIGHTS_UPDATE,
)
from momoflow.ids import limits_task_queue, merchant_limits_workflow_id
from momoflow.merchant_limits import (
    Lease,
    LeaseRequest,
    LimitsCarry,
    LimitsInput,
    SlotAnswer,
    SlotRequest,
    grant_requests,
    lease_size,
    retry_after_s,
)
from momoflow.settings import LimitSettings

log = logging.getLogger("momoflow.gateway.limits")

#: After the shared limits failed to answer, how long this replica counts alone before
#: it asks Temporal again.
LOCAL_ONLY_S = 30.0
#: A slot whose campaign does not exist yet is left alone this long: the request that
#: took it may still be starting the campaign.
STARTING_GRACE = timedelta(seconds=60)
#: ``Retry-After`` of a campaign refused because the merchant's pre-flights are busy.
PREFLIGHT_RETRY_AFTER_S = 30


class RateLimited(Exception):
    """The merchant sent more requests than its window allows."""

    def __init__(self, merchant: str, *, limit: int, window_s: int, retry_after_s: int) -> None:
        super().__init__(
            f"merchant {merchant} sent more than {limit} requests in {window_s} s; "
            f"retry after {retry_after_s} s"
        )
        self.limit = limit
        self.window_s = window_s
        self.retry_after_s = retry_after_s


class PreflightsBusy(Exception):
    """The merchant already has as many campaigns in pre-flight as it may."""

    def __init__(self, merchant: str, *, cap: int, holders: list[str]) -> None:
        super().__init__(
            f"merchant {merchant} already has {len(holders)} campaign(s) in pre-flight "
            f"({', '.join(holders)}), the most allowed at once ({cap}); nothing was started, "
            f"retry when one of them has finished pre-flight"
        )
        self.cap = cap
        self.holders = holders


class LimitsUnavailable(Exception):
    """The shared limits could not be asked (Temporal or the limits worker is down)."""


@dataclass
class _Bucket:
    """Tokens this replica holds for one merchant, valid until the window ends."""

    tokens: int = 0
    expires_at: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))
    #: The window was spent: refuse without asking again until then.
    refused_until: datetime | None = None
    limit: int = 0


class MerchantLimiter:
    """Per-merchant request limits and pre-flight slots for one gateway replica.

    **Parameters:**

    * **limits** - the deployment's :class:`~momoflow.settings.LimitSettings`.
    * **client** - returns the gateway's Temporal client (it may raise when Temporal cannot
      be reached).
    * **prefix** - the deployment's task-queue prefix (``MOMOFLOW_TASK_QUEUE_PREFIX``).
    """

    def __init__(
        self,
        limits: LimitSettings,
        client: Callable[[], Awaitable[Client]],
        *,
        prefix: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._limits = limits
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._local: dict[str, LimitsCarry] = {}
        self._local_until = 0.0

    # ------------------------------------------------------------------ requests

    async def admit(self, merchant: str) -> None:
        """Count one request of ``merchant``; raises :class:`RateLimited` over the limit."""
        if self._take(merchant):
            return
        async with self._locks.setdefault(merchant, asyncio.Lock()):
            if self._take(merchant):
                return
            bucket = self._buckets.setdefault(merchant, _Bucket())
            now = self._clock()
            limit = self._limits.requests_for(merchant)
            if bucket.refused_until is not None and now < bucket.refused_until:
                self._refuse(merchant, limit, bucket.refused_until, now)
            lease = await self._lease(merchant, limit)
            now = self._clock()
            if lease.granted == 0:
                bucket.refused_until, bucket.tokens = lease.window_ends_at, 0
                self._refuse(merchant, limit, lease.window_ends_at, now)
            bucket.tokens, bucket.expires_at = lease.granted - 1, lease.window_ends_at
            bucket.refused_until, bucket.limit = None, limit

    def _take(self, merchant: str) -> bool:
        bucket = self._buckets.get(merchant)
        if bucket is None or bucket.tokens <= 0 or self._clock() >= bucket.expires_at:
            return False
        bucket.tokens -= 1
        return True

    def _refuse(self, merchant: str, limit: int, until: datetime, now: datetime) -> None:
        raise RateLimited(
            merchant,
            limit=limit,
            window_s=self._limits.window_s,
            retry_after_s=retry_after_s(until, now),
        )

    async def _lease(self, merchant: str, limit: int) -> Lease:
        request = LeaseRequest(want=lease_size(limit), limit=limit, window_s=self._limits.window_s)
        if time.monotonic() >= self._local_until:
            try:
                lease: Lease = await self._update(merchant, LEASE_UPDATE, request, Lease)
                return lease
            except LimitsUnavailable as exc:
                self._local_until = time.monotonic() + LOCAL_ONLY_S
                log.warning(
                    "shared request limits unavailable (%s): this gateway counts requests "
                    "alone for %.0f s",
                    exc,
                    LOCAL_ONLY_S,
                )
        carry = self._local.setdefault(merchant, LimitsCarry())
        return grant_requests(carry, self._clock(), request)

    # ------------------------------------------------------------------ pre-flights

    async def hold_preflight(self, merchant: str, campaign_id: str) -> None:
        """Take a pre-flight slot for ``campaign_id``, freeing the slots of campaigns no
        longer in pre-flight first if none is free. Raises :class:`PreflightsBusy` or
        :class:`LimitsUnavailable`."""
        cap = self._limits.preflights_for(merchant)
        request = SlotRequest(campaign_id=campaign_id, cap=cap)
        answer: SlotAnswer = await self._update(
            merchant, ACQUIRE_PREFLIGHT_UPDATE, request, SlotAnswer
        )
        if answer.granted:
            return
        stale = [
            holder
            for holder, since in answer.holders.items()
            if not await self._still_in_preflight(holder, since)
        ]
        if stale:
            log.info("freeing pre-flight slots of %s: %s", merchant, ", ".join(stale))
            await self._update(merchant, RELEASE_PREFLIGHTS_UPDATE, stale, None)
            answer = await self._update(merchant, ACQUIRE_PREFLIGHT_UPDATE, request, SlotAnswer)
            if answer.granted:
                return
        raise PreflightsBusy(merchant, cap=cap, holders=sorted(answer.holders))

    async def _still_in_preflight(self, campaign_id: str, since: datetime) -> bool:
        """Whether the campaign holding a slot still needs it. Unsure means yes."""
        try:
            client = await self._client()
            description = await client.get_workflow_handle(campaign_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return self._clock() - since < STARTING_GRACE
            return True
        except Exception:
            return True
        if description.status != WorkflowExecutionStatus.RUNNING:
            return False
        phase = description.typed_search_attributes.get(sa.STATUS)
        return phase is None or phase == CampaignPhase.PREFLIGHT.value

    # ------------------------------------------------------------------ Temporal

    async def _update(self, merchant: str, update: str, arg: Any, result_type: Any) -> Any:
        """Run ``update`` on the merchant's limits workflow, starting it if needed."""
        try:
            # The RPC deadline ends a call no worker answers; the outer one also bounds
            # connecting to Temporal.
            return await asyncio.wait_for(
                self._update_with_start(merchant, update, arg, result_type),
                timeout=self._limits.shared_timeout_s + 1,
            )
        except TimeoutError as exc:
            raise LimitsUnavailable(
                f"no answer within {self._limits.shared_timeout_s + 1:g} s (is a worker polling "
                f"{limits_task_queue(self._prefix)}?)"
            ) from exc
        except Exception as exc:
            raise LimitsUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _update_with_start(
        self, merchant: str, update: str, arg: Any, result_type: Any
    ) -> Any:
        client = await self._client()
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            MERCHANT_LIMITS_WORKFLOW,
            LimitsInput(merchant=merchant),
            id=merchant_limits_workflow_id(merchant, self._prefix),
            task_queue=limits_task_queue(self._prefix),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"request limits and pre-flight slots of {merchant}",
        )
        return await client.execute_update_with_start_workflow(
            update,
            arg,
            start_workflow_operation=start,
            result_type=result_type,
            rpc_timeout=timedelta(seconds=self._limits.shared_timeout_s),
        )
