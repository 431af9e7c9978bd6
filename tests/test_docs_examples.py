"""The documentation's examples are what the code really does: the notification event of
docs/notifications.md is compared with one that a real payout sends over HTTP, and the
notification fields docs/operations.md describes are read from a real delivery."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from momoflow.models import PayoutState
from momoflow.notifications import EVENT_ID_HEADER, EVENT_TYPE_HEADER, verify
from momoflow.sandbox.shared.serving import ThreadedServer
from tests.stack import ACME_NOTIFY_SECRET, MERCHANT_HOST, Stack, wait_until
from tests.test_payout_flow import payout_body, post_payout

DOCS = Path(__file__).resolve().parents[1] / "docs"


def documented_event() -> dict[str, Any]:
    """The event body shown in docs/notifications.md (the line after the HTTP headers)."""
    text = (DOCS / "notifications.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```http\n(.*?)```", text, flags=re.S)
    _headers, _, body = block.partition("\n\n")
    event: dict[str, Any] = json.loads(body)
    return event


def documented_data_fields() -> list[str]:
    """The ``data`` fields listed in the table of docs/notifications.md."""
    text = (DOCS / "notifications.md").read_text(encoding="utf-8")
    section = text.split("### The fields of `data`", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `data\.([a-z_]+)` \|", section, flags=re.M)


@dataclass
class Endpoint:
    """A merchant's notification endpoint that can refuse the first deliveries with 503."""

    url: str = ""
    refuse: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, workflow_id: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            parsed = [(h, json.loads(b)) for h, b in self.received]
        return [(h, e) for h, e in parsed if e["data"]["workflow_id"] == workflow_id]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    found = Endpoint()

    async def receive(request: Request) -> Response:
        body = await request.body()
        verify(ACME_NOTIFY_SECRET, body, request.headers.get("momoflow-signature"), now=time.time())
        with found.lock:
            found.attempts += 1
            if found.refuse > 0:
                found.refuse -= 1
                return Response(status_code=503)
            found.received.append((dict(request.headers), body))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/events", receive, methods=["POST"])])
    with ThreadedServer(app, host=MERCHANT_HOST) as server:
        found.url = f"{server.url}/events"
        yield found


def test_the_documented_event_has_exactly_the_fields_of_a_real_one(
    stack: Stack, endpoint: Endpoint, reference: str
) -> None:
    post_payout(stack, payout_body(reference, notify_url=endpoint.url))
    stack.wait_for_payout(reference, {"succeeded"})
    workflow_id = f"payout-acme-{reference}"
    ((headers, real),) = wait_until(
        lambda: endpoint.events(workflow_id), timeout=30, what="notification"
    )
    documented = documented_event()

    assert sorted(documented) == sorted(real)
    assert sorted(documented["data"]) == sorted(real["data"])
    assert documented["type"] == real["type"] == "payout.succeeded"
    assert real["id"] == f"{workflow_id}:payout.succeeded:1" == headers[EVENT_ID_HEADER.lower()]
    assert documented["id"] == f"{documented['data']['workflow_id']}:payout.succeeded:1"
    assert headers[EVENT_TYPE_HEADER.lower()] == "payout.succeeded"
    # Same JSON types field by field (a null in the example may be anything in reality).
    for name, value in documented["data"].items():
        if value is not None and real["data"][name] is not None:
            assert type(value) is type(real["data"][name]), name
    assert real["data"]["status"] == documented["data"]["status"] == "succeeded"
    assert real["data"]["recipient_phone_masked"] == "+221*****0001"


def test_every_data_field_is_explained_once_in_the_docs() -> None:
    listed = documented_data_fields()
    state_fields = set(PayoutState.model_fields) - {"timeline", "notifications"}

    assert len(listed) == len(set(listed))
    assert set(listed) == state_fields == set(documented_event()["data"])


def test_notification_fields_are_filled_in_when_the_delivery_ends_as_documented(
    stack: Stack, endpoint: Endpoint, reference: str
) -> None:
    """docs/operations.md: attempts, HTTP status and time stay empty while pending."""
    endpoint.refuse = 1_000
    post_payout(stack, payout_body(reference, notify_url=endpoint.url))
    stack.wait_for_payout(reference, {"succeeded"})
    wait_until(lambda: endpoint.attempts >= 1, timeout=30, what="a refused attempt")
    with stack.gateway() as http:
        (pending,) = http.get(f"/v1/payouts/{reference}").json()["notifications"]
    with endpoint.lock:
        endpoint.refuse = 0
    assert pending["status"] == "pending"
    assert (pending["attempts"], pending["http_status"], pending["last_error"]) == (0, None, None)
    assert pending["delivered_at"] is None

    def delivered() -> dict[str, Any] | None:
        with stack.gateway() as http:
            (delivery,) = http.get(f"/v1/payouts/{reference}").json()["notifications"]
        return delivery if delivery["status"] == "delivered" else None

    done = wait_until(delivered, timeout=90, what="delivery")
    assert done["attempts"] == endpoint.attempts >= 2
    assert (done["http_status"], done["last_error"]) == (204, None)
    assert done["delivered_at"] is not None
    ops = (DOCS / "operations.md").read_text(encoding="utf-8")
    assert "| `pending` | `0` | `null` | `null` | `null` |" in ops
