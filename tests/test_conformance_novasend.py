"""NovaSend checkout payins end to end under both documented versions of its payin session
API (providers.md 2.3 and 2.11.1): gateway → PayinWorkflow → adapter → NovaSend sandbox,
over real HTTP, with one momoflow configuration (``MOMOFLOW_NOVASEND__ACCOUNT_ID`` set).

* ``v2``: the newer page [N4]; the answer has ``id`` (``pr_…``) and echoes our reference.
* ``seed004``: the older page [N3, seed 004]; ``accountId`` and ``customerName`` are
  required, the answer has no ``id`` (``reference`` is NovaSend's ``tr_…``,
  ``customerReference`` ours), and the status path takes NovaSend's id only.

An account's version cannot be known in advance, so the same worker must succeed against
both. The tests run in a lane of their own beside the session's stack: a NovaSend sandbox,
a gateway and a worker on their own task-queue prefix, sharing the stack's Temporal server.
Switching that sandbox's version can therefore never touch another test's payins.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from momoflow.ids import payin_workflow_id
from momoflow.models import (
    InitiatePayinInput,
    PayinMode,
    PaymentStatus,
    ProviderName,
    StatusLookup,
)
from momoflow.money import Country, Currency
from momoflow.processes import ManagedProcess, free_port, http_ready
from momoflow.providers import errors
from momoflow.providers.novasend import NovaSendClient, NovaSendCredentials
from momoflow.settings import NovaSendSettings
from tests.stack import ACME_KEY, NOVASEND_WEBHOOK_SECRET, Stack, wait_until

ACCOUNT = "merchant_9923lkdz"
FINAL = {"succeeded", "failed", "declined", "expired", "late_succeeded", "reconciling"}
VERSIONS = ["v2", "seed004"]
#: How each version names NovaSend's id in the create answer.
ID_PREFIX = {"v2": "pr_", "seed004": "tr_"}


@dataclass
class Lane:
    """A NovaSend sandbox, a gateway and a worker of their own (see the module docstring)."""

    sandbox_url: str
    gateway_url: str

    def control(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.sandbox_url}/_sandbox", timeout=10)

    def gateway(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {ACME_KEY}"}
        return httpx.Client(base_url=self.gateway_url, timeout=15, headers=headers)

    def post_payin(self, body: dict[str, Any], expected: int = 201) -> dict[str, Any]:
        with self.gateway() as http:
            answer = http.post("/v1/payins", json=body)
        assert answer.status_code == expected, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def wait_payin(self, reference: str, statuses: set[str]) -> dict[str, Any]:
        with self.gateway() as http:

            def check() -> dict[str, Any] | None:
                answer = http.get(f"/v1/payins/{reference}")
                if answer.status_code == 200 and answer.json()["status"] in statuses:
                    state: dict[str, Any] = answer.json()
                    return state
                return None

            found: dict[str, Any] = wait_until(check, timeout=60, what=f"payin {reference}")
            return found

    def sandbox_state(self, transaction: str) -> dict[str, Any]:
        with self.control() as http:
            answer = http.get(f"/transactions/{transaction}")
        answer.raise_for_status()
        state: dict[str, Any] = answer.json()
        return state

    def status_reads(self) -> list[tuple[str, int]]:
        """``(path, HTTP status)`` of every payin status read the sandbox has served."""
        with self.control() as http:
            records = http.get("/requests").json()["requests"]
        return [(r["path"], r["statusCode"]) for r in records if r["operation"] == "payin.status"]

    def adapter(self, http: httpx.AsyncClient) -> NovaSendClient:
        """The adapter as the lane's worker builds it, for reads outside a workflow."""
        defaults = NovaSendSettings()
        return NovaSendClient(
            http,
            base_url=self.sandbox_url,
            credentials=NovaSendCredentials(
                api_key=defaults.api_key,
                api_client=defaults.api_client.get_secret_value(),
                webhook_secret=NOVASEND_WEBHOOK_SECRET,
            ),
            account_id=ACCOUNT,
        )


@pytest.fixture(scope="module")
def lane(stack: Stack) -> Iterator[Lane]:
    prefix = f"ns-versions-{uuid.uuid4().hex[:8]}"
    sandbox_port, gateway_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    novasend = {
        "MOMOFLOW_NOVASEND__BASE_URL": sandbox_url,
        "MOMOFLOW_NOVASEND__ACCOUNT_ID": ACCOUNT,
    }
    logs = stack.root / "logs"
    processes: list[ManagedProcess] = []
    try:
        processes.append(
            ManagedProcess(
                f"{prefix}-sandbox",
                [sys.executable, "-m", "momoflow.sandbox", "novasend", "--port", str(sandbox_port)]
                + ["--webhook-url", f"{gateway_url}/webhooks/novasend", "--settle-delay", "0.5"]
                + ["--rate-limit-per-minute", "0", "--payin-api-version", "seed004"],
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


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest, lane: Lane) -> Iterator[str]:
    """The lane's sandbox answers in this version for the test; faults are cleared after."""
    with lane.control() as http:
        http.post("/config", json={"payin_api_version": request.param}).raise_for_status()
    try:
        yield str(request.param)
    finally:
        with lane.control() as http:
            http.delete("/faults").raise_for_status()


def checkout_body(reference: str, phone: str = "+2250701231001", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": reference,
        "provider": "novasend",
        "mode": "checkout",
        "country": "CI",
        "customer": {"phone": phone, "name": "Aya Kone"},
        "amount": 10_000,
        "currency": "XOF",
        "description": "conformance novasend payin",
        "return_url": "https://shop.example/paid",
    }
    body.update(extra)
    return body


def _assert_both_references(state: dict[str, Any], version: str) -> None:
    novasend_id = state["provider_transaction_id"]
    assert novasend_id.startswith(ID_PREFIX[version]), state
    assert state["provider_reference"].startswith("tr_")
    assert state["provider_reference"] != novasend_id


def test_checkout_payin_succeeds_by_webhook(lane: Lane, version: str, reference: str) -> None:
    created = lane.post_payin(checkout_body(reference))
    assert created["status"] == "pending", created
    assert created["payment_url"] and created["provider_transaction_id"].startswith(
        ID_PREFIX[version]
    )

    final = lane.wait_payin(reference, FINAL)
    assert final["status"] == "succeeded", final["timeline"]
    _assert_both_references(final, version)
    # The webhooks (older-shaped under seed004) reached the workflow and none was ignored
    # as being about another transaction.
    notes = [entry["note"] for entry in final["timeline"]]
    assert final["webhooks_received"] >= 1 and not any("ignored" in n for n in notes), notes
    # Both versions got the superset: accountId (required by seed 004, ignored by v2) and
    # the customer's name.
    at_sandbox = lane.sandbox_state(final["provider_transaction_id"])
    assert at_sandbox["accountId"] == ACCOUNT
    older = version == "seed004"
    name = at_sandbox["customerName"] if older else at_sandbox["customer"]["name"]
    assert name == "Aya Kone"
    with lane.control() as http:
        ledger = http.get(f"/ledger/{payin_workflow_id('acme', reference)}").json()
    assert (ledger["executions"], ledger["status"]) == (1, "completed")


def test_checkout_payin_succeeds_by_status_reads_by_the_designated_id(
    lane: Lane, version: str, reference: str
) -> None:
    with lane.control() as http:
        http.post("/faults", json={"kind": "drop_webhooks", "count": None}).raise_for_status()
    created = lane.post_payin(checkout_body(reference))
    final = lane.wait_payin(reference, FINAL)
    assert final["status"] == "succeeded", final["timeline"]
    assert final["webhooks_received"] == 0 and final["status_polls"] >= 1
    _assert_both_references(final, version)

    workflow_id = payin_workflow_id("acme", reference)
    designated = created["provider_transaction_id"] if version == "seed004" else workflow_id
    reads = [r for r in lane.status_reads() if r[0].endswith((workflow_id, designated))]
    assert reads and all(r == (f"/v1/payin/{designated}", 200) for r in reads), reads


async def test_the_processed_amount_is_read_exactly(
    lane: Lane, version: str, reference: str
) -> None:
    lane.post_payin(checkout_body(reference, amount=12_345))
    state = lane.wait_payin(reference, FINAL)
    assert state["status"] == "succeeded", state["timeline"]
    lookup = StatusLookup(
        provider=ProviderName.NOVASEND,
        provider_transaction_id=state["provider_transaction_id"],
        external_reference=state["workflow_id"],
    )
    async with httpx.AsyncClient(timeout=10) as http:
        read = await lane.adapter(http).payin_status(lookup)
    # transaction.amount is the decimal string "12345.00": exact integer francs, in both.
    assert (read.status, read.amount, read.currency) == (
        PaymentStatus.SUCCEEDED,
        12_345,
        Currency.XOF,
    )
    assert read.fees == 433  # the sandbox's 3.5 % fee, "433.00"
    assert read.external_reference == state["workflow_id"]
    assert read.provider_transaction_id == state["provider_transaction_id"]
    assert read.provider_reference == state["provider_reference"]
    if "provider_amount" in state:  # the workflow's copy of it, where the state has one
        assert state["provider_amount"] == 12_345


def test_lost_create_answer_is_replayed_and_collects_once(
    lane: Lane, version: str, reference: str
) -> None:
    with lane.control() as http:
        fault = {"kind": "timeout_after_execute", "operation": "payin.sessions", "seconds": 10}
        http.post("/faults", json=fault).raise_for_status()
    lane.post_payin(checkout_body(reference))
    final = lane.wait_payin(reference, FINAL)
    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] >= 2
    assert final["provider_transaction_id"].startswith(ID_PREFIX[version])
    with lane.control() as http:
        ledger = http.get(f"/ledger/{payin_workflow_id('acme', reference)}").json()
    assert ledger["executions"] == 1


async def test_a_payin_whose_novasend_id_never_arrived_stays_unknown(lane: Lane) -> None:
    """Seed 004's status path takes NovaSend's id only: without it (the create answer lost
    for good), a read by our reference finds nothing, which proves nothing. It must keep
    the payin unknown (a retryable error), never make it failed."""
    with lane.control() as http:
        http.post("/config", json={"payin_api_version": "seed004"}).raise_for_status()
    ours = f"payin-acme-{uuid.uuid4().hex[:12]}"
    request = InitiatePayinInput(
        provider=ProviderName.NOVASEND,
        mode=PayinMode.CHECKOUT,
        external_reference=ours,
        idempotency_key=str(uuid.uuid4()),
        amount=5_000,
        currency=Currency.XOF,
        country=Country.CI,
        customer_phone="+2250701231001",
        customer_name="Aya Kone",
        return_url="https://shop.example/paid",
    )
    async with httpx.AsyncClient(timeout=10) as http:
        adapter = lane.adapter(http)
        created = await adapter.initiate_payin(request)
        assert created.transaction.external_reference == ours
        lost = StatusLookup(
            provider=ProviderName.NOVASEND, provider_transaction_id=None, external_reference=ours
        )
        with pytest.raises(errors.ProviderUnavailable, match="not proof"):
            await adapter.payin_status(lost)
        known = lost.model_copy(
            update={"provider_transaction_id": created.transaction.provider_transaction_id}
        )
        assert (await adapter.payin_status(known)).external_reference == ours


def test_novasend_checkout_payin_without_a_customer_name_is_refused(
    lane: Lane, reference: str
) -> None:
    body = checkout_body(reference)
    body["customer"] = {"phone": "+2250701231001"}
    refused = lane.post_payin(body, expected=422)
    assert {"field": "customer.name", "rule": "required_by_provider"}.items() <= (
        refused["problems"][0].items()
    )
    blank = lane.post_payin(
        {**body, "customer": {"phone": "+2250701231001", "name": "  "}}, expected=422
    )
    assert [p["field"] for p in blank["problems"]] == ["customer.name"]
    with lane.gateway() as http:
        assert http.get(f"/v1/payins/{reference}").status_code == 404
    # Direct payins have one documented version, where the name is optional [N5].
    lane.post_payin({**body, "mode": "direct", "operator": "wave"})
    assert lane.wait_payin(reference, FINAL)["status"] == "succeeded"
