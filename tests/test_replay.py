"""Determinism: workflow histories replay with the current workflow code.

``tests/histories/`` holds histories recorded from earlier versions of the code; a change
to workflow logic that breaks them must be guarded with ``workflow.patched``. The second
test replays every payout, payin, refund, campaign and webhook inbox this test session
produced on the dev server (the status readers too, while they run).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from momoflow.settings import CodecSettings
from momoflow.temporal import data_converter
from tests.stack import Stack
from tests.test_payout_flow import payout_body, post_payout
from workflows.campaign import CampaignWorkflow
from workflows.codec_sessions import RevokedCodecSessionWorkflow
from workflows.inbox import WebhookInboxWorkflow
from workflows.merchant_limits import MerchantLimitsWorkflow
from workflows.payin import PayinWorkflow
from workflows.payout import PayoutWorkflow
from workflows.refund import RefundWorkflow
from workflows.status_reads import StatusReaderWorkflow

HISTORIES = Path(__file__).parent / "histories"


def _replayer() -> Replayer:
    return Replayer(
        workflows=[
            PayoutWorkflow,
            PayinWorkflow,
            RefundWorkflow,
            CampaignWorkflow,
            WebhookInboxWorkflow,
            StatusReaderWorkflow,
            RevokedCodecSessionWorkflow,
            MerchantLimitsWorkflow,
        ],
        # Decodes the session's encrypted histories and the plain recorded ones alike.
        data_converter=data_converter(CodecSettings()),
    )


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays_with_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await _replayer().replay_workflow(history)
    assert result.replay_failure is None


def test_recorded_histories_cover_every_generation_and_provider() -> None:
    names = {path.stem for path in HISTORIES.glob("payout-*.json")}
    # REC: before the ProviderTransactionId patch; REC2: after it, all three providers.
    assert {"payout-acme-REC-webhook", "payout-acme-REC-reconciling"} <= names
    assert {"payout-acme-REC2-novasend", "payout-acme-REC2-mobilepay-retried"} <= names
    # REC3: payins, including a late reversal corrected after a failure.
    assert {"payin-acme-REC3-payin-checkout", "payin-acme-REC3-payin-late-reversal"} <= {
        path.stem for path in HISTORIES.glob("payin-*.json")
    }
    # REC7: with the amount-mismatch-reconciles, create-refusal-after-unknown and
    # payin-expiry-needs-a-read patches, each taken once.
    assert {
        "payout-acme-REC7-amount-mismatch",
        "payout-acme-REC7-refused-after-unknown",
        "payout-acme-REC7-webhook",
    } <= names
    assert "payin-acme-REC7-payin-expiry-unconfirmed" in {
        path.stem for path in HISTORIES.glob("payin-*.json")
    }
    # Campaigns, one run approved by hand and a first run that continued as new:
    # REC4 before the campaign-no-lost-wakeup patch, REC5 with it, REC6 with the
    # campaign-blocked-retry patch too.
    campaigns = {path.stem for path in HISTORIES.glob("campaign-*.json")}
    assert {
        f"campaign-acme-{generation}-{name}"
        for generation in ("REC4", "REC5", "REC6")
        for name in ("campaign", "campaign-can")
    } <= campaigns
    # REC6: blocked at pre-flight, at reading lines and at recording outcomes, each time
    # fixed and retried, then completed.
    assert "campaign-acme-REC6-campaign-blocked" in campaigns
    # REC8: webhook inboxes: one that delivered (a duplicate dropped), the first run of one
    # that continued as new, and one that gave up at its horizon.
    assert {
        f"webhook-inbox-caurisflux-payout-acme-REC8-inbox-{name}"
        for name in ("delivered", "can", "gave-up")
    } <= {path.stem for path in HISTORIES.glob("webhook-inbox-*.json")}
    # REC11: a merchant's limits workflow, leased from and asked for pre-flight slots until
    # it continued as new, twice.
    assert {f"momoflow-test-limits-recorder-REC11-{name}" for name in ("can", "second")} <= {
        path.stem for path in HISTORIES.glob("momoflow-test-limits-*.json")
    }


def test_rec10_webhook_history_confirms_the_signed_success_with_a_status_read() -> None:
    """REC10: a signed success webhook only asks for a status read, which settles it."""
    path = HISTORIES / "payout-acme-REC10-webhook.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    kinds = [
        e.workflow_execution_signaled_event_attributes.signal_name
        if e.HasField("workflow_execution_signaled_event_attributes")
        else e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
        or e.HasField("activity_task_scheduled_event_attributes")
    ]
    signal = kinds.index("provider_event")
    assert "fetch_payout_status" in kinds[signal:], kinds
    assert {f"payin-acme-REC10-{n}" for n in ("payin-checkout", "payin-late-reversal")} <= {
        p.stem for p in HISTORIES.glob("payin-*.json")
    }


def _patches(history: WorkflowHistory) -> set[str]:
    """The ids of the ``workflow.patched`` markers a history holds."""
    return {
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and "patch-data" in e.marker_recorded_event_attributes.details
    }


def test_rec14_histories_write_their_records_at_each_settled_state() -> None:
    """REC14: the record-store patch; a webhook payout writes its record when accepted,
    when final, and nothing else from the main line."""
    for name in ("payout-acme-REC14-webhook", "payin-acme-REC14-payin-checkout"):
        path = HISTORIES / f"{name}.json"
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        assert "record-store" in _patches(history)
        writes = [
            e
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name
            == "record_transaction"
        ]
        assert 2 <= len(writes) <= 3, (name, len(writes))
    older = HISTORIES / "payout-acme-REC10-webhook.json"
    assert "record-store" not in _patches(WorkflowHistory.from_json(older.stem, older.read_text()))


def test_shared_read_histories_take_the_patch_and_the_reader_continues_as_new() -> None:
    """REC9: a MOBILE-PAY payout whose status reads went through the reader (its answer
    arrives as a ``status_read`` signal), and the reader's first run, which continued as
    new, and its second."""
    path = HISTORIES / "payout-acme-REC9-mobilepay.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    assert "shared-status-reads" in _patches(history)
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert "status_read" in signals
    first = HISTORIES / "momoflow-test-status-reader-mobilepay-REC9-can.json"
    history = WorkflowHistory.from_json(first.stem, first.read_text())
    assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert (HISTORIES / "momoflow-test-status-reader-mobilepay-REC9-second.json").exists()


def test_reader_histories_from_rec12_give_each_list_read_a_heartbeat_timeout() -> None:
    """REC12: the reader takes the sweep-heartbeat patch, so every list read it schedules
    is given up 30 s after its worker stops heartbeating (REC9's wait out five minutes)."""
    for generation, expected in (("REC9", 0), ("REC12", 30)):
        path = HISTORIES / f"momoflow-test-status-reader-mobilepay-{generation}-can.json"
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        sweeps = [
            e.activity_task_scheduled_event_attributes
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert sweeps, generation
        assert {a.heartbeat_timeout.seconds for a in sweeps} == {expected}, generation


def test_the_early_webhook_history_takes_its_read_before_waiting() -> None:
    """REC13: a signed webhook that arrived during the create call; the patch
    ``read-asked-before-a-wait`` makes its confirming read as soon as the answer is in."""
    path = HISTORIES / "payout-acme-REC13-early-webhook.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    assert "read-asked-before-a-wait" in _patches(history)
    activities = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    # The quote and the create call, then the read the webhook asked for: no poll between.
    assert activities == ["quote_payout", "initiate_payout", "fetch_payout_status"], activities
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    assert not timers, "waited before the read"


def test_the_blocked_history_goes_through_blocked_retry_and_completed() -> None:
    path = HISTORIES / "campaign-acme-REC6-campaign-blocked.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    updates = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    failed = [
        e.activity_task_failed_event_attributes.failure.application_failure_info.type
        for e in history.events
        if e.HasField("activity_task_failed_event_attributes")
    ]
    assert "core_patch" in markers
    assert updates == ["retry", "approve", "retry", "retry"]
    assert failed == ["CampaignStepFailed"] * 3
    assert history.events[-1].HasField("workflow_execution_completed_event_attributes")


async def test_histories_of_this_session_replay(
    client: Client, stack: Stack, reference: str
) -> None:
    post_payout(stack, payout_body(reference))
    stack.wait_for_payout(reference, {"succeeded"})
    histories = [
        await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        async for wf in client.list_workflows(
            "WorkflowType = 'PayoutWorkflow' OR WorkflowType = 'PayinWorkflow' "
            "OR WorkflowType = 'RefundWorkflow' OR WorkflowType = 'CampaignWorkflow' "
            "OR WorkflowType = 'WebhookInboxWorkflow' OR WorkflowType = 'StatusReaderWorkflow' "
            "OR WorkflowType = 'RevokedCodecSessionWorkflow' "
            "OR WorkflowType = 'MerchantLimitsWorkflow'"
        )
    ]

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    assert any(h.workflow_id.endswith(reference) for h in histories)
    results = await _replayer().replay_workflows(each(), raise_on_replay_failure=False)
    failures = {wid: str(err) for wid, err in results.replay_failures.items()}
    assert failures == {}
