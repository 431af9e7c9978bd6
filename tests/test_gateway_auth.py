"""The business API's authentication and merchant scoping, over every ``/v1`` operation.

The operations are read from the gateway's own OpenAPI document, so an endpoint added later
is covered without touching this file. The key is checked for every path under ``/v1``
before routing (``ApiKeyGate``), so even a route left out of the document, or one that does
not exist, is a 401 to a caller without a key.

* Without a valid API key every operation is a 401 that names the scheme, and the request
  body is not even read (a broken body is still a 401, not a 400 or a 422).
* A merchant's key reaches its own transactions only. Another merchant gets the very answer
  it would get for a reference nobody used: 404, never 403, so the answer does not even
  reveal that the reference exists. And its attempts change nothing.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from momoflow.settings import DEV_API_KEY, DEV_OPERATOR_TOKEN
from tests.stack import ACME_KEY, GLOBEX_KEY, Stack, wait_until
from tests.test_campaigns import HEADER as CAMPAIGN_HEADER
from tests.test_campaigns import control, line, wait_phase
from tests.test_payout_flow import payout_body, post_payout
from tests.test_refunds import post_refund, succeeded_novasend_payin

#: Credentials that must not open the business API: (name, headers).
NOT_A_KEY: list[tuple[str, dict[str, str]]] = [
    ("no credentials", {}),
    ("unknown key", {"Authorization": "Bearer mf_test_not_a_key"}),
    ("bearer without a key", {"Authorization": "Bearer"}),
    ("another scheme", {"Authorization": "Basic " + base64.b64encode(b"acme:x").decode()}),
    ("key without a scheme", {"Authorization": ACME_KEY}),
    ("a codec operator's token", {"Authorization": f"Bearer {DEV_OPERATOR_TOKEN}"}),
    # Not configured in the test stack (it has its own keys).
    ("the local demo key", {"Authorization": f"Bearer {DEV_API_KEY}"}),
    # X-API-Key wins over Authorization: a wrong one is not rescued by a right one.
    ("wrong X-API-Key", {"X-API-Key": "wrong", "Authorization": f"Bearer {ACME_KEY}"}),
]
#: A body no endpoint could parse: authentication must come first anyway.
BROKEN_BODY = b"\x00{not json"
PLACEHOLDER = "SOME-REF"


def v1_operations(stack: Stack) -> list[tuple[str, str]]:
    """(method, path template) of every ``/v1`` operation the gateway documents."""
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as http:
        spec = http.get("/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    )


def test_every_v1_operation_is_a_401_without_a_valid_key(stack: Stack) -> None:
    operations = v1_operations(stack)
    assert len(operations) >= 14, operations
    # Not a route: without a key, nothing tells it apart from one.
    operations += [("GET", "/v1/not-a-route"), ("POST", "/v1/payouts/{reference}/not-a-route")]
    wrong: list[str] = []
    with httpx.Client(base_url=stack.gateway_url, timeout=15) as http:
        for method, template in operations:
            path = template.replace("{reference}", PLACEHOLDER)
            for name, headers in NOT_A_KEY:
                answer = http.request(
                    method,
                    path,
                    params={"reference": PLACEHOLDER},
                    content=BROKEN_BODY if method == "POST" else None,
                    headers={"Content-Type": "application/json", **headers},
                )
                body = (
                    answer.json()
                    if answer.headers.get("content-type", "").startswith("application/json")
                    else {}
                )
                if (
                    answer.status_code != 401
                    or body.get("error") != "unauthenticated"
                    or answer.headers.get("www-authenticate") != "Bearer"
                ):
                    wrong.append(f"{method} {template} with {name}: {answer.status_code} {body}")
    assert not wrong, "\n".join(wrong)


# ------------------------------------------------------------------------------ scoping


@pytest.fixture(scope="module")
def acme_references(stack: Stack) -> Iterator[dict[str, str]]:
    """One of each of ACME's resources: a payout, a payin that has a refund, a campaign
    awaiting approval. Keyed by the first segment after ``/v1/``."""
    payout = f"SCOPE-PO-{uuid.uuid4().hex[:10]}"
    post_payout(stack, payout_body(payout))
    payin = f"SCOPE-PI-{uuid.uuid4().hex[:10]}"
    succeeded_novasend_payin(stack, payin)
    post_refund(stack, payin, 201, reason="scoping test")
    campaign = f"SCOPE-C-{uuid.uuid4().hex[:10]}"
    body = "\n".join([CAMPAIGN_HEADER, line(f"{campaign}-1", "novasend", 1)]) + "\n"
    with stack.gateway(ACME_KEY) as http:
        answer = http.post(
            "/v1/campaigns",
            params={"reference": campaign},
            content=body.encode(),
            headers={"Content-Type": "text/csv"},
        )
    assert answer.status_code == 201, answer.text
    wait_phase(stack, campaign, {"awaiting_approval"})
    yield {"payouts": payout, "payins": payin, "campaigns": campaign}
    control(stack, campaign, "cancel", {"by": "scoping test"})


#: A valid body for each operation that takes one, so that validation cannot answer first.
BODIES: dict[str, dict[str, Any]] = {
    "/v1/payins/{reference}/refund": {"reason": "not mine to refund"},
    "/v1/campaigns/{reference}/approve": {"approved_by": "globex"},
    "/v1/campaigns/{reference}/pause": {"by": "globex"},
    "/v1/campaigns/{reference}/resume": {"by": "globex"},
    "/v1/campaigns/{reference}/cancel": {"by": "globex", "reason": "not mine"},
    "/v1/campaigns/{reference}/retry": {"by": "globex"},
}


def _without(reference: str, text: str) -> str:
    return re.sub(re.escape(reference), "<ref>", text)


def test_another_merchant_gets_the_answer_for_a_reference_nobody_used(
    stack: Stack, acme_references: dict[str, str]
) -> None:
    """GLOBEX, on each of ACME's resources, through every operation that takes a
    reference: the same 404 as for a reference that does not exist at all."""
    operations = [(m, p) for m, p in v1_operations(stack) if "{reference}" in p]
    assert len(operations) >= 11, operations
    leaks: list[str] = []
    with stack.gateway(GLOBEX_KEY) as http:
        for method, template in operations:
            kind = template.split("/")[2]
            assert kind in acme_references, f"no ACME {kind} to check {template} with"
            if method == "POST":
                assert template in BODIES, f"no valid body for {template}"
            answers = {}
            for reference in (acme_references[kind], f"NOBODY-{uuid.uuid4().hex[:10]}"):
                answer = http.request(
                    method,
                    template.replace("{reference}", reference),
                    json=BODIES.get(template) if method == "POST" else None,
                )
                answers[reference] = (answer.status_code, _without(reference, answer.text))
            foreign, unused = answers.values()
            if foreign[0] != 404 or foreign != unused:
                leaks.append(f"{method} {template}: ACME's {foreign} vs unused {unused}")
    assert not leaks, "\n".join(leaks)


def test_another_merchants_attempts_change_nothing(
    stack: Stack, acme_references: dict[str, str]
) -> None:
    """After GLOBEX tried to approve, cancel, pause and refund ACME's things, ACME still
    sees them exactly as they were."""
    with stack.gateway(ACME_KEY) as http:
        before = {
            "campaign": http.get(f"/v1/campaigns/{acme_references['campaigns']}").json(),
            "refund": http.get(f"/v1/payins/{acme_references['payins']}/refund").json(),
        }
    with stack.gateway(GLOBEX_KEY) as http:
        for template, body in BODIES.items():
            kind = template.split("/")[2]
            path = template.replace("{reference}", acme_references[kind])
            assert http.post(path, json=body).status_code == 404
    with stack.gateway(ACME_KEY) as http:
        campaign = http.get(f"/v1/campaigns/{acme_references['campaigns']}").json()
        refund = http.get(f"/v1/payins/{acme_references['payins']}/refund").json()
    assert campaign["phase"] == "awaiting_approval" == before["campaign"]["phase"]
    assert campaign.get("approved_by") == before["campaign"].get("approved_by")
    assert refund["workflow_id"] == before["refund"]["workflow_id"]
    assert refund["reason"] == "scoping test"
    # ACME's key still works on all of them (the 404s above were about GLOBEX).
    with stack.gateway(ACME_KEY) as http:
        for kind, reference in acme_references.items():
            assert wait_until(
                lambda k=kind, r=reference: http.get(f"/v1/{k}/{r}").status_code == 200,
                timeout=15,
                what=f"ACME reading its {kind}",
            )
