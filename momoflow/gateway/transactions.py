"""What the payout and payin endpoints share: starting a transaction workflow idempotently
on the business reference, and reading a transaction's state."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from fastapi import HTTPException, status
from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

FINGERPRINT_MEMO = "request_fingerprint"
#: How long a read waits for a worker to answer the ``state`` query.
QUERY_TIMEOUT_S = 5.0

StateT = TypeVar("StateT", bound=BaseModel)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown API key"},
    409: {"description": "The reference was already used with a different request"},
    422: {"description": "Invalid request: every broken rule is listed, nothing was started"},
    503: {"description": "Temporal unreachable or no worker answered; retry"},
}


async def start_once(
    client: Client,
    workflow: str,
    workflow_input: BaseModel,
    *,
    workflow_id: str,
    task_queue: str,
    fingerprint: str,
    search_attributes: TypedSearchAttributes,
    summary: str,
    what: str,
    reference: str,
) -> bool:
    """Start the workflow; False when it already exists with the same request (a retried
    call). The same reference with another request is a 409; a finished workflow is
    never started again (reuse policy REJECT_DUPLICATE)."""
    try:
        await client.start_workflow(
            workflow,
            workflow_input,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo={FINGERPRINT_MEMO: fingerprint},
            search_attributes=search_attributes,
            static_summary=summary,
        )
    except WorkflowAlreadyStartedError:
        description = await client.get_workflow_handle(workflow_id).describe()
        if await description.memo_value(FINGERPRINT_MEMO, None) != fingerprint:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail={
                    "error": "reference_conflict",
                    "message": f"reference {reference!r} was already used for a different "
                    f"{what}; use a new reference",
                },
            ) from None
        return False
    return True


async def read_state(
    client: Client, workflow_id: str, state_type: type[StateT], *, what: str, reference: str
) -> StateT:
    """The transaction's state: its result once completed, else the live query."""
    handle = client.get_workflow_handle(workflow_id, result_type=state_type)
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            result: StateT = await handle.result()
            return result
        return await asyncio.wait_for(
            handle.query("state", result_type=state_type), timeout=QUERY_TIMEOUT_S
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
