"""``momoflow.client`` against the real stack (gateway, Temporal, worker, sandboxes), plus
its retry policy against a scripted transport (a real gateway cannot be made to answer 503
on demand)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from momoflow import search_attributes as sa
from momoflow.business_requests import PayoutRequest
from momoflow.client import (
    CampaignProgress,
    CampaignStateConflict,
    CampaignSubmission,
    MomoflowClient,
    MomoflowTimeout,
    NotFound,
    NotRefundable,
    ReferenceConflict,
    RefundNotSupported,
    ServiceUnavailable,
    SyncMomoflowClient,
    Unauthenticated,
    UnencryptedClient,
    ValidationFailed,
    start_payout_on_temporal,
)
from momoflow.ids import payout_workflow_id
from momoflow.models import PayoutState, RefundState, TransactionStatus
from momoflow.settings import Settings
from tests.stack import ACME_KEY, Stack
from tests.test_campaigns import HEADER as CAMPAIGN_HEADER
from tests.test_campaigns import executions, line
from tests.test_payout_flow import payout_body

WAIT_S = 60.0


def momoflow_client(stack: Stack, key: str = ACME_KEY, **kwargs: Any) -> MomoflowClient:
    return MomoflowClient(stack.gateway_url, key, **kwargs)


def gateway_settings(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the stack's gateway runs with (same secret, queues, public URL)."""
    for name, value in stack.env.items():
        if name.startswith("MOMOFLOW_"):
            monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def require_route(stack: Stack, method: str, path: str) -> None:
    """Fail unless the stack's gateway serves ``method path`` (read from its OpenAPI): the
    client must not drift from the API it speaks."""
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as http:
        paths = http.get("/openapi.json").raise_for_status().json()["paths"]
    assert method.lower() in paths.get(path, {}), f"the gateway does not serve {method} {path}"


# --------------------------------------------------------------------------- payouts


async def test_an_invalid_mapping_fails_in_pydantic_before_any_request(
    stack: Stack, client: Client, reference: str
) -> None:
    # Proof that nothing was sent: no HTTP request left the client, and no workflow exists
    # (the sandbox's request count is none: earlier tests' payouts still poll it).
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        async with momoflow_client(stack, http=http) as momo:
            with pytest.raises(pydantic.ValidationError) as info:
                await momo.create_payout(payout_body(reference, amount=100.5))

    assert {e["loc"] for e in info.value.errors()} == {("amount",)}
    assert sent == []
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(payout_workflow_id("acme", reference)).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_create_get_and_wait_for_a_payout(stack: Stack, reference: str) -> None:
    async with momoflow_client(stack) as momo:
        created = await momo.create_payout(PayoutRequest.model_validate(payout_body(reference)))
        read = await momo.get_payout(reference)
        final = await momo.wait_for_payout(reference, timeout=WAIT_S, poll_interval=0.5)

    assert isinstance(created, PayoutState)
    assert created.status is TransactionStatus.CREATED
    assert created.workflow_id == read.workflow_id == f"payout-acme-{reference}"
    assert read.amount == 50_000 and read.recipient_phone_masked == "+221*****0001"
    assert final.status is TransactionStatus.SUCCEEDED
    assert final.fees == 750 and final.net_amount == 49_250


async def test_the_same_request_twice_is_the_same_payout(stack: Stack, reference: str) -> None:
    async with momoflow_client(stack) as momo:
        first = await momo.create_payout(payout_body(reference))
        second = await momo.create_payout(payout_body(reference))
        await momo.wait_for_payout(reference, timeout=WAIT_S, until={"succeeded"})
        after_success = await momo.create_payout(payout_body(reference))

    # The second answer is the running payout's own state (200), not a new one.
    assert (second.workflow_id, second.reference, second.amount) == (
        first.workflow_id,
        first.reference,
        first.amount,
    )
    assert after_success.workflow_id == first.workflow_id
    assert after_success.status is TransactionStatus.SUCCEEDED


async def test_a_write_says_whether_it_created_the_payout_or_replayed_it(
    stack: Stack, reference: str
) -> None:
    async with momoflow_client(stack) as momo:
        first = await momo.create_payout_result(payout_body(reference))
        second = await momo.create_payout_result(payout_body(reference))
        plain = await momo.create_payout(payout_body(reference))
        await momo.wait_for_payout(reference, timeout=WAIT_S)

    assert (first.created, first.replayed) == (True, False)
    assert (second.created, second.replayed) == (False, True)
    assert isinstance(second.state, PayoutState)
    same = ("workflow_id", "reference", "amount", "currency", "created_at")
    assert first.state.model_dump(include=set(same)) == second.state.model_dump(include=set(same))
    assert plain.workflow_id == first.state.workflow_id
    assert first.request_id and second.request_id and first.request_id != second.request_id


async def test_the_same_reference_with_another_request_is_a_conflict(
    stack: Stack, reference: str
) -> None:
    async with momoflow_client(stack) as momo:
        await momo.create_payout(payout_body(reference))
        with pytest.raises(ReferenceConflict) as info:
            await momo.create_payout(payout_body(reference, amount=70_000))
        await momo.wait_for_payout(reference, timeout=WAIT_S)

    assert info.value.status == 409 and info.value.code == "reference_conflict"
    assert reference in str(info.value)


async def test_business_rules_fail_with_typed_problems(stack: Stack, reference: str) -> None:
    async with momoflow_client(stack) as momo:
        with pytest.raises(ValidationFailed) as info:
            # Passes pydantic (mtn_momo is an operator) but CaurisFlux offers no MTN in SN.
            await momo.create_payout(payout_body(reference, operator="mtn_momo"))
        with pytest.raises(NotFound):
            await momo.get_payout(reference)

    problems = info.value.problems
    assert [(p.field, p.rule) for p in problems] == [("operator", "operator_in_country")]
    assert problems[0].field == "operator"
    assert "nothing was started" in str(info.value) and problems[0].message in str(info.value)


async def test_a_wrong_key_is_unauthenticated_and_never_echoed(
    stack: Stack, reference: str
) -> None:
    key = "mf_wrong_key_that_must_not_leak"
    async with momoflow_client(stack, key=key) as momo:
        with pytest.raises(Unauthenticated) as created:
            await momo.create_payout(payout_body(reference))
        with pytest.raises(Unauthenticated) as read:
            await momo.get_payout(reference)
        assert key not in repr(momo)

    for error in (created.value, read.value):
        assert error.status == 401 and error.message
        assert key not in str(error) and key not in repr(error)


async def test_an_unknown_reference_is_not_found(stack: Stack, reference: str) -> None:
    async with momoflow_client(stack) as momo:
        with pytest.raises(NotFound) as info:
            await momo.get_payout(reference)
        with pytest.raises(NotFound):
            await momo.wait_for_payout(reference, timeout=5)
        with pytest.raises(ValueError):
            await momo.get_payout("../../healthz")

    assert info.value.status == 404 and reference in str(info.value)


async def test_waiting_past_the_deadline_raises_with_the_last_state(
    stack: Stack, reference: str
) -> None:
    async with momoflow_client(stack) as momo:
        await momo.create_payout(payout_body(reference))
        started = time.monotonic()
        with pytest.raises(MomoflowTimeout) as info:
            await momo.wait_for_payout(reference, timeout=1.5, poll_interval=0.5, until=set())
        elapsed = time.monotonic() - started
        await momo.wait_for_payout(reference, timeout=WAIT_S)

    assert 1.5 <= elapsed < 5
    last = info.value.last_state
    assert isinstance(last, PayoutState) and last.reference == reference


async def test_waiting_long_polls_a_few_requests_instead_of_one_a_second(
    stack: Stack, reference: str
) -> None:
    """A payout the provider keeps processing until the test settles it, 12 s later: the
    wait sends a request per change of status, not one per second."""
    reads: list[str] = []

    async def count(request: httpx.Request) -> None:
        if request.method == "GET":
            reads.append(str(request.url.query, "ascii"))

    async def settle_later() -> None:
        async with momoflow_client(stack) as other:
            pending = await other.wait_for_payout(reference, timeout=WAIT_S, until={"pending"})
        await asyncio.sleep(12)
        with stack.sandbox() as http:
            http.post(
                f"/_sandbox/transactions/{pending.provider_transaction_id}/settle",
                json={"status": "completed"},
            ).raise_for_status()

    async with (
        httpx.AsyncClient(event_hooks={"request": [count]}) as http,
        momoflow_client(stack, http=http) as momo,
    ):
        await momo.create_payout(payout_body(reference, phone="+221770000003"))
        settling = asyncio.create_task(settle_later())
        started = time.monotonic()
        final = await momo.wait_for_payout(reference, timeout=WAIT_S)
        elapsed = time.monotonic() - started
        await settling

    assert final.status is TransactionStatus.SUCCEEDED
    assert 12 <= elapsed < 30, elapsed
    # One read, then one per status (quoting, submitting, pending); a second each would
    # have been a dozen or more.
    assert len(reads) <= min(6, elapsed / 3), (len(reads), elapsed, reads)
    assert any("wait_s=" in query and "while_status=pending" in query for query in reads)


async def test_a_gateway_that_ignores_the_long_poll_is_read_with_growing_pauses(
    reference: str,
) -> None:
    """An older gateway answers ``?wait_s=`` at once: the wait backs off instead of
    reading in a loop."""
    pending = {**state_json(reference), "status": "pending"}
    answers = [httpx.Response(200, json=pending)] * 5
    answers.append(httpx.Response(200, json={**pending, "status": "succeeded"}))
    transport, seen = scripted(*answers)
    moments: list[float] = []

    async def stamp(request: httpx.Request) -> None:
        moments.append(time.monotonic())

    async with httpx.AsyncClient(transport=transport, event_hooks={"request": [stamp]}) as http:
        momo = MomoflowClient("http://momoflow.test", "k1", http=http)
        final = await momo.wait_for_payout(reference, timeout=30, poll_interval=0.2)

    assert final.status is TransactionStatus.SUCCEEDED
    assert len(seen) == 6
    gaps = [round(b - a, 1) for a, b in zip(moments, moments[1:], strict=False)]
    # Read, long-poll answered at once, then pauses of 0.2, 0.4, 0.8 and 1.6 s.
    assert gaps[0] < 0.1 and gaps[1:] == pytest.approx([0.2, 0.4, 0.8, 1.6], abs=0.1), gaps


async def test_start_payout_on_temporal_is_the_gateways_payout(
    stack: Stack, client: Client, reference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = gateway_settings(stack, monkeypatch)
    request = PayoutRequest.model_validate(payout_body(reference))

    workflow_id = await start_payout_on_temporal(client, "acme", request, settings)
    again = await start_payout_on_temporal(client, "acme", payout_body(reference), settings)
    with pytest.raises(ReferenceConflict):
        await start_payout_on_temporal(
            client, "acme", payout_body(reference, amount=70_000), settings
        )
    with pytest.raises(ValidationFailed) as invalid:
        await start_payout_on_temporal(
            client, "acme", payout_body(f"{reference}-x", operator="mtn_momo"), settings
        )
    async with momoflow_client(stack) as momo:
        through_gateway = await momo.create_payout(request)
        final = await momo.wait_for_payout(reference, timeout=WAIT_S)

    assert workflow_id == again == f"payout-acme-{reference}"
    # The gateway recognises the same request (same fingerprint): 200 with this payout.
    assert through_gateway.workflow_id == workflow_id
    assert final.status is TransactionStatus.SUCCEEDED
    assert invalid.value.problems[0].field == "operator"
    description = await client.get_workflow_handle(workflow_id).describe()
    assert description.typed_search_attributes.get(sa.REFERENCE) == reference
    assert description.typed_search_attributes.get(sa.MERCHANT) == "acme"


async def test_a_client_that_would_store_the_request_in_clear_is_refused(
    stack: Stack, reference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain ``Client.connect()`` has no payload codec: the phone number and name would
    sit in the history as ``json/plain``. Nothing is started."""
    settings = gateway_settings(stack, monkeypatch)
    plain = await Client.connect(stack.temporal_address)

    with pytest.raises(UnencryptedClient, match="connect_client"):
        await start_payout_on_temporal(plain, "acme", payout_body(reference), settings)

    with stack.gateway() as http:
        assert http.get(f"/v1/payouts/{reference}").status_code == 404


def test_the_sync_client_creates_and_waits(stack: Stack, reference: str) -> None:
    with SyncMomoflowClient(stack.gateway_url, ACME_KEY) as momo:
        created = momo.create_payout(payout_body(reference))
        final = momo.wait_for_payout(reference, timeout=WAIT_S, poll_interval=0.5)
        with pytest.raises(ReferenceConflict):
            momo.create_payout(payout_body(reference, amount=70_000))

    assert created.workflow_id == final.workflow_id == f"payout-acme-{reference}"
    assert final.status is TransactionStatus.SUCCEEDED


def test_the_sync_client_says_created_then_replayed_for_a_payin(
    stack: Stack, reference: str
) -> None:
    with SyncMomoflowClient(stack.gateway_url, ACME_KEY) as momo:
        first = momo.create_payin_result(checkout_body(reference))
        second = momo.create_payin_result(checkout_body(reference))
        momo.wait_for_payin(reference, timeout=WAIT_S)

    assert first.created and second.replayed
    assert second.state.workflow_id == first.state.workflow_id == f"payin-acme-{reference}"
    assert second.state.payment_url == first.state.payment_url is not None


# --------------------------------------------------------------------------- payins


def checkout_body(reference: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "provider": "caurisflux",
        "mode": "checkout",
        "country": "SN",
        "amount": 5_000,
        "currency": "XOF",
        "description": "test payin",
        "return_url": "https://shop.example/paid",
    }


async def test_a_checkout_payin_gets_a_payment_url(stack: Stack, reference: str) -> None:
    require_route(stack, "POST", "/v1/payins")
    async with momoflow_client(stack) as momo:
        created = await momo.create_payin(checkout_body(reference))
        again = await momo.create_payin(checkout_body(reference))
        read = await momo.get_payin(reference)
        final = await momo.wait_for_payin(reference, timeout=WAIT_S, poll_interval=0.5)

    assert created.workflow_id == f"payin-acme-{reference}"
    assert created.payment_url
    assert again.workflow_id == read.workflow_id == created.workflow_id
    assert again.payment_url == created.payment_url
    assert final.status is TransactionStatus.SUCCEEDED


async def test_a_novasend_payin_is_refunded_once(stack: Stack, reference: str) -> None:
    require_route(stack, "POST", "/v1/payins")
    require_route(stack, "POST", "/v1/payins/{reference}/refund")
    direct = {
        **checkout_body(reference),
        "provider": "novasend",
        "mode": "direct",
        "country": "CI",
        "operator": "wave",
        "customer": {"phone": "+2250701231001", "name": "Aya Kone"},
    }
    async with momoflow_client(stack) as momo:
        await momo.create_payin(direct)
        payin = await momo.wait_for_payin(reference, timeout=WAIT_S, poll_interval=0.5)
        assert payin.status is TransactionStatus.SUCCEEDED, payin.timeline
        with pytest.raises(NotFound):
            await momo.get_refund(reference)
        started = await momo.refund_payin_result(reference, "order cancelled by the customer")
        again = await momo.refund_payin(reference, "asked twice")
        replayed = await momo.refund_payin_result(reference, "asked three times")
        final = await momo.wait_for_refund(reference, timeout=WAIT_S, poll_interval=0.5)

    created = started.state
    assert isinstance(created, RefundState)
    assert started.created and replayed.replayed
    assert created.workflow_id == again.workflow_id == replayed.state.workflow_id
    assert created.workflow_id == final.workflow_id
    assert again.reason == "order cancelled by the customer"
    assert final.status is TransactionStatus.SUCCEEDED and final.reference == reference


async def test_refunds_at_a_provider_without_refunds_are_refused(
    stack: Stack, reference: str
) -> None:
    require_route(stack, "POST", "/v1/payins")
    require_route(stack, "POST", "/v1/payins/{reference}/refund")
    async with momoflow_client(stack) as momo:
        await momo.create_payin(checkout_body(reference))
        await momo.wait_for_payin(reference, timeout=WAIT_S, until={"succeeded"})
        with pytest.raises(RefundNotSupported) as info:
            await momo.refund_payin(reference, "customer returned the goods")

    assert info.value.code == "refund_not_supported"
    assert "manual" in info.value.message


async def test_a_payin_that_did_not_succeed_is_not_refundable(stack: Stack, reference: str) -> None:
    require_route(stack, "POST", "/v1/payins")
    require_route(stack, "POST", "/v1/payins/{reference}/refund")
    declined = {**checkout_body(reference), "customer": {"phone": "+221770000000"}}
    async with momoflow_client(stack) as momo:
        await momo.create_payin(declined)
        payin = await momo.wait_for_payin(reference, timeout=WAIT_S, poll_interval=0.5)
        with pytest.raises(NotRefundable) as info:
            await momo.refund_payin(reference, "cancelled")

    assert payin.status is TransactionStatus.FAILED
    assert info.value.code == "payin_not_refundable" and reference in str(info.value)


# --------------------------------------------------------------------------- retry policy


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[str]]:
    """A transport answering each request with the next item (an exception is raised)."""
    seen: list[str] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path} {request.headers['authorization']}")
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def unavailable(retry_after: str = "0") -> httpx.Response:
    return httpx.Response(
        503,
        json={"error": "temporal_unavailable", "message": "retry later"},
        headers={"Retry-After": retry_after},
    )


def state_json(reference: str) -> dict[str, Any]:
    now = "2026-01-01T00:00:00Z"
    return {
        "workflow_id": f"payout-acme-{reference}",
        "merchant": "acme",
        "reference": reference,
        "provider": "caurisflux",
        "country": "SN",
        "operator": "wave",
        "recipient_phone_masked": "+221*****0001",
        "amount": 50_000,
        "currency": "XOF",
        "created_at": now,
        "updated_at": now,
        "a_field_from_a_newer_server": True,
    }


async def test_a_503_is_retried_after_retry_after_then_succeeds(reference: str) -> None:
    transport, seen = scripted(
        unavailable("1"),
        httpx.ConnectError("refused"),
        httpx.Response(201, json=state_json(reference)),
    )
    async with httpx.AsyncClient(transport=transport) as http:
        momo = MomoflowClient("http://momoflow.test/", "k1", http=http)
        started = time.monotonic()
        state = await momo.create_payout(payout_body(reference))

    assert time.monotonic() - started >= 1.0
    assert state.reference == reference
    assert seen == ["POST /v1/payouts Bearer k1"] * 3


async def test_retries_are_bounded_and_never_on_4xx(reference: str) -> None:
    transport, seen = scripted(
        unavailable(), unavailable(), unavailable(),
        httpx.Response(409, json={"error": "reference_conflict", "message": "used"}),
    )  # fmt: skip
    async with httpx.AsyncClient(transport=transport) as http:
        momo = MomoflowClient("http://momoflow.test", "k1", http=http)
        with pytest.raises(ServiceUnavailable) as info:
            await momo.get_payout(reference)
        with pytest.raises(ReferenceConflict):
            await momo.create_payout(payout_body(reference))

    assert len(seen) == 4
    assert info.value.status == 503 and info.value.retry_after == 0
    assert "retry later" in str(info.value)


def test_an_upload_from_a_stream_that_cannot_rewind_is_sent_once() -> None:
    """A file or a seekable stream is sent again after a 503; a pipe cannot be."""

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.left = data

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            size = min(len(buffer), len(self.left))
            buffer[:size], self.left = self.left[:size], self.left[size:]
            return size

    bodies: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return unavailable()

    data = f"{CAMPAIGN_HEADER}\n".encode()
    with httpx.Client(transport=httpx.MockTransport(handle)) as http:
        momo = SyncMomoflowClient("http://momoflow.test", "k1", http=http)
        with pytest.raises(ServiceUnavailable):
            momo.submit_campaign("C-1", io.BytesIO(data))
        rewound = len(bodies)
        with pytest.raises(ServiceUnavailable):
            momo.submit_campaign("C-1", io.BufferedReader(Pipe(data)))

    assert rewound == 3 and bodies[:3] == [data] * 3
    assert bodies[3:] == [data]


def test_the_sync_client_gives_up_on_connection_errors(reference: str) -> None:
    transport, seen = scripted(*[httpx.ConnectError("refused")] * 3)
    with httpx.Client(transport=transport) as http:
        momo = SyncMomoflowClient("http://momoflow.test", "k1", http=http, max_attempts=3)
        with pytest.raises(ServiceUnavailable) as info:
            momo.get_payout(reference)

    assert len(seen) == 3
    assert info.value.status is None and isinstance(info.value.__cause__, httpx.ConnectError)


async def test_refund_errors_are_typed_by_their_code(reference: str) -> None:
    transport, seen = scripted(
        httpx.Response(409, json={"error": "payin_not_refundable", "message": "is pending"}),
        httpx.Response(422, json={"error": "refund_not_supported", "message": "e-mail them"}),
        httpx.Response(404, json={"error": "not_found", "message": "no refund"}),
    )
    async with httpx.AsyncClient(transport=transport) as http:
        momo = MomoflowClient("http://momoflow.test", "k1", http=http)
        with pytest.raises(NotRefundable, match="is pending"):
            await momo.refund_payin(reference, "cancelled")
        with pytest.raises(RefundNotSupported, match="e-mail them"):
            await momo.refund_payin(reference, "cancelled")
        with pytest.raises(NotFound):
            await momo.get_refund(reference)

    assert seen == [
        f"POST /v1/payins/{reference}/refund Bearer k1",
        f"POST /v1/payins/{reference}/refund Bearer k1",
        f"GET /v1/payins/{reference}/refund Bearer k1",
    ]


# --------------------------------------------------------------------------- campaigns


async def wait_for_phase(
    client: MomoflowClient, reference: str, phases: set[str], timeout: float = 120.0
) -> CampaignProgress:
    deadline = time.monotonic() + timeout
    while True:
        progress = await client.get_campaign(reference)
        if progress.phase.value in phases:
            return progress
        assert time.monotonic() < deadline, f"campaign still {progress.phase.value}"
        await asyncio.sleep(0.5)


async def test_a_campaign_from_file_to_report_through_the_client(
    stack: Stack, tmp_path: Path
) -> None:
    tag = f"CL{uuid.uuid4().hex[:6]}"
    rows = [line(f"{tag}-{n}", "novasend", n) for n in range(1, 4)]
    rows.append(f"{tag}-bad,novasend,CI,airtel,+2250701231299,Kone,10000,XOF,")
    data = ("\n".join([CAMPAIGN_HEADER, *rows]) + "\n").encode()
    reference = f"C-{tag}"
    options = CampaignSubmission(name="June suppliers")
    path = tmp_path / "june.csv"
    path.write_bytes(data)
    report_path = tmp_path / "report.csv"

    async with momoflow_client(stack) as client:
        # The same file three ways: from a path and from a stream, it is sent in chunks.
        first = await client.submit_campaign_result(reference, path, options)
        again = await client.submit_campaign(reference, data, options)
        replayed = await client.submit_campaign_result(reference, io.BytesIO(data), options)
        with pytest.raises(ReferenceConflict):
            await client.submit_campaign(reference, data + rows[0].encode() + b"\n", options)
        ready = await wait_for_phase(client, reference, {"awaiting_approval"})
        problems = await client.get_campaign_problems(reference)
        with pytest.raises(CampaignStateConflict) as not_blocked:
            await client.retry_campaign(reference, "ops")
        await client.approve_campaign(reference, "checker")
        done = await client.wait_for_campaign(reference, timeout=120)
        text = await client.get_campaign_report(reference)
        written = await client.download_campaign_report(reference, report_path)
        chunks = [chunk async for chunk in client.iter_campaign_report(reference)]
        with pytest.raises(NotFound):
            await client.download_campaign_report(f"{reference}-none", tmp_path / "none.csv")
    report = list(csv.DictReader(io.StringIO(text)))

    assert report_path.read_bytes() == b"".join(chunks) == text.encode()
    assert written == len(text.encode())
    # A download that failed leaves nothing behind, not even its temporary file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["june.csv", "report.csv"]

    submitted = first.state
    assert submitted.phase.value == "preflight" and submitted.lines == 4
    assert first.created and replayed.replayed
    assert again.campaign_id == replayed.state.campaign_id == submitted.campaign_id
    assert ready.phase.value == "awaiting_approval"
    assert [p.line for p in problems.problems] == [4]
    assert not_blocked.value.status == 409 and not_blocked.value.request_id is not None
    assert done.phase.value == "completed" and done.settled_lines == 3
    paid = {row["reference"]: row["status"] for row in report if row["status"] == "succeeded"}
    assert paid == {f"{tag}-{n}": "succeeded" for n in range(1, 4)}
    for n in range(1, 4):
        assert executions(stack, "novasend", f"{tag}-{n}") == 1
