"""Payins end to end on every provider's sandbox: each mode, success, decline, failure,
expiry, NovaSend's late reversal, duplicate starts, and signed merchant notifications that
are retried until the merchant's endpoint comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from momoflow.ids import payin_workflow_id
from momoflow.notifications import verify
from momoflow.sandbox.shared.serving import ThreadedServer
from tests.stack import ACME_NOTIFY_SECRET, MERCHANT_HOST, Stack, wait_until

FINAL = {"succeeded", "failed", "declined", "expired", "late_succeeded", "reconciling"}


@dataclass
class MerchantEndpoint:
    """A merchant's notification endpoint: verifies our signature, can be 'down'."""

    url: str = ""
    #: workflow id -> how many of its deliveries to refuse with 503 (a targeted outage, so
    #: other tests' deliveries can never consume it).
    down_for: dict[str, int] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, workflow_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.received if e["data"]["workflow_id"] == workflow_id]


@pytest.fixture(scope="module")
def merchant() -> Iterator[MerchantEndpoint]:
    import json

    endpoint = MerchantEndpoint()

    async def receive(request: Request) -> Response:
        body = await request.body()
        verify(ACME_NOTIFY_SECRET, body, request.headers.get("momoflow-signature"), now=time.time())
        event = json.loads(body)
        workflow_id = event["data"]["workflow_id"]
        with endpoint.lock:
            if endpoint.down_for.get(workflow_id, 0) > 0:
                endpoint.down_for[workflow_id] -= 1
                endpoint.refused[workflow_id] = endpoint.refused.get(workflow_id, 0) + 1
                return Response(status_code=503)
            endpoint.received.append(event)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/events", receive, methods=["POST"])])
    with ThreadedServer(app, host=MERCHANT_HOST) as server:
        endpoint.url = f"{server.url}/events"
        yield endpoint


def payin_body(
    reference: str, provider: str, mode: str, phone: str | None, **extra: Any
) -> dict[str, Any]:
    country = "SN" if provider == "caurisflux" else "CI"
    body: dict[str, Any] = {
        "reference": reference,
        "provider": provider,
        "mode": mode,
        "country": country,
        "customer": {"phone": phone, "name": "Aya Kone"},
        "amount": 10_000,
        "currency": "XOF",
        "description": "test payin",
        "return_url": "https://shop.example/paid",
    }
    if mode == "direct":
        body["operator"] = "wave"
    body.update(extra)
    return body


def post_payin(stack: Stack, body: dict[str, Any], expected: int = 201) -> dict[str, Any]:
    with stack.gateway() as http:
        answer = http.post("/v1/payins", json=body)
    assert answer.status_code == expected, answer.text
    result: dict[str, Any] = answer.json()
    return result


def wait_payin(
    stack: Stack, reference: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    with stack.gateway() as http:

        def check() -> dict[str, Any] | None:
            answer = http.get(f"/v1/payins/{reference}")
            if answer.status_code == 200 and answer.json()["status"] in statuses:
                state: dict[str, Any] = answer.json()
                return state
            return None

        result: dict[str, Any] = wait_until(check, timeout=timeout, what=f"payin {reference}")
        return result


CASES = [
    ("caurisflux", "checkout", "+221771231001"),
    ("caurisflux", "direct", "+221771231002"),
    ("novasend", "checkout", "+2250701231001"),
    ("novasend", "direct", "+2250701231002"),
    ("mobilepay", "qr", None),
]


@pytest.mark.parametrize(("provider", "mode", "phone"), CASES, ids=lambda v: str(v))
def test_payin_succeeds_in_every_mode_and_the_merchant_is_notified(
    stack: Stack,
    merchant: MerchantEndpoint,
    reference: str,
    provider: str,
    mode: str,
    phone: str | None,
) -> None:
    created = post_payin(
        stack, payin_body(reference, provider, mode, phone, notify_url=merchant.url)
    )
    assert created["status"] == "pending", created
    assert created["expires_at"]
    if mode == "qr":
        assert created["qr_code"]
        with stack.sandbox("mobilepay") as http:
            http.post(
                f"/_sandbox/payments/{created['provider_transaction_id']}/pay",
                json={"payer": "+2250701231009"},
            ).raise_for_status()
    elif mode == "checkout":
        assert created["payment_url"]

    final = wait_payin(stack, reference, FINAL)
    assert final["status"] == "succeeded", final["timeline"]

    workflow_id = payin_workflow_id("acme", reference)
    events = wait_until(lambda: merchant.events(workflow_id), timeout=30, what="notification")
    assert [e["type"] for e in events] == ["payin.succeeded"]
    assert events[0]["data"]["amount"] == 10_000
    delivered = wait_payin(stack, reference, {"succeeded"})
    assert delivered["notifications"][0]["event_type"] == "payin.succeeded"


def test_customer_who_declines_ends_declined(stack: Stack, reference: str) -> None:
    post_payin(stack, payin_body(reference, "novasend", "checkout", "+2250701230002"))
    final = wait_payin(stack, reference, FINAL)
    assert final["status"] == "declined"
    assert final["failure"]["code"]


def test_provider_failure_ends_failed_with_its_reason(stack: Stack, reference: str) -> None:
    post_payin(stack, payin_body(reference, "caurisflux", "direct", "+221770000002"))
    final = wait_payin(stack, reference, FINAL)
    assert final["status"] == "failed"
    assert final["failure"]["code"] == "insufficient_funds"


def test_unpaid_payin_expires_after_a_last_read(stack: Stack, reference: str) -> None:
    stack.configure_sandbox("caurisflux", payment_ttl=3)
    try:
        created = post_payin(
            stack, payin_body(reference, "caurisflux", "checkout", "+221770000003")
        )
    finally:
        stack.configure_sandbox("caurisflux", payment_ttl=1800)
    final = wait_payin(stack, reference, FINAL, timeout=40)
    assert final["status"] == "expired"
    assert final["expires_at"] == created["expires_at"]
    # Either the provider said so (webhook or read) or our last read before the deadline did.
    assert any(e["status"] == "expired" for e in final["timeline"])
    assert final["failure"]["code"] in ("expired", "payment_expired") or final["failure"]


def test_payin_whose_last_read_at_expiry_fails_is_reconciling_and_watched(
    stack: Stack, reference: str
) -> None:
    """Nothing says the customer did not pay: the payin stays open, ``reconciling``."""
    stack.configure_sandbox("caurisflux", payment_ttl=3)
    stack.fault("caurisflux", kind="drop_webhooks", count=10)
    stack.fault("caurisflux", operation="payments.status", kind="error", status=400, count=None)
    try:
        post_payin(stack, payin_body(reference, "caurisflux", "checkout", "+221770000003"))
    finally:
        stack.configure_sandbox("caurisflux", payment_ttl=1800)
    final = wait_payin(stack, reference, FINAL, timeout=40)

    assert final["status"] == "reconciling"
    assert final["failure"]["code"] == "expiry_unconfirmed"
    assert final["completed_at"] is None
    assert not any(e["status"] == "expired" for e in final["timeline"])
    assert any("final read before the deadline failed" in e["note"] for e in final["timeline"])


def test_novasend_late_reversal_is_recorded_as_a_correction(
    stack: Stack, merchant: MerchantEndpoint, reference: str
) -> None:
    post_payin(
        stack,
        payin_body(reference, "novasend", "direct", "+2250701230004", notify_url=merchant.url),
    )
    failed = wait_payin(stack, reference, {"failed", "late_succeeded"})
    assert failed["status"] == "failed"

    corrected = wait_payin(stack, reference, {"late_succeeded"}, timeout=40)
    assert corrected["failure"] is None
    [correction] = corrected["corrections"]
    assert (correction["from_status"], correction["to_status"]) == ("failed", "late_succeeded")
    workflow_id = payin_workflow_id("acme", reference)
    events = wait_until(
        lambda: (
            [e["type"] for e in merchant.events(workflow_id)] == ["payin.failed", "payin.corrected"]
        ),
        timeout=30,
        what="failed then corrected notifications",
    )
    assert events


def test_notification_is_retried_until_the_merchant_endpoint_comes_back(
    stack: Stack, merchant: MerchantEndpoint, reference: str
) -> None:
    workflow_id = payin_workflow_id("acme", reference)
    with merchant.lock:
        merchant.down_for[workflow_id] = 2
    post_payin(
        stack,
        payin_body(reference, "caurisflux", "checkout", "+221771231003", notify_url=merchant.url),
    )
    final = wait_payin(stack, reference, FINAL)
    assert final["status"] == "succeeded"

    def delivered() -> dict[str, Any] | None:
        state = wait_payin(stack, reference, FINAL)
        return state if state["notifications"][0]["status"] == "delivered" else None

    state = wait_until(delivered, timeout=60, what="delivery after the endpoint came back")
    assert state["notifications"][0]["attempts"] == 3
    assert merchant.refused[workflow_id] == 2
    assert [e["type"] for e in merchant.events(workflow_id)] == ["payin.succeeded"]


def test_same_reference_returns_the_existing_payin(stack: Stack, reference: str) -> None:
    body = payin_body(reference, "caurisflux", "checkout", "+221771231004")
    first = post_payin(stack, body)
    again = post_payin(stack, body, expected=200)
    assert again["workflow_id"] == first["workflow_id"]
    assert again["payment_url"] == first["payment_url"]
    with stack.gateway() as http:
        different = http.post("/v1/payins", json={**body, "amount": 20_000})
    assert different.status_code == 409


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"provider": "mobilepay", "mode": "direct", "operator": "wave"}, ("mode", "mode_offered")),
        (
            {"provider": "novasend", "mode": "direct", "operator": "orange_money"},
            ("otp", "otp_required"),
        ),
        ({"mode": "direct", "customer": {"name": "A"}}, ("customer.phone", "required_for_direct")),
        ({"amount": 50}, ("amount", "provider_limits")),
    ],
)
def test_invalid_payins_name_the_rule_and_start_nothing(
    stack: Stack, reference: str, override: dict[str, Any], problem: tuple[str, str]
) -> None:
    body = payin_body(reference, "caurisflux", "direct", "+221771231005")
    body.update(override)
    if body["provider"] != "caurisflux":
        body["country"] = "CI"
        if body["customer"].get("phone", "").startswith("+221"):
            body["customer"]["phone"] = "+2250701231005"
    with stack.gateway() as http:
        answer = http.post("/v1/payins", json=body)
        missing = http.get(f"/v1/payins/{reference}")
    assert answer.status_code == 422, answer.text
    assert problem in {(p["field"], p["rule"]) for p in answer.json()["problems"]}
    assert missing.status_code == 404


def test_payout_final_state_is_notified_to_the_merchant(
    stack: Stack, merchant: MerchantEndpoint, reference: str
) -> None:
    from tests.test_payout_flow import payout_body, post_payout

    post_payout(stack, payout_body(reference, phone="+221770000000", notify_url=merchant.url))
    final = stack.wait_for_payout(reference, {"failed"})
    assert final["failure"]["code"] == "invalid_recipient"

    workflow_id = f"payout-acme-{reference}"
    events = wait_until(lambda: merchant.events(workflow_id), timeout=30, what="notification")
    assert [e["type"] for e in events] == ["payout.failed"]
    assert events[0]["data"]["failure"]["code"] == "invalid_recipient"
    assert "+221770000000" not in str(events[0])  # only the masked number leaves momoflow
