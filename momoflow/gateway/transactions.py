"""What the payout and payin endpoints share: error answers and reading a transaction's
state (starting one is :mod:`momoflow.operations`, shared with the Python client)."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from fastapi import HTTPException, status
from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from momoflow.contract import STATE_QUERY
from momoflow.operations import ReferenceInUse

#: How long a read waits for a worker to answer the ``state`` query.
QUERY_TIMEOUT_S = 5.0

StateT = TypeVar("StateT", bound=BaseModel)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    409: {"description": "The reference was already used with a different request"},
    422: {"description": "Invalid request: every broken rule is listed, nothing was started"},
    503: {"description": "Temporal unreachable or no worker answered; retry"},
}


def reference_conflict(exc: ReferenceInUse) -> HTTPException:
    """409 for a reference already used with another request."""
    return HTTPException(
        status.HTTP_409_CONFLICT, detail={"error": "reference_conflict", "message": str(exc)}
    )


async def read_state(
    client: Client,
    workflow_id: str,
    state_type: type[StateT],
    *,
    what: str,
    reference: str,
    query: str = STATE_QUERY,
) -> StateT:
    """The workflow's state: its result once completed, else the live ``query``."""
    handle = client.get_workflow_handle(workflow_id, result_type=state_type)
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            result: StateT = await handle.result()
            return result
        return await asyncio.wait_for(
            handle.query(query, result_type=state_type), timeout=QUERY_TIMEOUT_S
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found(what, reference) from None
        raise state_unavailable(what) from exc
    except TimeoutError:
        raise state_unavailable(what) from None


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
