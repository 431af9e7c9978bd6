"""Record payout histories for the replay tests: ``python -m tests.record_histories``.

Starts a private stack (dev server, sandbox, gateway, worker), runs one payout per path
(webhook, polling, declined, reconciling, 5xx retried) and writes each history to
``tests/histories/<workflow id>.json``. Re-record only when a change is *meant* to be
incompatible, and then guard the change with ``workflow.patched``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from momoflow.ids import payout_workflow_id
from momoflow.settings import TemporalSettings
from momoflow.temporal import connect_client
from tests.stack import start_stack
from tests.test_payout_flow import payout_body, post_payout

OUT = Path(__file__).parent / "histories"

SCENARIOS = {
    "webhook": ("+221771231011", None),
    "polling": ("+221771231012", {"kind": "drop_webhooks", "count": 2}),
    "declined": ("+221770000000", None),
    "retried": (
        "+221771231013",
        {"operation": "payouts.initiate", "kind": "error", "status": 503, "count": 2},
    ),
    "reconciling": ("+221770000003", None),
}


async def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        stack = start_stack(Path(root))
        try:
            stack.start_worker("worker", prefix="momoflow-test")
            client = await connect_client(TemporalSettings(address=stack.temporal_address))
            for name, (phone, fault) in SCENARIOS.items():
                if fault:
                    stack.fault(**fault)
                reference = f"REC-{name}"
                post_payout(stack, payout_body(reference, phone=phone))
                final = {"reconciling"} if name == "reconciling" else {"succeeded", "failed"}
                stack.wait_for_payout(reference, final, timeout=90)
                stack.clear_faults()
                workflow_id = payout_workflow_id("acme", reference)
                history = await client.get_workflow_handle(workflow_id).fetch_history()
                # The file is named by the workflow id: replay needs the real one.
                path = OUT / f"{workflow_id}.json"
                path.write_text(history.to_json())
                print(f"recorded {path} ({len(history.events)} events)")
        finally:
            stack.stop_all()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
