"""Record histories for the replay tests:
``python -m tests.record_histories [payouts] [payins] [campaigns] [inbox] [reads] [limits]
[early-webhook]``.

Starts a private stack (dev server, sandbox, gateway, worker), runs one payout per path
(webhook, polling, declined, reconciling, 5xx retried; from REC7 also a success for another
amount, a refusal after an unknown attempt, and a payin whose last read at expiry fails)
and writes each history to ``tests/histories/<workflow id>.json``. Re-record only when a
change is *meant* to be incompatible, and then guard the change with ``workflow.patched``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError

from momoflow import inbox
from momoflow.contract import MERCHANT_LIMITS_WORKFLOW, STATUS_READER_WORKFLOW
from momoflow.gateway.limits import MerchantLimiter, PreflightsBusy, RateLimited
from momoflow.ids import (
    limits_task_queue,
    merchant_limits_workflow_id,
    payin_workflow_id,
    payout_workflow_id,
    status_reader_workflow_id,
    webhook_inbox_workflow_id,
    workflow_task_queue,
)
from momoflow.inbox import InboxRoute
from momoflow.merchant_limits import LimitsInput
from momoflow.models import PaymentStatus, ProviderEvent, ProviderName
from momoflow.money import Currency
from momoflow.settings import LimitSettings, TemporalSettings
from momoflow.status_reads import ReaderInput
from momoflow.temporal import connect_client
from tests.stack import Stack, signed_caurisflux_webhook, start_stack
from tests.test_campaigns import (
    control,
    lines_for,
    put_in_the_way,
    store_folder,
    submit,
    wait_blocked_at,
    wait_phase,
)
from tests.test_payin_flow import payin_body, post_payin, wait_payin
from tests.test_payout_flow import payout_body, post_payout

OUT = Path(__file__).parent / "histories"

#: Bump when a recording is meant to add new shapes of history; older files stay and must
#: keep replaying (``workflow.patched`` guards the differences).
#: REC3: payins; REC7: with the amount-mismatch-reconciles, create-refusal-after-unknown
#: and payin-expiry-needs-a-read patches; REC10: with signed final webhooks confirmed by a
#: status read (``confirm_final_webhooks`` in the input) and MOBILE-PAY's shared reads;
#: REC14: with the record-store patch (each state change written to PostgreSQL).
GENERATION = "REC14"
#: Campaign recordings (their own generation: payouts and payins were not re-recorded).
#: REC4: before the campaign-no-lost-wakeup patch; REC5: with it; REC6: with the
#: campaign-blocked-retry patch too, and a campaign blocked three times and retried.
CAMPAIGN_GENERATION = "REC6"

#: Webhook inbox recordings (``WebhookInboxWorkflow``). REC8: the first version.
INBOX_GENERATION = "REC8"

#: Shared status reads (``python -m tests.record_histories reads``). REC9: MOBILE-PAY
#: payouts with the shared-status-reads patch, and their reader's first run (continued as
#: new) and its second. REC12: the same with the sweep-heartbeat patch (a list read
#: heartbeats, so a dead worker's read is retried after 30 s, not 5 min).
READS_GENERATION = "REC12"
#: Merchant limits (``MerchantLimitsWorkflow``). REC11: the first version, a run that
#: continued as new and the run after it.
LIMITS_GENERATION = "REC11"

#: A payout whose signed webhook arrives during its create call
#: (``python -m tests.record_histories early-webhook``). REC13: with the
#: read-asked-before-a-wait patch, the confirming read made as soon as the answer is in.
EARLY_WEBHOOK_GENERATION = "REC13"

#: The payout scenarios recorded again with shared reads.
READS_SCENARIOS = ("mobilepay", "mobilepay-retried")

_SN = {"provider": "caurisflux", "country": "SN", "operator": "wave"}
_NS = {"provider": "novasend", "country": "CI", "operator": "wave"}
_MP = {"provider": "mobilepay", "country": "CI", "operator": "orange_money"}

#: The NovaSend operations a wallet payout may use (a fault names one of them).
_NS_PAYOUT_OPS = ("payout.wallet", "payout.direct")

#: name -> (request overrides, faults to inject in that provider's sandbox, end states)
SCENARIOS: dict[str, tuple[dict[str, object], Any, set[str]]] = {
    "webhook": ({**_SN, "phone": "+221771231011"}, None, {"succeeded"}),
    "polling": (
        {**_SN, "phone": "+221771231012"},
        {"kind": "drop_webhooks", "count": 2},
        {"succeeded"},
    ),
    "declined": ({**_SN, "phone": "+221770000000"}, None, {"failed"}),
    "retried": (
        {**_SN, "phone": "+221771231013"},
        {"operation": "payouts.initiate", "kind": "error", "status": 503, "count": 2},
        {"succeeded"},
    ),
    "reconciling": ({**_SN, "phone": "+221770000003"}, None, {"reconciling"}),
    "novasend": ({**_NS, "phone": "+2250701231011"}, None, {"succeeded"}),
    "novasend-declined": ({**_NS, "phone": "+2250701230001"}, None, {"failed"}),
    "mobilepay": ({**_MP, "phone": "+2250701231011"}, None, {"succeeded"}),
    "mobilepay-retried": (
        {**_MP, "phone": "+2250701231012"},
        {"operation": "transfers.local", "kind": "timeout_after_execute", "seconds": 20},
        {"succeeded"},
    ),
    # REC13: the sandbox executes the transfer, sends its webhook, then answers the create
    # call 2 s later (``early-webhook``; not part of ``payouts``).
    "early-webhook": (
        {**_SN, "phone": "+221771231019"},
        {"operation": "payouts.initiate", "kind": "timeout_after_execute", "seconds": 2},
        {"succeeded"},
    ),
    # REC7: a signed success for 1 XOF of 50,000 asked (see AFTER_PENDING).
    "amount-mismatch": ({**_SN, "phone": "+221770000003"}, None, {"reconciling"}),
    # REC7: the first create executes but its answer is lost, the re-send is refused (400):
    # the read by reference finds the payout.
    "refused-after-unknown": (
        {**_NS, "phone": "+2250701231014"},
        [
            *(
                {"operation": op, "kind": "timeout_after_execute", "seconds": 10}
                for op in _NS_PAYOUT_OPS
            ),
            *({"operation": op, "kind": "error", "status": 400} for op in _NS_PAYOUT_OPS),
        ],
        {"succeeded", "reconciling"},
    ),
}


def send_amount_mismatch(stack: Stack, reference: str) -> None:
    """Play CaurisFlux: a signed success webhook for 1 XOF, once the payout is pending."""
    pending = stack.wait_for_payout(reference, {"pending"})
    body, headers = signed_caurisflux_webhook(
        {
            "event": "payout.success",
            "data": {
                "transactionId": pending["provider_transaction_id"],
                "externalReference": pending["workflow_id"],
                "status": "completed",
                "amount": 1,
                "currency": "XOF",
            },
        }
    )
    with stack.gateway(key=None) as http:
        http.post("/webhooks/caurisflux", content=body, headers=headers).raise_for_status()


#: name -> what to do once the payout is posted.
AFTER_POST: dict[str, Callable[[Stack, str], None]] = {"amount-mismatch": send_amount_mismatch}


def expiry_unreadable(stack: Stack) -> None:
    """The payment link lives 3 s; its webhooks are lost and every status read is refused
    (a 400 is not retried, so each read fails at once)."""
    stack.configure_sandbox("caurisflux", payment_ttl=3)
    stack.fault("caurisflux", kind="drop_webhooks", count=10)
    stack.fault("caurisflux", operation="payments.status", kind="error", status=400, count=None)


#: name -> (provider, mode, phone, end states)
PAYIN_SCENARIOS: dict[str, tuple[str, str, str, set[str]]] = {
    "payin-checkout": ("caurisflux", "checkout", "+221771231021", {"succeeded"}),
    "payin-declined": ("novasend", "checkout", "+2250701230002", {"declined"}),
    "payin-late-reversal": ("novasend", "direct", "+2250701230004", {"late_succeeded"}),
    # REC7: the last read at expiry fails: reconciling, still open.
    "payin-expiry-unconfirmed": ("caurisflux", "checkout", "+221770000003", {"reconciling"}),
}

#: name -> sandbox set-up before the payin is posted (undone by clearing faults and config).
PAYIN_SETUP: dict[str, Callable[[Stack], None]] = {"payin-expiry-unconfirmed": expiry_unreadable}


#: name -> (lines per provider, submit options); each records its campaign's FIRST run.
CAMPAIGN_SCENARIOS: dict[str, tuple[int, dict[str, object]]] = {
    # Approved by hand, one run: pre-flight, approval gate, every line, completion.
    "campaign": (3, {}),
    # Continues as new after 200 events: the first run ends with ContinueAsNew.
    "campaign-can": (10, {"auto_approve": "true", "max_history_events": 200}),
    # Blocked and retried at each kind of store step (see block_and_retry), then completed.
    "campaign-blocked": (2, {}),
}


def block_and_retry(stack: Stack, reference: str, answer_status: int) -> None:
    """Pre-flight blocked (a file where the lines' folder goes), fixed, retried; a page of
    lines lost before approval blocks execution, put back, retried; the outcomes cannot be
    written, fixed, retried: ``blocked`` -> ``retry`` -> ``completed`` three times over."""
    assert answer_status == 201, answer_status
    folder = store_folder(stack, reference)
    wait_blocked_at(stack, reference, "prepare_campaign")
    (folder / "lines").unlink()
    control(stack, reference, "retry", {"by": "recorder"}).raise_for_status()
    wait_phase(stack, reference, {"awaiting_approval"})
    page = folder / "lines" / "caurisflux" / "000000.jsonl"
    aside = folder.parent / f"{folder.name}-page.jsonl"
    page.rename(aside)
    control(stack, reference, "approve", {"approved_by": "recorder"}).raise_for_status()
    wait_blocked_at(stack, reference, "read_campaign_lines")
    aside.rename(page)
    control(stack, reference, "retry", {"by": "recorder"}).raise_for_status()
    wait_blocked_at(stack, reference, "record_campaign_outcomes")
    (folder / "outcomes").unlink()
    control(stack, reference, "retry", {"by": "recorder"}).raise_for_status()


async def record_campaigns(stack: Stack, client: Client) -> None:
    """Record the campaign scenarios (first run of each)."""
    for name, (per_provider, options) in CAMPAIGN_SCENARIOS.items():
        reference = f"{CAMPAIGN_GENERATION}-{name}"
        rows = lines_for(reference, ["caurisflux", "novasend", "mobilepay"], per_provider)
        blocked = name == "campaign-blocked"
        if blocked:
            put_in_the_way(store_folder(stack, reference), "lines", "outcomes")
        _, answer = submit(stack, rows, reference=reference, **options)
        answer.raise_for_status()
        if blocked:
            block_and_retry(stack, reference, answer.status_code)
        elif not options.get("auto_approve"):
            wait_phase(stack, reference, {"awaiting_approval"})
            control(stack, reference, "approve", {"approved_by": "recorder"})
        done = wait_phase(stack, reference, {"completed"}, timeout=180)
        workflow_id = str(done["campaign_id"])
        runs = [run async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
        first = min(runs, key=lambda run: run.start_time)
        history = await client.get_workflow_handle(workflow_id, run_id=first.run_id).fetch_history()
        path = OUT / f"{workflow_id}.json"
        path.write_text(history.to_json())
        print(f"recorded {path} ({len(history.events)} events, {len(runs)} runs)")


def _early_success(workflow_id: str, delivery_id: str) -> ProviderEvent:
    """A verified CaurisFlux success for a payout that does not exist yet."""
    return ProviderEvent(
        provider=ProviderName.CAURISFLUX,
        event_id=delivery_id,
        event_type="payout.success",
        external_reference=workflow_id,
        status=PaymentStatus.SUCCEEDED,
        raw_status="completed",
        amount=50_000,
        currency=Currency.XOF,
    )


async def record_inbox(stack: Stack, client: Client) -> None:
    """Record the webhook inbox: one that delivers (the same webhook sent twice through
    the gateway before its payout starts), the first run of one that continues as new,
    and one that gives up at a short horizon (both kept directly, with short limits)."""
    queue = workflow_task_queue("momoflow-test")
    delivered = payout_workflow_id("acme", f"{INBOX_GENERATION}-inbox-delivered")
    body, headers = signed_caurisflux_webhook(
        {
            "event": "payout.success",
            "data": {
                "externalReference": delivered,
                "status": "completed",
                "amount": 50_000,
                "currency": "XOF",
            },
        },
        delivery_id=f"{INBOX_GENERATION}-delivery",
    )
    with stack.gateway(key=None) as http:
        for _ in range(2):
            http.post("/webhooks/caurisflux", content=body, headers=headers).raise_for_status()
    await asyncio.sleep(2)  # the inbox looks once and finds nothing, then waits
    reference = delivered.removeprefix("payout-acme-")
    post_payout(stack, payout_body(reference, phone="+221771230003"))
    stack.wait_for_payout(reference, {"succeeded"}, timeout=90)

    can = payout_workflow_id("acme", f"{INBOX_GENERATION}-inbox-can")
    route = InboxRoute(provider=ProviderName.CAURISFLUX, workflow_id=can)
    await inbox.keep(
        client,
        route,
        _early_success(can, f"{INBOX_GENERATION}-can"),
        horizon_s=3600,
        task_queue=queue,
        max_history_events=20,
    )
    gave_up = payout_workflow_id("acme", f"{INBOX_GENERATION}-inbox-gave-up")
    route = InboxRoute(provider=ProviderName.CAURISFLUX, workflow_id=gave_up)
    await inbox.keep(
        client,
        route,
        _early_success(gave_up, f"{INBOX_GENERATION}-gave-up"),
        horizon_s=5,
        task_queue=queue,
    )
    for target, first_run in ((delivered, False), (can, True), (gave_up, False)):
        inbox_id = webhook_inbox_workflow_id("caurisflux", target)
        if first_run:
            while len([r async for r in client.list_workflows(f"WorkflowId = '{inbox_id}'")]) < 2:
                await asyncio.sleep(0.5)
        else:
            with contextlib.suppress(WorkflowFailureError):
                await client.get_workflow_handle(inbox_id).result()
        runs = [run async for run in client.list_workflows(f"WorkflowId = '{inbox_id}'")]
        first = min(runs, key=lambda run: run.start_time)
        history = await client.get_workflow_handle(inbox_id, run_id=first.run_id).fetch_history()
        path = OUT / f"{inbox_id}.json"
        path.write_text(history.to_json())
        print(f"recorded {path} ({len(history.events)} events, {len(runs)} runs)")
    await client.get_workflow_handle(webhook_inbox_workflow_id("caurisflux", can)).terminate(
        "recorded"
    )


async def record_payout(stack: Stack, client: Client, name: str, generation: str) -> None:
    """Run payout scenario ``name`` and write its history."""
    overrides, fault, final = SCENARIOS[name]
    fields = dict(overrides)
    provider, phone = str(fields.pop("provider")), str(fields.pop("phone"))
    for spec in [fault] if isinstance(fault, dict) else fault or []:
        stack.fault(provider, **spec)
    reference = f"{generation}-{name}"
    body = payout_body(reference, phone=phone, provider=provider, **fields)
    post_payout(stack, body)
    if name in AFTER_POST:
        AFTER_POST[name](stack, reference)
    stack.wait_for_payout(reference, final, timeout=90)
    stack.clear_faults()
    workflow_id = payout_workflow_id("acme", reference)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    # The file is named by the workflow id: replay needs the real one.
    path = OUT / f"{workflow_id}.json"
    path.write_text(history.to_json())
    print(f"recorded {path} ({len(history.events)} events)")


async def record_reads(stack: Stack, client: Client) -> None:
    """MOBILE-PAY payouts whose status reads go through the reader, and the reader: it
    is started first with a short history limit, so that its first run continues as new
    while the payouts wait for their answers."""
    prefix = "momoflow-test"
    reader_id = status_reader_workflow_id(ProviderName.MOBILEPAY, prefix)
    await client.start_workflow(
        STATUS_READER_WORKFLOW,
        ReaderInput(provider=ProviderName.MOBILEPAY, max_history_events=100),
        id=reader_id,
        task_queue=workflow_task_queue(prefix),
    )
    for name in READS_SCENARIOS:
        await record_payout(stack, client, name, READS_GENERATION)
    extra = 0
    while len([r async for r in client.list_workflows(f"WorkflowId = '{reader_id}'")]) < 3:
        extra += 1
        if extra > 20:
            raise RuntimeError("the status reader did not continue as new twice")
        reference = f"{READS_GENERATION}-reads-{extra}"
        post_payout(stack, payout_body(reference, phone="+2250701231011", **_MP))
        stack.wait_for_payout(reference, {"succeeded"}, timeout=90)
    runs = sorted(
        [r async for r in client.list_workflows(f"WorkflowId = '{reader_id}'")],
        key=lambda run: run.start_time,
    )
    for label, run in (("can", runs[0]), ("second", runs[1])):
        history = await client.get_workflow_handle(reader_id, run_id=run.run_id).fetch_history()
        path = OUT / f"{reader_id}-{READS_GENERATION}-{label}.json"
        path.write_text(history.to_json())
        print(f"recorded {path} ({len(history.events)} events)")
    await client.get_workflow_handle(reader_id).terminate("recorded")


async def record_limits(client: Client) -> None:
    """A merchant's limits workflow, leased from and asked for pre-flight slots through the
    gateway's limiter until its first run continues as new (a short history limit)."""
    prefix = "momoflow-test"
    merchant = "recorder"
    limits_id = merchant_limits_workflow_id(merchant, prefix)
    await client.start_workflow(
        MERCHANT_LIMITS_WORKFLOW,
        LimitsInput(merchant=merchant, max_history_events=100),
        id=limits_id,
        task_queue=limits_task_queue(prefix),
    )
    limiter = MerchantLimiter(
        LimitSettings(requests_per_window=5, window_s=3600, concurrent_preflights=1),
        _returns(client),
        prefix=prefix,
    )
    refused = 0
    for n in range(40):
        with contextlib.suppress(PreflightsBusy):
            await limiter.hold_preflight(merchant, f"campaign-{merchant}-{LIMITS_GENERATION}-{n}")
        try:
            await limiter.admit(merchant)
        except RateLimited:
            refused += 1
    if refused == 0:
        raise RuntimeError("the limiter refused nothing")
    runs = sorted(
        [r async for r in client.list_workflows(f"WorkflowId = '{limits_id}'")],
        key=lambda run: run.start_time,
    )
    if len(runs) < 2:
        raise RuntimeError("the limits workflow did not continue as new")
    for label, run in (("can", runs[0]), ("second", runs[1])):
        history = await client.get_workflow_handle(limits_id, run_id=run.run_id).fetch_history()
        path = OUT / f"{limits_id}-{LIMITS_GENERATION}-{label}.json"
        path.write_text(history.to_json())
        print(f"recorded {path} ({len(history.events)} events)")
    await client.get_workflow_handle(limits_id).terminate("recorded")


def _returns(client: Client) -> Callable[[], Awaitable[Client]]:
    async def get() -> Client:
        return client

    return get


async def main(which: set[str]) -> None:
    """Record the payout and/or payin scenarios (``which``)."""
    with tempfile.TemporaryDirectory() as root:
        stack = start_stack(Path(root))
        try:
            stack.start_worker("worker", prefix="momoflow-test")
            client = await connect_client(TemporalSettings(address=stack.temporal_address))
            if "campaigns" in which:
                await record_campaigns(stack, client)
            if "inbox" in which:
                await record_inbox(stack, client)
            payouts = (
                {n: v for n, v in SCENARIOS.items() if n != "early-webhook"}
                if "payouts" in which
                else {}
            )
            if "early-webhook" in which:
                await record_payout(stack, client, "early-webhook", EARLY_WEBHOOK_GENERATION)
            payins = PAYIN_SCENARIOS if "payins" in which else {}
            if "reads" in which:
                await record_reads(stack, client)
            if "limits" in which:
                await record_limits(client)
            for name in payouts:
                await record_payout(stack, client, name, GENERATION)
            for name, (provider, mode, phone, final) in payins.items():
                reference = f"{GENERATION}-{name}"
                if name in PAYIN_SETUP:
                    PAYIN_SETUP[name](stack)
                try:
                    post_payin(stack, payin_body(reference, provider, mode, phone))
                finally:
                    stack.configure_sandbox("caurisflux", payment_ttl=1800)
                wait_payin(stack, reference, final, timeout=90)
                stack.clear_faults()
                workflow_id = payin_workflow_id("acme", reference)
                handle = client.get_workflow_handle(workflow_id)
                if "reconciling" not in final:
                    await handle.result()
                history = await handle.fetch_history()
                path = OUT / f"{workflow_id}.json"
                path.write_text(history.to_json())
                print(f"recorded {path} ({len(history.events)} events)")
        finally:
            stack.stop_all()


if __name__ == "__main__":
    asyncio.run(main(set(sys.argv[1:]) or {"payouts", "payins"}))
    sys.stdout.flush()
    os._exit(0)
