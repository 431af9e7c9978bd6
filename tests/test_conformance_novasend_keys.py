"""NovaSend's key-sensitive scenarios end to end, with only the idempotency key to protect
(issue 13): a create whose ``X-Idempotency-Key`` changed between retries pays twice here,
and the sandbox's ledger shows it.

By default the NovaSend sandbox also refuses a used merchant reference (409
``transaction_is_already_processed``, which the adapter reads back as "exists already"), so
``executions == 1`` would hold even if the key changed. These tests run against a sandbox
started with ``--idempotency-key-only``, where a used reference under a new key executes
again. Each test then checks two things: money moved exactly once, and every create attempt
the sandbox received carried the one key momoflow derives from the reference.

The tests run in a lane of their own beside the session's stack (as
``tests/test_conformance_novasend.py`` does): a NovaSend sandbox, a gateway and a worker on
their own task-queue prefix, sharing the stack's Temporal server. The mode therefore never
weakens the sandbox the other tests use, and the lane's sandbox is reset before each test
(reset keeps the startup mode), so its request log holds that test's calls only.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from momoflow.ids import idempotency_key, payin_workflow_id, payout_workflow_id
from momoflow.processes import ManagedProcess, free_port, http_ready
from tests.stack import ACME_KEY, Stack, wait_until

PAYOUT_FINAL = {"succeeded", "failed", "cancelled", "expired", "reconciling"}
PAYIN_FINAL = {"succeeded", "failed", "declined", "expired", "late_succeeded", "reconciling"}
#: The sandbox operations of a payout create (momoflow sends the direct one) and of a
#: checkout payin create.
PAYOUT_CREATES = ("payout.wallet", "payout.direct")
PAYIN_CREATES = ("payin.sessions",)


@dataclass
class Lane:
    """A NovaSend sandbox in key-only mode, a gateway and a worker of their own."""

    sandbox_url: str
    gateway_url: str

    def control(self) -> httpx.Client:
        """Client of the lane sandbox's ``/_sandbox`` control API."""
        return httpx.Client(base_url=f"{self.sandbox_url}/_sandbox", timeout=10)

    def fault(self, **spec: Any) -> None:
        """Inject one fault into the lane's sandbox."""
        with self.control() as http:
            http.post("/faults", json=spec).raise_for_status()

    def post(self, kind: str, body: dict[str, Any]) -> None:
        """Create a payout or payin (``kind``) through the lane's gateway."""
        with httpx.Client(
            base_url=self.gateway_url, timeout=15, headers={"Authorization": f"Bearer {ACME_KEY}"}
        ) as http:
            answer = http.post(f"/v1/{kind}", json=body)
        assert answer.status_code == 201, answer.text

    def wait(self, kind: str, reference: str, statuses: set[str], timeout: float = 90) -> Any:
        """The payout or payin once its status is one of ``statuses``."""
        with httpx.Client(
            base_url=self.gateway_url, timeout=15, headers={"Authorization": f"Bearer {ACME_KEY}"}
        ) as http:

            def check() -> dict[str, Any] | None:
                answer = http.get(f"/v1/{kind}/{reference}")
                if answer.status_code == 200 and answer.json()["status"] in statuses:
                    state: dict[str, Any] = answer.json()
                    return state
                return None

            return wait_until(check, timeout=timeout, what=f"{kind} {reference} in {statuses}")

    def executions(self, ledger_key: str) -> int:
        """How many times money moved for ``ledger_key`` (0: never)."""
        with self.control() as http:
            answer = http.get(f"/ledger/{ledger_key}")
        if answer.status_code == 404:
            return 0
        answer.raise_for_status()
        return int(answer.json()["executions"])

    def creates(self, operations: tuple[str, ...]) -> list[tuple[str | None, int]]:
        """``(X-Idempotency-Key, HTTP status)`` of every create call since the last reset."""
        with self.control() as http:
            records = http.get("/requests").json()["requests"]
        return [
            (r["idempotencyKey"], r["statusCode"]) for r in records if r["operation"] in operations
        ]


@pytest.fixture(scope="module")
def lane(stack: Stack) -> Iterator[Lane]:
    prefix = f"ns-keys-{uuid.uuid4().hex[:8]}"
    sandbox_port, gateway_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    novasend = {"MOMOFLOW_NOVASEND__BASE_URL": sandbox_url}
    logs = stack.root / "logs"
    processes: list[ManagedProcess] = []
    try:
        processes.append(
            ManagedProcess(
                f"{prefix}-sandbox",
                [sys.executable, "-m", "momoflow.sandbox", "novasend", "--port", str(sandbox_port)]
                + ["--webhook-url", f"{gateway_url}/webhooks/novasend", "--settle-delay", "0.5"]
                + ["--rate-limit-per-minute", "0", "--idempotency-key-only"],
                log_path=logs / f"{prefix}-sandbox.log",
                env=stack.env,
                ready=http_ready(f"{sandbox_url}/health"),
            ).start(timeout=30)
        )
        processes.append(
            ManagedProcess(
                f"{prefix}-gateway",
                [sys.executable, "-m", "momoflow.cli", "gateway", "--port", str(gateway_port)],
                log_path=logs / f"{prefix}-gateway.log",
                env={
                    **stack.env,
                    **novasend,
                    "MOMOFLOW_GATEWAY_PORT": str(gateway_port),
                    "MOMOFLOW_PUBLIC_URL": gateway_url,
                    "MOMOFLOW_TASK_QUEUE_PREFIX": prefix,
                },
                ready=http_ready(f"{gateway_url}/readyz"),
            ).start(timeout=60)
        )
        processes.append(stack.start_worker(f"{prefix}-worker", prefix=prefix, extra_env=novasend))
        yield Lane(sandbox_url=sandbox_url, gateway_url=gateway_url)
    finally:
        for process in reversed(processes):
            process.stop()


@pytest.fixture
def key_only(lane: Lane) -> Lane:
    """The lane with its sandbox reset, still in the key-only mode it was started in."""
    with lane.control() as http:
        http.post("/reset").raise_for_status()
        assert http.get("/config").json()["idempotency_key_only"] is True
    return lane


def payout_body(reference: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "provider": "novasend",
        "country": "CI",
        "operator": "wave",
        "recipient": {"phone": "+2250701231001", "name": "Aya Kone"},
        "amount": 25_000,
        "currency": "XOF",
        "description": "issue 13 key-only conformance",
    }


def payin_body(reference: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "provider": "novasend",
        "mode": "checkout",
        "country": "CI",
        "customer": {"phone": "+2250701231001", "name": "Aya Kone"},
        "amount": 10_000,
        "currency": "XOF",
        "description": "issue 13 key-only conformance",
        "return_url": "https://shop.example/paid",
    }


def _assert_one_key(creates: list[tuple[str | None, int]], key: str, attempts: int) -> None:
    """Every create call carried ``key``, one call per attempt the workflow counted."""
    assert [k for k, _ in creates] == [key] * attempts, creates


def test_payout_5xx_then_success_pays_once_under_one_key(key_only: Lane, reference: str) -> None:
    """Two 503s refused before execution, then the create goes through: three calls, one
    key, one transfer."""
    key_only.fault(operation="payout.direct", kind="error", status=503, count=2)

    key_only.post("payouts", payout_body(reference))
    final = key_only.wait("payouts", reference, PAYOUT_FINAL)

    workflow_id = payout_workflow_id("acme", reference)
    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] == 3
    assert key_only.executions(workflow_id) == 1
    creates = key_only.creates(PAYOUT_CREATES)
    _assert_one_key(creates, idempotency_key(workflow_id, "initiate_payout"), 3)
    assert [status for _, status in creates] == [503, 503, 201]


def test_payout_timeout_after_execution_pays_once_under_one_key(
    key_only: Lane, reference: str
) -> None:
    """NovaSend executed the payout, then its answer never came (the adapter timed out):
    the re-send with the same key gets the stored answer, not a second transfer."""
    key_only.fault(operation="payout.direct", kind="timeout_after_execute", seconds=20, count=1)

    key_only.post("payouts", payout_body(reference))
    final = key_only.wait("payouts", reference, PAYOUT_FINAL)

    workflow_id = payout_workflow_id("acme", reference)
    assert key_only.executions(workflow_id) == 1
    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] >= 2
    creates = key_only.creates(PAYOUT_CREATES)
    _assert_one_key(
        creates, idempotency_key(workflow_id, "initiate_payout"), final["submit_attempts"]
    )


def test_payout_unreadable_answer_after_execution_pays_once_under_one_key(
    key_only: Lane, reference: str
) -> None:
    """NovaSend executed, then its answer was cut in half (a proxy reset): the re-send with
    the same key replays the stored answer."""
    key_only.fault(operation="payout.direct", kind="garbage_body", count=1)

    key_only.post("payouts", payout_body(reference))
    final = key_only.wait("payouts", reference, PAYOUT_FINAL)

    workflow_id = payout_workflow_id("acme", reference)
    assert key_only.executions(workflow_id) == 1
    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] == 2
    creates = key_only.creates(PAYOUT_CREATES)
    _assert_one_key(creates, idempotency_key(workflow_id, "initiate_payout"), 2)


def test_payin_create_retried_after_a_lost_answer_collects_once_under_one_key(
    key_only: Lane, reference: str
) -> None:
    """The payin session was created, then the answer was lost: the retry with the same key
    gets the stored session, so the customer is asked to pay once."""
    key_only.fault(operation="payin.sessions", kind="timeout_after_execute", seconds=20, count=1)

    key_only.post("payins", payin_body(reference))
    final = key_only.wait("payins", reference, PAYIN_FINAL)

    workflow_id = payin_workflow_id("acme", reference)
    assert key_only.executions(workflow_id) == 1
    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] >= 2
    creates = key_only.creates(PAYIN_CREATES)
    _assert_one_key(
        creates, idempotency_key(workflow_id, "initiate_payin"), final["submit_attempts"]
    )
