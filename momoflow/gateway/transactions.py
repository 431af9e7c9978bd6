"""What the payout and payin endpoints share: error answers and reading a transaction's
state, at once or as a long-poll (starting one is :mod:`momoflow.operations`, shared with
the Python client).

A read starts at the record store (:mod:`momoflow.records`). A final record is the answer:
no worker, not even Temporal, is needed, and it stays readable after Temporal's retention
has deleted the workflow. A transaction still moving is also read live from its workflow
(the ``state`` query, for at most a second when the store holds it), and the newer of the
two answers; when no worker answers, the record does.

A long-poll (``GET …?wait_s=N``) holds the request until the state is worth answering, at
the latest ``N`` seconds. It is server-side polling: the workflow's state query is read
again after 0.25 s, then 0.5 s, 1 s, and every 2 s, until the record store can notify a
change. Each read is one short query task on a worker, so no worker slot is held while a
request waits, and the wait ends as soon as the caller disconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import HTTPException, Query, Request, status
from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from momoflow.contract import STATE_QUERY
from momoflow.gateway.deps import TemporalConnection, records_unavailable
from momoflow.models import TransactionState, TransactionStatus
from momoflow.operations import RecordsUnavailable, ReferenceInUse
from momoflow.records.store import RecordStore, StoredRecord, is_unavailable
from momoflow.records.writes import Kind

log = logging.getLogger("momoflow.gateway")

#: How long a read waits for a worker to answer the ``state`` query.
QUERY_TIMEOUT_S = 5.0
#: The same, when the record store holds the transaction and can answer instead.
RECORDED_QUERY_TIMEOUT_S = 1.0
#: The longest ``wait_s`` a read accepts (seconds).
MAX_WAIT_S = 60.0
#: A long-poll reads the state again after this, then twice as long each time, up to
#: ``LONG_POLL_MAX_DELAY_S`` (seconds).
LONG_POLL_FIRST_DELAY_S = 0.25
LONG_POLL_MAX_DELAY_S = 2.0

StateT = TypeVar("StateT", bound=BaseModel)

WaitSeconds = Annotated[
    float | None,
    Query(
        gt=0,
        le=MAX_WAIT_S,
        description="Long-poll: hold the answer up to this many seconds (0 < wait_s <= 60) "
        "until the state is worth answering (see `while_status`); without it, answer at once",
    ),
]
WhileStatus = Annotated[
    TransactionStatus | None,
    Query(
        description="With `wait_s`: answer as soon as the status is no longer this one "
        "(typically the status you last saw); without it, as soon as the transaction is "
        "settled (a final status, or `reconciling`)",
    ),
]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    409: {"description": "The reference was already used with a different request"},
    422: {"description": "Invalid request: every broken rule is listed, nothing was started"},
    503: {"description": "Temporal or the record store unreachable, or no worker answered; retry"},
}


def start_refused_unavailable(exc: RecordsUnavailable) -> HTTPException:
    """503 for a start refused because the record store cannot be reached."""
    return records_unavailable(str(exc))


@dataclass(frozen=True)
class Source:
    """Where one transaction's state is read: its record, then its workflow."""

    temporal: TemporalConnection
    store: RecordStore
    kind: Kind
    merchant: str
    reference: str
    workflow_id: str


def reference_conflict(exc: ReferenceInUse) -> HTTPException:
    """409 for a reference already used with another request."""
    return HTTPException(
        status.HTTP_409_CONFLICT, detail={"error": "reference_conflict", "message": str(exc)}
    )


async def read_state(
    source: Source,
    state_type: type[StateT],
    *,
    what: str,
    query: str = STATE_QUERY,
) -> StateT:
    """The transaction's state: its final record, else the newer of its record and its
    workflow's live state (see the module docstring)."""
    snapshot = await _snapshot(source, state_type, what, query)
    return snapshot.state


@dataclass(frozen=True)
class _Snapshot(Generic[StateT]):
    state: StateT
    #: False once the state cannot change any more (final, or its workflow closed).
    running: bool
    #: The workflow run that answered (None for a record's answer).
    run_id: str | None = None


async def _record(source: Source) -> tuple[StoredRecord | None, bool]:
    """The transaction's record (None when the store has none, or only the claim of a
    start still under way), and whether the store answered."""
    try:
        record = await source.store.get(source.kind, source.merchant, source.reference)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("%s: record store unavailable for a read (%s)", source.workflow_id, exc)
        return None, False
    if record is None or not record.started:
        return None, True
    return record, True


async def _snapshot(
    source: Source, state_type: type[StateT], what: str, query: str
) -> _Snapshot[StateT]:
    record, store_answered = await _record(source)
    recorded = state_type.model_validate(record.state) if record is not None else None
    if record is not None and recorded is not None and record.status.is_final:
        return _Snapshot(recorded, running=False)
    try:
        client = await source.temporal.get()
        live = await _live(
            client,
            source.workflow_id,
            state_type,
            what,
            source.reference,
            query,
            timeout=RECORDED_QUERY_TIMEOUT_S if recorded is not None else QUERY_TIMEOUT_S,
        )
    except HTTPException as exc:
        if recorded is not None:
            # Deleted from Temporal (retention), or no worker or server answered.
            return _Snapshot(recorded, running=exc.status_code != status.HTTP_404_NOT_FOUND)
        if exc.status_code == status.HTTP_404_NOT_FOUND and not store_answered:
            raise records_unavailable(f"the {what} cannot be looked up; retry shortly") from None
        raise
    if recorded is not None and record is not None:
        if record.run_id is not None and live.run_id not in (None, record.run_id):
            # Another run under the same id (a campaign line skipped because this record's
            # workflow was gone): the record is the transaction.
            return _Snapshot(recorded, running=False)
        if _newer(recorded, live.state):
            return _Snapshot(recorded, running=live.running)
    return live


def _newer(recorded: BaseModel, live: BaseModel) -> bool:
    """True when the record holds a later state than the live answer (a worker that lags)."""
    return bool(getattr(recorded, "updated_at") > getattr(live, "updated_at"))  # noqa: B009


async def _live(
    client: Client,
    workflow_id: str,
    state_type: type[StateT],
    what: str,
    reference: str,
    query: str,
    *,
    timeout: float,
) -> _Snapshot[StateT]:
    handle = client.get_workflow_handle(workflow_id, result_type=state_type)
    try:
        description = await handle.describe()
        running = description.status == WorkflowExecutionStatus.RUNNING
        if description.status == WorkflowExecutionStatus.COMPLETED:
            result: StateT = await handle.result()
            return _Snapshot(result, running=False)
        state = await asyncio.wait_for(handle.query(query, result_type=state_type), timeout=timeout)
        return _Snapshot(state, running=running)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found(what, reference) from None
        raise state_unavailable(what) from exc
    except TimeoutError:
        raise state_unavailable(what) from None


async def read_workflow_state(
    client: Client,
    workflow_id: str,
    state_type: type[StateT],
    *,
    what: str,
    reference: str,
    query: str = STATE_QUERY,
) -> StateT:
    """A workflow's state from Temporal alone (campaigns): its result once completed, else
    the live ``query``."""
    snapshot = await _live(
        client, workflow_id, state_type, what, reference, query, timeout=QUERY_TIMEOUT_S
    )
    return snapshot.state


async def read_workflow_state_waiting(
    request: Request,
    client: Client,
    workflow_id: str,
    state_type: type[StateT],
    *,
    what: str,
    reference: str,
    wait_s: float | None,
    ready: Callable[[StateT], bool],
    query: str = STATE_QUERY,
) -> StateT:
    """:func:`read_workflow_state` as a long-poll (see :func:`read_state_waiting`)."""

    async def read() -> _Snapshot[StateT]:
        return await _live(
            client, workflow_id, state_type, what, reference, query, timeout=QUERY_TIMEOUT_S
        )

    snapshot = await read()
    if wait_s is None or not snapshot.running or ready(snapshot.state):
        return snapshot.state
    return await _hold(request, read, snapshot, wait_s, ready, workflow_id)


def transaction_answers(
    while_status: TransactionStatus | None,
) -> Callable[[TransactionState], bool]:
    """When a transaction's long-poll answers: once its status is no longer
    ``while_status``, or, without one, once it is settled (final, or ``reconciling``)."""

    def ready(state: TransactionState) -> bool:
        if while_status is not None:
            return state.status is not while_status
        return state.status.is_final or state.status is TransactionStatus.RECONCILING

    return ready


async def read_state_waiting(
    request: Request,
    source: Source,
    state_type: type[StateT],
    *,
    what: str,
    wait_s: float | None,
    ready: Callable[[StateT], bool],
    query: str = STATE_QUERY,
) -> StateT:
    """:func:`read_state`, held up to ``wait_s`` seconds (None: answer at once) until
    ``ready(state)``; the state at the deadline otherwise. A closed workflow, or a caller
    that went away, ends the wait at once. A read that fails during the wait (no worker
    answered) keeps the last state and tries again; only the first read's errors are
    answered."""

    async def read() -> _Snapshot[StateT]:
        return await _snapshot(source, state_type, what, query)

    snapshot = await read()
    if wait_s is None or not snapshot.running or ready(snapshot.state):
        return snapshot.state
    return await _hold(request, read, snapshot, wait_s, ready, source.workflow_id)


async def _hold(
    request: Request,
    read: Callable[[], Awaitable[_Snapshot[StateT]]],
    snapshot: _Snapshot[StateT],
    wait_s: float,
    ready: Callable[[StateT], bool],
    workflow_id: str,
) -> StateT:
    started = time.monotonic()
    deadline = started + wait_s
    delay = LONG_POLL_FIRST_DELAY_S
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        while snapshot.running and not ready(snapshot.state):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.wait({gone}, timeout=min(delay, left))
            if gone.done():
                log.info(
                    "%s: the caller left its wait after %.1f s",
                    workflow_id,
                    time.monotonic() - started,
                )
                break
            delay = min(delay * 2, LONG_POLL_MAX_DELAY_S)
            try:
                snapshot = await read()
            except HTTPException as exc:
                if exc.status_code != status.HTTP_503_SERVICE_UNAVAILABLE:
                    raise
    finally:
        gone.cancel()
    return snapshot.state


async def _disconnected(request: Request) -> None:
    """Returns when the caller closes its connection. A GET has no body, so after its one
    empty ``http.request`` message the server sends nothing but ``http.disconnect``."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def not_found(what: str, reference: str) -> HTTPException:
    """404 for a reference the caller has no transaction for."""
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        detail={"error": "not_found", "message": f"no {what} with reference {reference!r}"},
    )


def state_unavailable(what: str) -> HTTPException:
    """503 when the transaction exists but no worker answered."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail={
            "error": "state_unavailable",
            "message": f"the {what} exists but no worker answered in time; retry shortly",
        },
        headers={"Retry-After": "2"},
    )
