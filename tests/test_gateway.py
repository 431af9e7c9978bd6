"""The gateway's contract: authentication, validation, scoping, webhook intake, docs."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from momoflow.ids import payout_workflow_id
from tests.stack import (
    GLOBEX_KEY,
    WEBHOOK_SECRET,
    Stack,
    signed_caurisflux_webhook,
    wait_until,
)
from tests.test_payout_flow import executions, payout_body, post_payout


async def assert_not_started(client: Client, workflow_id: str) -> None:
    with pytest.raises(RPCError) as info:
        await client.get_workflow_handle(workflow_id).describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_unknown_api_key_is_401(stack: Stack, key: str | None, reference: str) -> None:
    with stack.gateway(key=key) as http:
        answer = http.post("/v1/payouts", json=payout_body(reference))
        read = http.get(f"/v1/payouts/{reference}")
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"
    assert read.status_code == 401


def test_x_api_key_header_is_accepted(stack: Stack, reference: str) -> None:
    with stack.gateway(key=None) as http:
        answer = http.get(f"/v1/payouts/{reference}", headers={"X-API-Key": GLOBEX_KEY})
    assert answer.status_code == 404


INVALID_BODIES: list[tuple[dict[str, Any], set[tuple[str, str]]]] = [
    ({"amount": 100.5}, {("amount", "whole_number")}),
    ({"amount": 5000.0}, {("amount", "whole_number")}),
    ({"amount": "5000"}, {("amount", "whole_number")}),
    ({"amount": "5000.50"}, {("amount", "whole_number")}),
    ({"amount": -5}, {("amount", "greater_than")}),
    ({"currency": "EUR"}, {("currency", "enum")}),
    (
        {"recipient": {"phone": "+2250701020304", "name": "A"}},
        {("recipient.phone", "number_in_country")},
    ),
    ({"recipient": {"phone": "0701020304", "name": "A"}}, {("recipient.phone", "valid_number")}),
    ({"recipient": {"phone": "Awa's phone", "name": "A"}}, {("recipient.phone", "e164")}),
    ({"operator": "mtn_momo"}, {("operator", "operator_in_country")}),
    ({"amount": 6_000_000}, {("amount", "provider_limits")}),
    (
        {"country": "CI", "currency": "XAF", "recipient": {"phone": "+2250701020304", "name": "A"}},
        {("currency", "currency_of_country"), ("currency", "currency_supported")},
    ),
    ({"recipient": {"phone": "+221771234567"}}, {("recipient.name", "missing")}),
    ({"unexpected": True}, {("unexpected", "extra_forbidden")}),
    # Control and invisible formatting characters never reach a provider or a report.
    ({"description": "Facture \u202e0001"}, {("description", "clean_text")}),
    ({"description": "ligne 1\r\nligne 2"}, {("description", "clean_text")}),
    (
        {"recipient": {"phone": "+221771234567", "name": "Awa\u0000Diallo"}},
        {("recipient.name", "clean_text")},
    ),
    ({"metadata": {"order": "A\u200b1"}}, {("metadata.order", "clean_text")}),
]


@pytest.mark.parametrize(("override", "problems"), INVALID_BODIES)
async def test_invalid_request_names_every_field_and_starts_nothing(
    stack: Stack,
    client: Client,
    reference: str,
    override: dict[str, Any],
    problems: set[tuple[str, str]],
) -> None:
    with stack.gateway() as http:
        answer = http.post("/v1/payouts", json=payout_body(reference, **override))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_failed"
    assert {(p["field"], p["rule"]) for p in body["problems"]} == problems
    assert all(p["message"] for p in body["problems"])
    await assert_not_started(client, payout_workflow_id("acme", reference))


async def test_phone_and_amount_problems_are_explained_in_words(
    stack: Stack, client: Client, reference: str
) -> None:
    body = payout_body(reference, phone="+2250701020304", amount=5000.5)
    with stack.gateway() as http:
        bad_amount = http.post("/v1/payouts", json=body)
        bad_phone = http.post("/v1/payouts", json={**body, "amount": 5000})
    assert bad_amount.status_code == bad_phone.status_code == 422
    ((amount,), (phone,)) = (bad_amount.json()["problems"], bad_phone.json()["problems"])
    assert amount == {
        "field": "amount",
        "rule": "whole_number",
        "message": "amount must be an integer in the currency's minor unit (XOF and XAF have "
        "none): 5000.5 has decimals",
    }
    assert (phone["field"], phone["rule"]) == ("recipient.phone", "number_in_country")
    assert phone["message"].startswith(
        "the number belongs to Côte d'Ivoire (CI), not to Senegal (country SN): write the "
        "number in international form (+221 "
    )
    assert "pattern" not in phone["message"] and "0701020304" not in phone["message"]
    await assert_not_started(client, payout_workflow_id("acme", reference))


def test_a_national_number_pays_the_same_payout_as_the_international_one(
    stack: Stack, reference: str
) -> None:
    national = payout_body(reference, phone="77 123 00 01")
    created = post_payout(stack, national)
    with stack.gateway() as http:
        again = http.post("/v1/payouts", json=payout_body(reference, phone="+221771230001"))
        spaced = http.post("/v1/payouts", json=payout_body(reference, phone="00221 77 123 00 01"))
        other = http.post("/v1/payouts", json=payout_body(reference, phone="+221771230002"))
    assert created["recipient_phone_masked"] == "+221*****0001"
    # The same request in another writing: the same payout, not a reference conflict.
    assert again.status_code == spaced.status_code == 200, (again.text, spaced.text)
    assert again.json()["workflow_id"] == created["workflow_id"]
    assert other.status_code == 409
    final = stack.wait_for_payout(reference, {"succeeded"})
    assert final["recipient_phone_masked"] == "+221*****0001"
    assert executions(stack, reference) == 1


def test_a_national_customer_number_is_read_for_the_payins_country(
    stack: Stack, reference: str
) -> None:
    with stack.gateway() as http:
        answer = http.post(
            "/v1/payins",
            json={
                "reference": reference,
                "provider": "caurisflux",
                "mode": "checkout",
                "country": "SN",
                "customer": {"phone": "77 123 10 01", "name": "Aya Kone"},
                "amount": 10_000,
                "currency": "XOF",
                "return_url": "https://shop.example/paid",
            },
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["customer_phone_masked"] == "+221*****1001"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (
            b'{"amount": 1,\n  "currency": ,\n"reference": "REF"}',
            "line 2, column 15: Expecting value",
        ),
        (b'{"amount": 1 "reference": "REF"}', "line 1, column 14: Expecting ',' delimiter"),
        (b"{", "line 1, column 2: Expecting property name enclosed in double quotes"),
        ('{\n"description": "Dakar é",,"reference": "REF"}'.encode(), "line 2, column 26: "),
    ],
)
async def test_malformed_json_is_located_by_line_and_column(
    stack: Stack, client: Client, reference: str, content: bytes, where: str
) -> None:
    with stack.gateway() as http:
        answer = http.post(
            "/v1/payouts",
            # The reference comes after the error, so it does not move the position.
            content=content.replace(b"REF", reference.encode()),
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert (problem["field"], problem["rule"]) == ("body", "json_invalid")
    assert problem["message"].startswith(f"invalid JSON at {where}")
    await assert_not_started(client, payout_workflow_id("acme", reference))


async def test_bad_reference_is_refused_before_anything_starts(stack: Stack) -> None:
    with stack.gateway() as http:
        answer = http.post("/v1/payouts", json=payout_body("has spaces/and slashes"))
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "reference"


def test_a_merchant_sees_only_its_own_payouts(stack: Stack, reference: str) -> None:
    post_payout(stack, payout_body(reference))
    with stack.gateway(key=GLOBEX_KEY) as http:
        answer = http.get(f"/v1/payouts/{reference}")
        same_reference = http.post("/v1/payouts", json=payout_body(reference, amount=70_000))
    assert answer.status_code == 404
    # The same reference belongs to each merchant separately: globex gets its own payout.
    assert same_reference.status_code == 201
    assert same_reference.json()["workflow_id"] == f"payout-globex-{reference}"


def test_webhook_for_an_unknown_reference_is_acknowledged(stack: Stack) -> None:
    """Not one of our workflow ids: ignored. One of ours that does not exist (yet): kept in
    the webhook inbox (``tests/test_webhook_inbox.py``). Both 2xx."""
    foreign, foreign_headers = signed_caurisflux_webhook(
        {
            "event": "payout.success",
            "data": {"transactionId": "PO1", "externalReference": "ORDER-9"},
        }
    )
    gone, gone_headers = signed_caurisflux_webhook(
        {
            "event": "payout.success",
            "data": {"transactionId": "PO2", "externalReference": "payout-acme-NEVER-STARTED"},
        }
    )
    with stack.gateway(key=None) as http:
        not_ours = http.post("/webhooks/caurisflux", content=foreign, headers=foreign_headers)
        no_workflow = http.post("/webhooks/caurisflux", content=gone, headers=gone_headers)
    # 2xx so the provider stops retrying something that can never matter.
    assert not_ours.status_code == 200 and not_ours.json()["status"] == "ignored"
    # 2xx once kept durably: the provider may never send it again.
    assert no_workflow.status_code == 200 and no_workflow.json()["status"] == "kept"


def test_webhook_that_is_not_json_is_a_400(stack: Stack) -> None:
    body = b"definitely not json"
    ts = str(int(time.time()))
    sig = hmac.new(WEBHOOK_SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    with stack.gateway(key=None) as http:
        answer = http.post(
            "/webhooks/caurisflux",
            content=body,
            headers={"X-Webhook-Signature": sig, "X-Webhook-Timestamp": ts},
        )
    assert answer.status_code == 400
    assert answer.json()["error"] == "webhook_bad_body"


def test_huge_webhook_is_refused_unread(stack: Stack) -> None:
    with stack.gateway(key=None) as http:
        answer = http.post("/webhooks/caurisflux", content=b"x" * (70 * 1024))
    assert answer.status_code == 413


def test_stale_webhook_is_refused(stack: Stack) -> None:
    body, headers = signed_caurisflux_webhook(
        {"event": "payout.success", "data": {"externalReference": "payout-acme-X"}},
        timestamp=int(time.time()) - 3600,
    )
    with stack.gateway(key=None) as http:
        answer = http.post("/webhooks/caurisflux", content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "webhook_stale"


def test_openapi_docs_and_health_are_served(stack: Stack) -> None:
    with stack.gateway(key=None) as http:
        spec = http.get("/openapi.json").json()
        docs = http.get("/docs")
        health = http.get("/healthz")
        ready = http.get("/readyz")
    assert "/v1/payouts" in spec["paths"] and "/v1/payouts/{reference}" in spec["paths"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200


def test_unroutable_mobilepay_hint_is_kept_in_the_inbox(stack: Stack) -> None:
    """MOBILE-PAY names only its own transaction id, and never sends a webhook twice; when
    no workflow has published that id yet, the event is kept in the webhook inbox before
    the 2xx answer (``tests/test_webhook_inbox.py`` follows one to its payout)."""
    import json

    from tests.stack import MOBILEPAY_WEBHOOK_TOKEN

    body = json.dumps(
        {
            "event": "transfer.completed",
            "timestamp": "2026-11-23T12:00:00Z",
            "data": {
                "transfer_id": "TRF999999",
                "amount": 100,
                "currency": "FCFA",
                "status": "completed",
            },
        }
    ).encode()
    with stack.gateway(key=None) as http:
        answer = http.post(
            f"/webhooks/mobilepay/{MOBILEPAY_WEBHOOK_TOKEN}",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "kept", "inbox": "webhook-inbox-mobilepay-TRF999999"}


# --------------------------------------------------------------------------- long-poll


@pytest.mark.parametrize(
    ("path", "query", "field", "rule"),
    [
        ("/v1/payouts/{}", "wait_s=0", "wait_s", "greater_than"),
        ("/v1/payouts/{}", "wait_s=61", "wait_s", "less_than_equal"),
        ("/v1/payouts/{}", "wait_s=soon", "wait_s", "float_parsing"),
        ("/v1/payouts/{}", "wait_s=5&while_status=paid", "while_status", "enum"),
        ("/v1/payins/{}", "wait_s=-1", "wait_s", "greater_than"),
        ("/v1/payins/{}/refund", "wait_s=600", "wait_s", "less_than_equal"),
        ("/v1/campaigns/{}", "wait_s=5&while_phase=done", "while_phase", "enum"),
    ],
)
def test_a_bad_long_poll_is_a_422_naming_the_parameter_and_its_rule(
    stack: Stack, reference: str, path: str, query: str, field: str, rule: str
) -> None:
    with stack.gateway() as http:
        answer = http.get(f"{path.format(reference)}?{query}")
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_failed"
    assert [(p["field"], p["rule"]) for p in body["problems"]] == [(field, rule)]


def test_a_long_poll_answers_as_soon_as_the_payout_settles(stack: Stack, reference: str) -> None:
    created = post_payout(stack, payout_body(reference))
    with stack.gateway() as http:
        started = time.monotonic()
        settled = http.get(f"/v1/payouts/{reference}?wait_s=45", timeout=60)
        took = time.monotonic() - started
        started = time.monotonic()
        unchanged = http.get(f"/v1/payouts/{reference}?wait_s=1.5&while_status=succeeded")
        held = time.monotonic() - started

    assert created["status"] == "created"
    assert settled.status_code == 200 and settled.json()["status"] == "succeeded"
    # The sandbox settles a payout in seconds: the answer came then, not at the deadline.
    assert took < 30, took
    # Nothing changes any more: the current state, at the deadline at the latest.
    assert unchanged.status_code == 200 and unchanged.json()["status"] == "succeeded"
    assert held < 1.5 + 2.5, held


def test_a_long_poll_answers_at_its_deadline_and_stops_when_the_caller_leaves(
    stack: Stack,
) -> None:
    from momoflow.ids import campaign_workflow_id
    from tests.test_campaigns import line, submit, wait_phase

    tag = f"LP{uuid.uuid4().hex[:6]}"
    reference, submitted = submit(stack, [line(f"{tag}-1", "caurisflux", 1)])
    assert submitted.status_code == 201, submitted.text
    wait_phase(stack, reference, {"awaiting_approval"})
    gateway = stack.processes["gateway"]
    try:
        with stack.gateway() as http:
            started = time.monotonic()
            held = http.get(f"/v1/campaigns/{reference}?wait_s=1.5")
            took = time.monotonic() - started
            # Awaiting approval is not final: without while_phase the wait lasts to the end.
            assert held.status_code == 200 and held.json()["phase"] == "awaiting_approval"
            assert 1.5 <= took < 1.5 + 2.5, took

            with pytest.raises(httpx.ReadTimeout):
                http.get(f"/v1/campaigns/{reference}?wait_s=50", timeout=1.0)
            left_at = time.monotonic()
        said = f"{campaign_workflow_id('acme', reference)}: the caller left its wait after"
        found = wait_until(
            lambda: [line for line in gateway.tail(400).splitlines() if said in line],
            timeout=10,
            what="the gateway noticing the caller left",
        )
        noticed = time.monotonic() - left_at
        waited_s = float(found[-1].split(said, 1)[1].split()[0])
        assert waited_s < 5 and noticed < 5, (found, noticed)
    finally:
        with stack.gateway() as http:
            http.post(f"/v1/campaigns/{reference}/cancel", json={"by": "test", "reason": "done"})
