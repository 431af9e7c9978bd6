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

from temporalio import activity
from temporalio.exceptions import ApplicationError

from momoflow.contract import RECORD_TRANSACTION_ACTIVITY
from momoflow.records.store import RecordStore, is_unavailable
from momoflow.records.writes import RecordWrite

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
            if is_unavailable(exc):
                raise ApplicationError(
                    f"the record store did not answer ({type(exc).__name__}) writing "
                    f"{workflow_id}; retrying",
                    type=RECORD_STORE_UNAVAILABLE,
                ) from None
            raise ApplicationError(
                f"the record store refused the write of {workflow_id} ({type(exc).__name__})",
                type=RECORD_REFUSED,
                non_retryable=True,
            ) from None
