"""Hostile webhooks, for each provider, against a real payout that stays pending.

Each provider gets a payout to its sandbox's "stuck" number (ending ``0003``: the transfer
stays ``processing`` and no final webhook comes), so that nothing but the deliveries of a
test can move it. Every hostile delivery is then checked twice: the gateway's answer (a
clear 4xx with momoflow's error body, or a 2xx-and-ignore where a refusal would make the
provider retry for nothing), and the payout itself: same status, same ``webhooks_received``,
same timeline, and not one more signal in its Temporal history.

How each provider authenticates its webhooks (``docs/providers.md``):

* CaurisFlux signs ``"{timestamp}.{raw body}"`` with HMAC-SHA256 (``X-Webhook-Signature``,
  ``X-Webhook-Timestamp``, tolerance ±300 s).
* NovaSend signs the body with HMAC-SHA256 (``X-Signature-Value``); no timestamp, so a
  replay is recognised by its ``eventId`` instead.
* MOBILE-PAY signs nothing: the secret token in the webhook URL authenticates the delivery,
  and an event is only a hint that makes the workflow read the status.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.stack import (
    MOBILEPAY_WEBHOOK_TOKEN,
    NOVASEND_WEBHOOK_SECRET,
    WEBHOOK_SECRET,
    Stack,
    signed_caurisflux_webhook,
    wait_until,
)
from tests.test_fuzz_gateway import no_constants_from_our_code

PROVIDERS = ("caurisflux", "novasend", "mobilepay")
#: Where each provider's stuck payout goes (the sandboxes' test numbers end in 0003).
STUCK = {
    "caurisflux": ("SN", "wave", "+221771230003"),
    "novasend": ("CI", "wave", "+2250701230003"),
    "mobilepay": ("CI", "orange_money", "+2250701230003"),
}
#: A pending payout is reused for this long after it settled into its stuck state, well
#: within the test stack's ``settle_timeout_s`` (25 s), after which it would reconcile.
REUSE_FOR_S = 10.0
#: What a hostile delivery must leave untouched. (The provider's reference and fees are
#: not watched: the workflow's own status reads go on and may fill them in.)
WATCHED = ("status", "webhooks_received", "timeline", "provider_transaction_id", "failure")
MOBILEPAY_PATH = f"/webhooks/mobilepay/{MOBILEPAY_WEBHOOK_TOKEN}"
HUGE = 5 * 1024 * 1024


@dataclass
class Pending:
    """A payout stuck at its provider, settled: no sandbox webhook is still on its way."""

    provider: str
    reference: str
    workflow_id: str
    transaction_id: str
    settled_at: float


@dataclass
class Delivery:
    """One webhook request: where, what, with which headers."""

    path: str
    body: bytes
    headers: dict[str, str]


# ------------------------------------------------------------------------------ deliveries


def caurisflux(payout: Pending, *, status: str = "completed", **signing: Any) -> Delivery:
    event = "payout.success" if status == "completed" else f"payout.{status}"
    body, headers = signed_caurisflux_webhook(
        {
            "event": event,
            "data": {
                "transactionId": payout.transaction_id,
                "externalReference": payout.workflow_id,
                "status": status,
                "amount": 25_000,
                "currency": "XOF",
            },
        },
        **signing,
    )
    return Delivery("/webhooks/caurisflux", body, headers)


def novasend_signed(body: bytes, secret: str = NOVASEND_WEBHOOK_SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Signature-Value": signature}


def novasend(
    payout: Pending, *, settled: str = "completed", secret: str = NOVASEND_WEBHOOK_SECRET
) -> Delivery:
    body = json.dumps(
        {
            "id": payout.transaction_id,
            "type": "payout",
            "reference": payout.workflow_id,
            "status": "processed" if settled == "completed" else "processing",
            "confirmationStatus": "accepted",
            "amount": 25_000,
            "currency": "XOF",
            "transaction": {"status": settled, "reference": f"tr_{uuid.uuid4().hex[:12]}"},
            "eventId": f"evt_{uuid.uuid4().hex}",
        },
        separators=(",", ":"),
    ).encode()
    return Delivery("/webhooks/novasend", body, novasend_signed(body, secret))


def mobilepay(payout: Pending, *, token: str = MOBILEPAY_WEBHOOK_TOKEN) -> Delivery:
    body = json.dumps(
        {
            "event": "transfer.completed",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {
                "transfer_id": payout.transaction_id,
                "amount": 25_000,
                "currency": "FCFA",
                "status": "completed",
            },
        }
    ).encode()
    return Delivery(f"/webhooks/mobilepay/{token}", body, {"Content-Type": "application/json"})


def success_claim(payout: Pending) -> Delivery:
    """A genuine-looking delivery that says the payout succeeded."""
    return {"caurisflux": caurisflux, "novasend": novasend, "mobilepay": mobilepay}[
        payout.provider
    ](payout)


def with_body(payout: Pending, body: bytes) -> Delivery:
    """``body`` delivered to the payout's provider, authenticated as it would be."""
    if payout.provider == "caurisflux":
        ts = str(int(time.time()))
        digest = hmac.new(WEBHOOK_SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Signature": f"sha256={digest.hexdigest()}",
            "X-Webhook-Timestamp": ts,
        }
        return Delivery("/webhooks/caurisflux", body, headers)
    if payout.provider == "novasend":
        return Delivery("/webhooks/novasend", body, novasend_signed(body))
    return Delivery(MOBILEPAY_PATH, body, {"Content-Type": "application/json"})


# ------------------------------------------------------------------------------ the payout


class PendingPayouts:
    """One settled stuck payout per provider, replaced once it is too old to stay pending
    until the end of the next test."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.current: dict[str, Pending] = {}

    def get(self, provider: str) -> Pending:
        payout = self.current.get(provider)
        if payout is None or time.monotonic() - payout.settled_at > REUSE_FOR_S:
            payout = self._start(provider)
            self.current[provider] = payout
        return payout

    def _start(self, provider: str) -> Pending:
        country, operator, phone = STUCK[provider]
        reference = f"HOSTILE-{uuid.uuid4().hex[:12]}"
        with self.stack.gateway() as http:
            answer = http.post(
                "/v1/payouts",
                json={
                    "reference": reference,
                    "provider": provider,
                    "country": country,
                    "operator": operator,
                    "recipient": {"phone": phone, "name": "Kouadio Yao"},
                    "amount": 25_000,
                    "currency": "XOF",
                    "description": "hostile webhooks target",
                },
            )
        assert answer.status_code == 201, answer.text
        state = self.stack.wait_for_payout(reference, {"pending"})
        transaction_id = state["provider_transaction_id"]

        def settled() -> bool:
            with self.stack.sandbox(provider) as sandbox:
                at_provider = sandbox.get(f"/_sandbox/transactions/{transaction_id}").json()
                deliveries = [
                    d
                    for d in sandbox.get("/_sandbox/webhooks").json()["deliveries"]
                    if d["transactionId"] == transaction_id
                ]
            if at_provider["status"] != "processing" or not all(d["delivered"] for d in deliveries):
                return False
            return bool(read_payout(self.stack, reference)["webhooks_received"] == len(deliveries))

        wait_until(settled, timeout=30, what=f"{provider} payout {reference} settled as stuck")
        return Pending(provider, reference, state["workflow_id"], transaction_id, time.monotonic())


@pytest.fixture(scope="module")
def payouts(stack: Stack) -> PendingPayouts:
    return PendingPayouts(stack)


@pytest.fixture(params=PROVIDERS)
def payout(request: pytest.FixtureRequest, payouts: PendingPayouts) -> Pending:
    return payouts.get(request.param)


def read_payout(stack: Stack, reference: str) -> dict[str, Any]:
    with stack.gateway() as http:
        answer = http.get(f"/v1/payouts/{reference}")
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def _is_provider_event(event: Any) -> bool:
    """A ``provider_event`` signal: what a webhook sends (a MOBILE-PAY payout also hears
    ``status_read`` signals, the answers to its own status reads)."""
    return (
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == "provider_event"
    )


async def signals(client: Client, workflow_id: str) -> int:
    """How many ``provider_event`` signals the workflow's history holds."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for event in history.events if _is_provider_event(event))


async def processed(client: Client, workflow_id: str, count: int) -> bool:
    """True once the history holds ``count`` ``provider_event`` signals and a workflow task
    completed after the last one (so the workflow has applied it)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    seen, done = 0, False
    for event in history.events:
        if _is_provider_event(event):
            seen, done = seen + 1, False
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            done = True
    return seen >= count and done


async def transaction_id_visible(client: Client, payout: Pending) -> None:
    """Wait until visibility finds the payout by its provider transaction id."""
    query = f'ProviderTransactionId = "{payout.transaction_id}"'
    deadline = time.monotonic() + 15
    while not [wf async for wf in client.list_workflows(query, limit=1)]:
        assert time.monotonic() < deadline, f"{payout.transaction_id} not visible"
        await asyncio.sleep(0.1)


def snapshot(stack: Stack, payout: Pending) -> dict[str, Any]:
    state = read_payout(stack, payout.reference)
    return {name: state[name] for name in WATCHED}


def post(stack: Stack, delivery: Delivery) -> httpx.Response:
    with stack.gateway(key=None) as http:
        return http.post(delivery.path, content=delivery.body, headers=delivery.headers)


# ------------------------------------------------------------------------------ the cases


@dataclass
class Case:
    """A hostile delivery and the answer it must get (``outcome``: the 2xx body's status)."""

    build: Callable[[Pending], Delivery]
    status: int
    error: str | None
    outcome: str = "ignored"


def _bad_signature(payout: Pending) -> Delivery:
    if payout.provider == "caurisflux":
        return caurisflux(payout, secret="forged-secret")
    if payout.provider == "novasend":
        return novasend(payout, secret="forged-secret")
    return mobilepay(payout, token="not-the-token")


def _missing_signature(payout: Pending) -> Delivery:
    claim = success_claim(payout)
    if payout.provider == "mobilepay":
        # MOBILE-PAY's "signature" is the URL token: the route without one.
        return Delivery("/webhooks/mobilepay", claim.body, claim.headers)
    unsigned = {
        k: v
        for k, v in claim.headers.items()
        if k not in ("X-Webhook-Signature", "X-Signature-Value")
    }
    return Delivery(claim.path, claim.body, unsigned)


def _legacy_signature(payout: Pending) -> Delivery:
    """A CaurisFlux success signed the legacy way: an HMAC of the body alone, which never
    expires (refused unless MOMOFLOW_CAURISFLUX__ALLOW_LEGACY_SIGNATURES)."""
    claim = caurisflux(payout)
    digest = hmac.new(WEBHOOK_SECRET.encode(), claim.body, hashlib.sha256).hexdigest()
    return Delivery(
        claim.path,
        claim.body,
        {"Content-Type": "application/json", "X-Webhook-Signature": f"sha256={digest}"},
    )


def _unknown_reference(payout: Pending) -> Delivery:
    stranger = Pending(
        payout.provider,
        "NEVER-STARTED",
        f"payout-acme-NEVER-{uuid.uuid4().hex[:8]}",
        f"TRF9{uuid.uuid4().int % 10**8:08d}" if payout.provider == "mobilepay" else "PO404",
        0.0,
    )
    return success_claim(stranger)


def _not_our_reference(payout: Pending) -> Delivery:
    """A genuine event whose reference is none of our workflow ids (another system's
    transfer on the same provider account): it can never reach a momoflow transaction."""
    stranger = Pending(payout.provider, "ELSEWHERE", "INV-2026-0001", "PO405", 0.0)
    return success_claim(stranger)


def _deeply_nested(payout: Pending) -> Delivery:
    return with_body(payout, b"[" * 20_000 + b"]" * 20_000)


CASES: dict[str, dict[str, Case]] = {
    "bad signature": {p: Case(_bad_signature, 401, "webhook_mismatch") for p in PROVIDERS},
    "missing signature": {p: Case(_missing_signature, 401, "webhook_missing") for p in PROVIDERS},
    "legacy signature": {"caurisflux": Case(_legacy_signature, 401, "webhook_no_timestamp")},
    "body not JSON": {
        p: Case(lambda payout: with_body(payout, b"<xml>not json</xml>"), 400, "webhook_bad_body")
        for p in PROVIDERS
    },
    "JSON nested too deep": {p: Case(_deeply_nested, 400, "webhook_bad_body") for p in PROVIDERS},
    "unknown reference": {
        # A verified event for a transaction nobody can find yet (not started, or, at
        # MOBILE-PAY, whose id is not published yet because the create answer is still on
        # its way) is kept in the webhook inbox and answered 2xx: the provider may never
        # send it again. Only verified events get there (docs/architecture.md, "Webhooks").
        p: Case(_unknown_reference, 200, None, outcome="kept")
        for p in PROVIDERS
    },
    "not our reference": {
        # CaurisFlux and NovaSend name our reference: one that is not a momoflow workflow id
        # can never matter, and a refusal would be retried by the provider for nothing.
        p: Case(_not_our_reference, 200, None)
        for p in ("caurisflux", "novasend")
    },
}


def _case_params() -> Iterator[Any]:
    for name, per_provider in CASES.items():
        for provider, case in per_provider.items():
            yield pytest.param(provider, case, id=f"{provider}-{name.replace(' ', '-')}")


@pytest.fixture
def target(request: pytest.FixtureRequest, payouts: PendingPayouts) -> Pending:
    provider: str = request.param
    return payouts.get(provider)


@pytest.mark.parametrize(("target", "case"), list(_case_params()), indirect=["target"])
async def test_hostile_webhook_gets_a_clear_answer_and_changes_nothing(
    stack: Stack, client: Client, target: Pending, case: Case
) -> None:
    """A bad or missing signature, a body that is not JSON or is nested too deep: a 401
    or 400 naming why (the provider's retries of such a delivery cannot succeed, but
    nothing genuine is ever refused this way). An event for a transaction nobody can find:
    2xx, kept in the webhook inbox; for a reference that is not ours: 2xx-and-ignore (see
    ``CASES``). Either way the pending payout is untouched."""
    before, signals_before = snapshot(stack, target), await signals(client, target.workflow_id)

    answer = post(stack, case.build(target))

    assert answer.status_code == case.status, answer.text
    if case.error is None:
        assert answer.json()["status"] == case.outcome
    else:
        assert answer.json()["error"] == case.error and answer.json()["message"]
    assert snapshot(stack, target) == before
    assert await signals(client, target.workflow_id) == signals_before


async def test_caurisflux_delivery_replayed_after_the_tolerance_is_refused(
    stack: Stack, client: Client, payouts: PendingPayouts
) -> None:
    """A genuine CaurisFlux delivery, signed an hour ago and replayed now: its timestamp is
    outside the ±300 s tolerance, so it is a 401 whatever it says (here: success)."""
    target = payouts.get("caurisflux")
    before, signals_before = snapshot(stack, target), await signals(client, target.workflow_id)

    answer = post(stack, caurisflux(target, timestamp=int(time.time()) - 3600))

    assert answer.status_code == 401
    assert answer.json()["error"] == "webhook_stale"
    assert snapshot(stack, target) == before
    assert await signals(client, target.workflow_id) == signals_before


@pytest.mark.parametrize("provider", ["caurisflux", "novasend"])
async def test_a_signed_success_the_providers_api_denies_pays_nothing(
    stack: Stack, client: Client, payouts: PendingPayouts, provider: str
) -> None:
    """A webhook is a hint; the provider's authenticated API is the truth. A validly signed
    success (whoever holds the secret could send it) for a payout the provider still holds
    as processing makes the payout read its status, and the read says "processing": the
    payout stays pending, never succeeded."""
    target = payouts.get(provider)
    before = read_payout(stack, target.reference)
    signals_before = await signals(client, target.workflow_id)

    answer = post(stack, success_claim(target))

    assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text
    wait_until(
        lambda: read_payout(stack, target.reference)["status_polls"] > before["status_polls"],
        timeout=30,
        what="the confirming status read",
    )
    deadline = time.monotonic() + 15
    while not await processed(client, target.workflow_id, signals_before + 1):
        assert time.monotonic() < deadline, "the webhook's signal was not processed"
        await asyncio.sleep(0.1)
    after = read_payout(stack, target.reference)
    assert after["status"] == "pending" and after["completed_at"] is None
    assert after["webhooks_received"] == before["webhooks_received"] + 1
    assert any("counts once a status read says so" in e["note"] for e in after["timeline"])


def _genuine_update(payout: Pending) -> Delivery:
    """An authentic delivery that is not final: it counts, and moves nothing else."""
    if payout.provider == "caurisflux":
        return caurisflux(payout, status="processing")
    if payout.provider == "novasend":
        return novasend(payout, settled="pending")
    # MOBILE-PAY: any event is a hint; the status read that follows says "processing".
    return mobilepay(payout)


async def test_replayed_delivery_is_acknowledged_and_counted_once(
    stack: Stack, client: Client, payout: Pending
) -> None:
    """The same delivery twice (a provider retry, or an attacker replaying it within the
    tolerance): both are 2xx, since the provider must stop sending it, and the workflow
    keeps only the first (CaurisFlux by delivery id, NovaSend by ``eventId``, MOBILE-PAY by
    the body's hash). The first one is the control: it shows the counter moves at all."""
    before, signals_before = snapshot(stack, payout), await signals(client, payout.workflow_id)
    delivery = _genuine_update(payout)

    # MOBILE-PAY: until the payout's transaction id is visible, the gateway would keep the
    # delivery in the webhook inbox instead of signalling the payout: wait for it.
    await transaction_id_visible(client, payout)
    first = post(stack, delivery)
    assert first.status_code == 200 and first.json()["status"] == "accepted", first.text
    wait_until(
        lambda: (
            read_payout(stack, payout.reference)["webhooks_received"]
            == before["webhooks_received"] + 1
        ),
        timeout=15,
        what="the first delivery counted",
    )
    counted = snapshot(stack, payout)

    replay = post(stack, delivery)

    assert replay.status_code == 200 and replay.json()["status"] == "accepted", replay.text
    deadline = time.monotonic() + 15
    while not await processed(client, payout.workflow_id, signals_before + 2):
        assert time.monotonic() < deadline, "the replay's signal was not processed"
        await asyncio.sleep(0.1)
    after = snapshot(stack, payout)
    assert after == counted
    assert after["status"] == "pending" and after["webhooks_received"] == (
        before["webhooks_received"] + 1
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_huge_webhook_is_a_413_and_changes_nothing(
    stack: Stack, client: Client, payout: Pending, chunked: bool
) -> None:
    """5 MB, announced or streamed without a length: cut off at 64 KiB, never read into
    memory whole. A real provider's event is a few hundred bytes."""
    before, signals_before = snapshot(stack, payout), await signals(client, payout.workflow_id)
    delivery = with_body(payout, b'{"event": "' + b"x" * HUGE + b'"}')

    def stream() -> Iterator[bytes]:
        for start in range(0, len(delivery.body), 64 * 1024):
            yield delivery.body[start : start + 64 * 1024]

    with stack.gateway(key=None) as http:
        answer = http.post(
            delivery.path,
            content=stream() if chunked else delivery.body,
            headers=delivery.headers,
        )

    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large"
    assert snapshot(stack, payout) == before
    assert await signals(client, payout.workflow_id) == signals_before
    assert stack.processes["gateway"].alive()


# ------------------------------------------------------------------------------ generated bodies

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = {
    "caurisflux": ["transactionId", "externalReference", "status", "amount", "currency", "fees"],
    "novasend": ["id", "type", "reference", "status", "amount", "fee", "currency", "eventId"],
    "mobilepay": ["transfer_id", "payment_id", "transaction_id", "amount", "currency", "status"],
}


def _shaped(provider: str) -> st.SearchStrategy[Any]:
    """Bodies shaped like the provider's events, with arbitrary values."""
    data = st.dictionaries(st.sampled_from(_FIELDS[provider]), _JSON, max_size=6)
    if provider == "novasend":
        return st.one_of(data, st.builds(lambda d, t: {**d, "transaction": t}, data, _JSON))
    events = st.sampled_from(
        ["payout.success", "payout.failed", "transfer.completed", "transaction.failed"]
    )
    return st.fixed_dictionaries({"event": events | st.text(), "data": data | _JSON})


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_authentic_webhooks_with_arbitrary_bodies_never_crash_the_gateway(
    stack: Stack, client: Client, payouts: PendingPayouts, provider: str
) -> None:
    """Correctly signed (or correctly tokened) deliveries whose bodies are arbitrary JSON,
    or shaped like the provider's events with arbitrary values: each is answered 200 (an
    event for a transaction nobody can find is kept in the webhook inbox) or 400, never
    500 or 503, and none reaches the pending payout, whose reference and transaction id
    they do not carry."""
    target = payouts.get(provider)
    signals_before = await signals(client, target.workflow_id)
    answers: list[tuple[int, bytes]] = []

    @settings(
        max_examples=25,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(payload=st.one_of(_shaped(provider), _JSON))
    def deliver(payload: Any) -> None:
        delivery = with_body(target, json.dumps(payload).encode())
        answer = post(stack, delivery)
        answers.append((answer.status_code, delivery.body))

    with no_constants_from_our_code():
        deliver()

    allowed = {200, 400}
    wrong = [(status, body[:200]) for status, body in answers if status not in allowed]
    assert not wrong, wrong
    assert len(answers) >= 25
    assert stack.processes["gateway"].alive()
    assert await signals(client, target.workflow_id) == signals_before
