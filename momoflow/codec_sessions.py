"""Signing out of the codec ends the session everywhere, on every gateway replica.

An operator's browser session (``/codec/login``) is a signed cookie: any gateway that holds
the codec key can check it without shared state. Signing out must end it on the server too,
or a cookie captured before (a shared machine, another service on the same host) keeps
decrypting until it expires. The revocation list is shared state, kept in Temporal, which
every gateway already reaches: signing out starts the workflow :data:`REVOKED_SESSION_WORKFLOW`
(:func:`revoked_session_workflow_id` of the session), which lives until the session would
have expired; a gateway holds a session revoked when that workflow exists. Nothing else
is needed: no worker has to run for it, and the workflow's run timeout ends it even with
no worker at all.

A gateway caches what it learned: a revoked session for good, a valid one for
``refresh_s`` seconds (another replica's sign-out is seen within that delay). When
Temporal cannot be asked, a session is refused: a cookie is never trusted on faith.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from momoflow.contract import REVOKED_SESSION_WORKFLOW
from momoflow.ids import workflow_task_queue

#: How long a gateway trusts its last "not revoked" answer.
DEFAULT_REFRESH_S = 2.0


class RevokedSession(BaseModel):
    """The input of :data:`REVOKED_SESSION_WORKFLOW`: who signed out, and until when the
    session would have lasted (no secret: the session id is only hashed into the id)."""

    model_config = ConfigDict(extra="forbid")

    operator: str
    expires_at: datetime


class SessionsUnavailable(Exception):
    """Temporal cannot be asked whether a session was revoked (or told that it is)."""


def revoked_session_workflow_id(prefix: str, session_id: str) -> str:
    """``{prefix}-codec-session-revoked-{sha256(session id)[:32]}``."""
    digest = hashlib.sha256(session_id.encode()).hexdigest()[:32]
    return f"{prefix}-codec-session-revoked-{digest}"


class SessionRevocations:
    """Revoked codec sessions, shared by every gateway through Temporal.

    **Parameters:**

    * **client** - returns the gateway's Temporal client (it may raise when Temporal cannot
      be reached).
    * **prefix** - the deployment's task-queue prefix (``MOMOFLOW_TASK_QUEUE_PREFIX``).
    * **refresh_s** - how long a "not revoked" answer is trusted.
    """

    def __init__(
        self,
        client: Callable[[], Awaitable[Client]],
        *,
        prefix: str,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._refresh_s = refresh_s
        self._clock = clock
        #: session id -> (revoked, when learned)
        self._known: dict[str, tuple[bool, float]] = {}

    async def revoke(self, session_id: str, *, operator: str, expires: int) -> None:
        """Mark the session signed out until ``expires`` (Unix seconds), for every gateway.
        Raises :class:`SessionsUnavailable` when Temporal does not take it."""
        expires_at = datetime.fromtimestamp(expires, UTC)
        remaining = expires_at - datetime.now(UTC)
        try:
            client = await self._client()
            await client.start_workflow(
                REVOKED_SESSION_WORKFLOW,
                RevokedSession(operator=operator, expires_at=expires_at),
                id=revoked_session_workflow_id(self._prefix, session_id),
                task_queue=workflow_task_queue(self._prefix),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                # Ends by itself when the session would have expired, worker or not.
                execution_timeout=max(remaining, timedelta(seconds=1)) + timedelta(minutes=1),
                static_summary=f"codec session of {operator} signed out",
            )
        except Exception as exc:
            raise SessionsUnavailable(str(exc)) from exc
        self._known[session_id] = (True, self._clock())

    async def is_revoked(self, session_id: str) -> bool:
        """True when the session was signed out. Raises :class:`SessionsUnavailable` when
        Temporal cannot be asked (the caller refuses the session)."""
        now = self._clock()
        known = self._known.get(session_id)
        if known is not None and (known[0] or now - known[1] < self._refresh_s):
            return known[0]
        try:
            client = await self._client()
            await client.get_workflow_handle(
                revoked_session_workflow_id(self._prefix, session_id)
            ).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise SessionsUnavailable(str(exc)) from exc
            revoked = False
        except Exception as exc:
            raise SessionsUnavailable(str(exc)) from exc
        else:
            revoked = True
        self._forget_old(now)
        self._known[session_id] = (revoked, now)
        return revoked

    def _forget_old(self, now: float) -> None:
        # Valid sessions are asked again anyway; revoked ones expire within a day or so.
        if len(self._known) > 10_000:
            self._known = {sid: seen for sid, seen in self._known.items() if now - seen[1] < 86_400}
