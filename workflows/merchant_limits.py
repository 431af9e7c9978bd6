"""MerchantLimitsWorkflow: one merchant's request windows and campaign pre-flight slots,
shared by every gateway replica (see :mod:`momoflow.merchant_limits`).

Started by the first update that needs it (update-with-start) on the limits task queue;
runs until its history is long, then continues as new with what it knows. It keeps no
timer: it only answers updates, each in one workflow task.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from momoflow.contract import (
        ACQUIRE_PREFLIGHT_UPDATE,
        LEASE_UPDATE,
        MERCHANT_LIMITS_WORKFLOW,
        RELEASE_PREFLIGHTS_UPDATE,
        STATE_QUERY,
    )
    from momoflow.merchant_limits import (
        Lease,
        LeaseRequest,
        LimitsCarry,
        LimitsInput,
        SlotAnswer,
        SlotRequest,
        free_slots,
        grant_requests,
        take_slot,
    )
    from workflows.common import history_is_long


@workflow.defn(name=MERCHANT_LIMITS_WORKFLOW)
class MerchantLimitsWorkflow:
    """A merchant's limits (see the module docstring)."""

    def __init__(self) -> None:
        self._carry = LimitsCarry()

    @workflow.update(name=LEASE_UPDATE)
    def lease_requests(self, request: LeaseRequest) -> Lease:
        """Grant up to ``request.want`` requests of the current window."""
        return grant_requests(self._carry, workflow.now(), request)

    @workflow.update(name=ACQUIRE_PREFLIGHT_UPDATE)
    def acquire_preflight(self, request: SlotRequest) -> SlotAnswer:
        """Give the campaign a pre-flight slot if one is free (or it holds one)."""
        return take_slot(self._carry, workflow.now(), request)

    @workflow.update(name=RELEASE_PREFLIGHTS_UPDATE)
    def release_preflights(self, campaign_ids: list[str]) -> None:
        """Free the slots of campaigns no longer in pre-flight."""
        free_slots(self._carry, campaign_ids)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> LimitsCarry:
        """The current window's grants and the pre-flight slots."""
        return self._carry

    @workflow.run
    async def run(self, input: LimitsInput) -> None:
        """Answer updates until the history is long, then continue as new."""
        if input.carry is not None:
            self._carry = input.carry
        await workflow.wait_condition(lambda: history_is_long(input.max_history_events))
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(input.model_copy(update={"carry": self._carry}))
