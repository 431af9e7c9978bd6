"""The create deadline, for every provider: a create call with no definite answer until
``submit_timeout_s`` goes to ``reconciling`` (``create_outcome_unknown``), never ``failed``,
and the payout stays open and watched. Nothing was executed at the provider.

Real parts: the session's Temporal dev server and worker, each provider's sandbox answering
every create call with a 502 (an unknown outcome), and short per-payout timings.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from momoflow.business_requests import PayoutRequest
from momoflow.ids import payout_workflow_id, workflow_task_queue
from momoflow.models import PayoutTimings, TransactionStatus
from tests.stack import TEST_TIMINGS, Stack
from tests.test_payout_flow import payout_body
from workflows.payout import PayoutWorkflow

#: provider -> (request fields, the sandbox operations its create call may use)
PROVIDERS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "caurisflux": (
        {"country": "SN", "operator": "wave", "phone": "+221771232001"},
        ("payouts.initiate",),
    ),
    "novasend": (
        {"country": "CI", "operator": "wave", "phone": "+2250701232001"},
        ("payout.wallet", "payout.direct"),
    ),
    "mobilepay": (
        {"country": "CI", "operator": "orange_money", "phone": "+2250701232002"},
        ("transfers.local",),
    ),
}

SUBMIT_TIMEOUT_S = 6


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_create_without_an_answer_until_the_deadline_goes_to_reconciling(
    stack: Stack, client: Client, reference: str, provider: str
) -> None:
    fields, operations = PROVIDERS[provider]
    fields = dict(fields)
    for operation in operations:
        stack.fault(provider, operation=operation, kind="error", status=502, count=None)
    request = PayoutRequest.model_validate(
        payout_body(reference, phone=str(fields.pop("phone")), provider=provider, **fields)
    )
    payout_input = request.to_input(
        merchant="acme",
        secret="test",
        requested_at=datetime.now(UTC),
        timings=PayoutTimings.model_validate(
            {**TEST_TIMINGS, "submit_timeout_s": SUBMIT_TIMEOUT_S}
        ),
    )
    handle = await client.start_workflow(
        PayoutWorkflow.run,
        payout_input,
        id=payout_workflow_id("acme", reference),
        task_queue=workflow_task_queue("momoflow-test"),
    )

    deadline = asyncio.get_running_loop().time() + SUBMIT_TIMEOUT_S + 30
    state = await handle.query(PayoutWorkflow.state)
    while state.status is not TransactionStatus.RECONCILING and not state.status.is_final:
        assert asyncio.get_running_loop().time() < deadline, f"still {state.status}"
        await asyncio.sleep(0.2)
        state = await handle.query(PayoutWorkflow.state)

    assert state.status is TransactionStatus.RECONCILING
    assert state.failure is not None and state.failure.code == "create_outcome_unknown"
    assert state.completed_at is None
    assert state.submitted_at is None
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    # Every create attempt met a 502 before executing: the provider holds nothing.
    assert stack.ledger_entry(payout_workflow_id("acme", reference), provider) is None
    await handle.terminate("test over")
