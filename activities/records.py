"""The activity that writes a transaction's state to the record store.

A workflow calls it at each state change that matters (``workflows/base.py``). The write is
idempotent and ordered by the workflow's own sequence number (:meth:`RecordStore.write`), so
Temporal may retry it as often as it likes. While PostgreSQL is down every attempt fails
with a retryable ``RecordStoreUnavailable`` and the workflow's retry policy keeps trying
until it is back; the workflow goes on moving money meanwhile.

Errors name the failure's class and the transaction, never a URL (which may hold a
password) or the state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from momoflow.contract import CLAIM_TRANSACTION_ACTIVITY, RECORD_TRANSACTION_ACTIVITY
from momoflow.records.store import RecordStore, is_unavailable
from momoflow.records.writes import RecordClaim, RecordWrite

#: ``ApplicationError`` type of a write that failed because PostgreSQL did not answer.
RECORD_STORE_UNAVAILABLE = "RecordStoreUnavailable"
#: ``ApplicationError`` type of a write the store refused (no retry can cure it).
RECORD_REFUSED = "RecordRefused"


class RecordActivities:
    """Holds the process's record store."""

    def __init__(self, store: RecordStore) -> None:
        self._store = store

    @activity.defn(name=RECORD_TRANSACTION_ACTIVITY)
    async def record_transaction(self, write: RecordWrite) -> bool:
        """Apply ``write``; True when it was newer than the record."""
        workflow_id = write.state.get("workflow_id", "?")
        try:
            return await self._store.write(write)
        except Exception as exc:
            raise _failure(exc, str(workflow_id)) from None

    @activity.defn(name=CLAIM_TRANSACTION_ACTIVITY)
    async def claim_transaction(self, claim: RecordClaim) -> bool:
        """Claim a campaign line's reference for its run; False when another transaction
        holds it (see :meth:`RecordStore.claim_run`)."""
        workflow_id = str(claim.state.get("workflow_id", "?"))
        actor = f"campaign:{claim.campaign}" if claim.campaign else "workflow"
        try:
            return await self._store.claim_run(claim, actor=actor)
        except Exception as exc:
            raise _failure(exc, workflow_id) from None

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for a worker's registration."""
        return [self.record_transaction, self.claim_transaction]


def _failure(exc: Exception, workflow_id: str) -> ApplicationError:
    """The retryable or final error of a failed store call (names no URL, no state)."""
    if is_unavailable(exc):
        return ApplicationError(
            f"the record store did not answer ({type(exc).__name__}) for {workflow_id}; retrying",
            type=RECORD_STORE_UNAVAILABLE,
        )
    return ApplicationError(
        f"the record store refused the write of {workflow_id} ({type(exc).__name__})",
        type=RECORD_REFUSED,
        non_retryable=True,
    )
