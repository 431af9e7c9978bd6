"""CaurisFlux end to end (issue 13): its documented error codes, its paginated lists, and
the payout scenarios that only the idempotency key can make safe.

Everything is real: Temporal, the worker, the gateway and the CaurisFlux sandbox over HTTP.
The sandbox's ledger says how many times money moved for a reference.

The key-sensitive scenarios run with the sandbox in ``idempotency_key_only`` mode: there a
reused ``externalReference`` under a new key executes again, so a create whose key changed
between retries pays twice and the ledger shows it. (In the default mode the sandbox's
duplicate-reference check would hide such a change.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from momoflow.ids import idempotency_key, payout_workflow_id
from momoflow.models import Operator
from momoflow.money import Country
from momoflow.providers.caurisflux import CaurisFluxClient, CaurisFluxCredentials
from momoflow.sandbox.caurisflux import CaurisFluxSandboxConfig, create_app
from momoflow.sandbox.shared import ThreadedServer
from tests.stack import PUBLIC_KEY, SECRET_KEY, WEBHOOK_SECRET, Stack

FINAL = {"succeeded", "failed", "cancelled", "expired"}


def _body(reference: str, suffix: str = "1001") -> dict[str, Any]:
    return {
        "reference": reference,
        "provider": "caurisflux",
        "country": "SN",
        "operator": "wave",
        "recipient": {"phone": f"+22177123{suffix}", "name": "Awa Diallo"},
        "amount": 25_000,
        "currency": "XOF",
        "description": "issue 13 conformance",
    }


def _post(stack: Stack, body: dict[str, Any]) -> None:
    with stack.gateway() as http:
        answer = http.post("/v1/payouts", json=body)
    assert answer.status_code == 201, answer.text


def _executions(stack: Stack, reference: str) -> int:
    entry = stack.ledger_entry(payout_workflow_id("acme", reference))
    return 0 if entry is None else int(entry["executions"])


def _creates_with_our_key(stack: Stack, reference: str) -> list[int]:
    """Status codes of the create calls that carried the key momoflow derives from the
    reference: every attempt must carry it, so their number is the number of attempts."""
    key = idempotency_key(payout_workflow_id("acme", reference), "initiate_payout")
    return [
        r["statusCode"]
        for r in stack.sandbox_requests()
        if r["operation"] == "payouts.initiate" and r["idempotencyKey"] == key
    ]


@pytest.fixture
def key_only(stack: Stack) -> Iterator[None]:
    """The sandbox with no duplicate-reference check, for the length of one test."""
    stack.configure_sandbox(idempotency_key_only=True)
    try:
        yield
    finally:
        stack.configure_sandbox(idempotency_key_only=False)


# --------------------------------------------------------------------------- error codes


@pytest.mark.parametrize("status", [422, 500])
def test_provider_error_on_create_is_retried_and_pays_once(
    stack: Stack, reference: str, status: int
) -> None:
    """``provider_error`` answers to the create are unknown outcomes: re-sent with the
    same key until the provider accepts, and the payout is paid exactly once."""
    stack.fault(
        operation="payouts.initiate", kind="error", status=status, code="provider_error", count=2
    )

    _post(stack, _body(reference))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] == 3
    assert final["failure"] is None
    assert _executions(stack, reference) == 1
    assert _creates_with_our_key(stack, reference) == [status, status, 201]


@pytest.mark.parametrize(
    ("where", "suffix", "failure_code"),
    [
        # The create call is refused with the code (HTTP 422, providers.md 1.12.8).
        ("create", "1001", "limit_exceeded"),
        # The payout is accepted, then ends failed with the code (S3 errorCode; test
        # number 0007 of the sandbox).
        ("status", "0007", "limit_exceeded"),
    ],
)
def test_final_decline_code_ends_failed_with_that_code(
    stack: Stack, reference: str, where: str, suffix: str, failure_code: str
) -> None:
    if where == "create":
        stack.fault(
            operation="payouts.initiate", kind="error", status=422, code=failure_code, count=1
        )

    _post(stack, _body(reference, suffix))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "failed", final["timeline"]
    assert final["failure"]["code"] == failure_code
    assert final["failure"]["provider_code"] == failure_code
    if where == "create":
        assert final["provider_transaction_id"] is None
        assert _executions(stack, reference) == 0
        assert _creates_with_our_key(stack, reference) == [422]
    else:
        assert _executions(stack, reference) == 1


# --------------------------------------------------------------------------- key only


@pytest.mark.usefixtures("key_only")
def test_key_only_5xx_then_success_pays_once(stack: Stack, reference: str) -> None:
    stack.fault(operation="payouts.initiate", kind="error", status=503, count=2)

    _post(stack, _body(reference))
    final = stack.wait_for_payout(reference, FINAL)

    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] == 3
    assert _executions(stack, reference) == 1
    assert _creates_with_our_key(stack, reference) == [503, 503, 201]


@pytest.mark.usefixtures("key_only")
def test_key_only_timeout_after_execution_pays_once(stack: Stack, reference: str) -> None:
    stack.fault(operation="payouts.initiate", kind="timeout_after_execute", seconds=20, count=1)

    _post(stack, _body(reference))
    final = stack.wait_for_payout(reference, FINAL, timeout=90)

    assert _executions(stack, reference) == 1
    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] >= 2


@pytest.mark.usefixtures("key_only")
def test_key_only_unreadable_answer_after_execution_pays_once(stack: Stack, reference: str) -> None:
    """The provider executed, then its answer was cut in half (a proxy reset): the re-send
    with the same key gets the stored answer, not a second transfer."""
    stack.fault(operation="payouts.initiate", kind="garbage_body", count=1)

    _post(stack, _body(reference))
    final = stack.wait_for_payout(reference, FINAL)

    assert _executions(stack, reference) == 1
    assert final["status"] == "succeeded", final["timeline"]
    assert final["submit_attempts"] == 2


# --------------------------------------------------------------------------- lists [S1]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ThreadedServer]:
    """A CaurisFlux sandbox of this module's own (its lists are static)."""
    with ThreadedServer(create_app(CaurisFluxSandboxConfig(rate_limit_per_minute=0))) as server:
        yield server


def _client(http: httpx.AsyncClient, server: ThreadedServer, **options: int) -> CaurisFluxClient:
    return CaurisFluxClient(
        http,
        base_url=f"{server.url}/api/v1",
        credentials=CaurisFluxCredentials(
            public_key=PUBLIC_KEY, secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET
        ),
        **options,
    )


def _list_requests(server: ThreadedServer) -> list[str]:
    records = httpx.get(f"{server.url}/_sandbox/requests").json()["requests"]
    return [r["operation"] for r in records]


async def test_availability_follows_every_page_of_the_documented_lists(
    sandbox: ThreadedServer,
) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/reset").raise_for_status()
    async with httpx.AsyncClient(timeout=5) as http:
        whole = await _client(http, sandbox).availability()
        paged = await _client(http, sandbox, list_page_limit=5).availability()

    assert whole.available and paged.available
    assert paged.operators == whole.operators
    assert whole.operators is not None
    assert set(whole.operators[Country.SN]) == {
        Operator.WAVE,
        Operator.ORANGE_MONEY,
        Operator.FREE_MONEY,
    }
    assert set(whole.operators[Country.TG]) == {Operator.MOOV_MONEY}
    # 16 operator entries and 6 countries: one page each at 100, then 4 and 2 pages at 5.
    assert (
        _list_requests(sandbox)
        == ["payments.providers", "countries.active"]
        + ["payments.providers"] * 4
        + ["countries.active"] * 2
    )


async def test_a_list_longer_than_the_page_cap_is_reported_not_cut(
    sandbox: ThreadedServer,
) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        client = _client(http, sandbox, list_page_limit=5, max_list_pages=3)
        availability = await client.availability()

    assert availability.available
    assert availability.operators is None
    assert "not read in full" in availability.detail
    assert "more than 3 pages" in availability.detail
