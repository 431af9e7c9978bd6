"""Merchant notifications: the pure body/sign/verify module, and the delivery activity over
real HTTP against a small receiver on 127.0.0.2 (``MERCHANT_HOST``, the one non-public
address the tests allow), through the worker's guarded client (no mocks of httpx)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities
from momoflow.models import DeliveryReport, MerchantNotification, PayoutState
from momoflow.notifications import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    InvalidNotification,
    NotificationSignatureError,
    construct_event,
    notification_body,
    notification_headers,
    retry_after_s,
    sign,
    verify,
)
from momoflow.outbound import DestinationPolicy, notification_client
from momoflow.sandbox.shared import ThreadedServer
from momoflow.sandbox.shared.serving import bind_socket, socket_port
from momoflow.settings import Settings
from tests.stack import MERCHANT_HOST

SECRET = "whsec_acme_test_secret"
OLD_SECRET = "whsec_acme_old_secret"
NOW = 1_800_000_000.0
DOCS = Path(__file__).resolve().parents[1] / "docs" / "notifications.md"

# The test vector published in docs/notifications.md (checked independently with openssl):
# the payout.succeeded event of the README's payout, as a workflow sends it.
VECTOR_SECRET = "whsec_example"
VECTOR_TIMESTAMP = 1772357412
VECTOR_BODY = (
    b'{"created_at":"2026-03-01T09:30:12.345Z","data":{"amount":50000'
    b',"completed_at":"2026-03-01T09:30:12.345678Z","country":"SN"'
    b',"created_at":"2026-03-01T09:30:04.120531Z","currency":"XOF"'
    b',"description":"Invoice 2026-0001","failure":null,"fees":750,"merchant":"demo"'
    b',"net_amount":49250,"operator":"wave","provider":"caurisflux","provider_amount":50000'
    b',"provider_reference":"WAVE-PAY-596565","provider_status":"completed"'
    b',"provider_transaction_id":"POTFMZCIFNZY2HMO","quote_attempts":1'
    b',"quote_id":"QT-EZFDZ86EKAD5","recipient_phone_masked":"+221*****4567"'
    b',"reconciling_since":null,"reference":"INV-2026-0001","resolution":null'
    b',"status":"succeeded","status_polls":0,"submit_attempts":1'
    b',"submitted_at":"2026-03-01T09:30:04.911207Z"'
    b',"updated_at":"2026-03-01T09:30:12.345678Z","webhooks_received":2'
    b',"workflow_id":"payout-demo-INV-2026-0001"}'
    b',"id":"payout-demo-INV-2026-0001:payout.succeeded:1","type":"payout.succeeded"}'
)
VECTOR_SIGNATURE = (
    "t=1772357412,v1=9fcd95918a5365bf11a012648912f57599643a21e75bcfac85ec0b414e98a8dd"
)


def make_notification(
    url: str = "https://acme.example/hooks", **changes: Any
) -> MerchantNotification:
    fields: dict[str, Any] = {
        "merchant": "acme",
        "url": url,
        "event_id": "evt_payin-acme-INV-1_succeeded",
        "event_type": "payin.succeeded",
        "data": {
            "reference": "INV-1",
            "status": "succeeded",
            "amount": 50000,
            "currency": "XOF",
            "customer_phone_masked": "+221*****4567",
            "description": "Facture n° 1 — Dakar",
        },
        "occurred_at": datetime(2026, 3, 1, 9, 30, 12, 345000, tzinfo=UTC),
    }
    fields.update(changes)
    return MerchantNotification(**fields)


# --------------------------------------------------------------------------- notification_body


def test_body_is_compact_sorted_json_with_the_documented_fields() -> None:
    body = notification_body(make_notification())

    document = json.loads(body)
    assert list(document) == ["created_at", "data", "id", "type"]
    assert list(document["data"]) == sorted(document["data"])
    assert document["id"] == "evt_payin-acme-INV-1_succeeded"
    assert document["type"] == "payin.succeeded"
    assert document["created_at"] == "2026-03-01T09:30:12.345Z"
    assert json.dumps(document, sort_keys=True, separators=(",", ":")).encode() == body


def test_body_is_identical_whatever_the_order_of_data_keys() -> None:
    first = make_notification(data={"b": 1, "a": {"y": 2, "x": [1, {"q": 1, "p": 2}]}})
    second = make_notification(data={"a": {"x": [1, {"p": 2, "q": 1}], "y": 2}, "b": 1})

    assert notification_body(first) == notification_body(second)


def test_body_is_ascii_so_a_charset_mixup_cannot_break_the_signature() -> None:
    body = notification_body(make_notification())

    assert body.isascii()
    assert json.loads(body)["data"]["description"] == "Facture n° 1 — Dakar"


@pytest.mark.parametrize(
    "occurred_at",
    [
        datetime(2026, 3, 1, 9, 30, 12, 345000, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 30, 12, 345000, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 3, 1, 9, 30, 12, 345000),  # naive: taken as UTC
    ],
)
def test_created_at_is_utc_iso8601_with_milliseconds(occurred_at: datetime) -> None:
    body = notification_body(make_notification(occurred_at=occurred_at))

    assert json.loads(body)["created_at"] == "2026-03-01T09:30:12.345Z"


def test_body_is_the_same_after_a_trip_through_temporal_serialisation() -> None:
    """The workflow may put dates or enums in ``data``; the activity sees JSON forms."""
    original = make_notification(
        data={"status": "succeeded", "completed_at": datetime(2026, 3, 1, tzinfo=UTC)}
    )
    converter = pydantic_data_converter.payload_converter
    (received,) = converter.from_payloads(converter.to_payloads([original]), [MerchantNotification])

    assert received.data["completed_at"] == "2026-03-01T00:00:00Z"
    assert notification_body(received) == notification_body(original)


# --------------------------------------------------------------------------- sign / verify


def test_sign_matches_the_documented_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_BODY, VECTOR_TIMESTAMP) == VECTOR_SIGNATURE


def test_the_documented_body_is_what_the_payouts_state_gives() -> None:
    """The vector is a real event: its ``data`` is a complete payout state, and the event
    built from that state the way a workflow builds it is the documented body, byte for
    byte (tests/test_docs_examples.py compares it with an event sent by a real payout)."""
    state = PayoutState.model_validate(json.loads(VECTOR_BODY)["data"])
    assert state.completed_at is not None
    event = MerchantNotification(
        merchant=state.merchant,
        url="https://shop.example/momoflow/events",
        event_id=f"{state.workflow_id}:payout.succeeded:1",
        event_type="payout.succeeded",
        data=state.model_dump(mode="json", exclude={"timeline", "notifications"}),
        occurred_at=state.completed_at,
    )

    assert notification_body(event) == VECTOR_BODY


def test_construct_event_verifies_the_documented_delivery_and_types_its_data() -> None:
    headers = {"momoflow-signature": VECTOR_SIGNATURE, "Content-Type": "application/json"}

    event = construct_event(VECTOR_BODY, headers, [OLD_SECRET, VECTOR_SECRET], now=VECTOR_TIMESTAMP)

    assert event.id == "payout-demo-INV-2026-0001:payout.succeeded:1"
    assert event.type == "payout.succeeded"
    assert event.created_at == datetime(2026, 3, 1, 9, 30, 12, 345000, tzinfo=UTC)
    assert isinstance(event.data, PayoutState)
    assert event.data.status == "succeeded" and event.data.amount == 50_000
    assert event.data.fees == 750 and event.data.recipient_phone_masked == "+221*****4567"


@pytest.mark.parametrize(
    ("body", "header", "now", "reason"),
    [
        (VECTOR_BODY + b" ", VECTOR_SIGNATURE, VECTOR_TIMESTAMP, "mismatch"),
        (VECTOR_BODY, None, VECTOR_TIMESTAMP, "missing"),
        (VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_TIMESTAMP + 301, "stale"),
    ],
)
def test_construct_event_refuses_what_momoflow_did_not_sign(
    body: bytes, header: str | None, now: float, reason: str
) -> None:
    headers = {} if header is None else {SIGNATURE_HEADER: header}
    with pytest.raises(NotificationSignatureError) as refused:
        construct_event(body, headers, VECTOR_SECRET, now=now)
    assert refused.value.reason == reason


def test_construct_event_reads_newer_fields_and_refuses_unknown_types() -> None:
    document = json.loads(VECTOR_BODY)
    document["data"]["field_from_a_newer_momoflow"] = 1
    newer = json.dumps(document).encode()
    event = construct_event(newer, {SIGNATURE_HEADER: sign(SECRET, newer, 100)}, SECRET, now=100)
    assert isinstance(event.data, PayoutState) and event.data.amount == 50_000

    document["type"] = "invoice.paid"
    unknown = json.dumps(document).encode()
    with pytest.raises(InvalidNotification):
        construct_event(unknown, {SIGNATURE_HEADER: sign(SECRET, unknown, 100)}, SECRET, now=100)
    with pytest.raises(InvalidNotification):
        construct_event(
            b"not json", {SIGNATURE_HEADER: sign(SECRET, b"not json", 100)}, SECRET, now=100
        )


def test_docs_publish_the_test_vector_that_sign_produces() -> None:
    docs = DOCS.read_text(encoding="utf-8")

    assert f"Momoflow-Signature: {VECTOR_SIGNATURE}\n" in docs
    assert f"\n{VECTOR_BODY.decode()}\n" in docs
    assert f"`{VECTOR_SECRET}`" in docs


def test_sign_is_deterministic_and_depends_on_secret_body_and_timestamp() -> None:
    body = notification_body(make_notification())
    reference = sign(SECRET, body, 1000)

    assert sign(SECRET, body, 1000) == reference
    assert re.fullmatch(r"t=1000,v1=[0-9a-f]{64}", reference)
    assert sign(OLD_SECRET, body, 1000) != reference
    assert sign(SECRET, body + b" ", 1000) != reference
    assert sign(SECRET, body, 1001) != reference


def test_verify_accepts_a_fresh_signature() -> None:
    body = notification_body(make_notification())

    verify(SECRET, body, sign(SECRET, body, int(NOW)), now=NOW)
    verify(SECRET, body, sign(SECRET, body, int(NOW) - 299), now=NOW)
    verify(SECRET, body, sign(SECRET, body, int(NOW) + 299), now=NOW)


@pytest.mark.parametrize("age_s", [301, -301, 86_400])
def test_verify_rejects_a_stale_or_future_timestamp(age_s: int) -> None:
    body = notification_body(make_notification())
    header = sign(SECRET, body, int(NOW) - age_s)

    with pytest.raises(NotificationSignatureError) as caught:
        verify(SECRET, body, header, now=NOW)
    assert caught.value.reason == "stale"


def test_verify_honours_a_custom_tolerance() -> None:
    body = notification_body(make_notification())
    header = sign(SECRET, body, int(NOW) - 30)

    verify(SECRET, body, header, now=NOW, tolerance_s=60)
    with pytest.raises(NotificationSignatureError, match="stale"):
        verify(SECRET, body, header, now=NOW, tolerance_s=10)


def test_verify_rejects_a_tampered_body() -> None:
    body = notification_body(make_notification())
    header = sign(SECRET, body, int(NOW))
    tampered = body.replace(b"50000", b"90000")

    with pytest.raises(NotificationSignatureError) as caught:
        verify(SECRET, tampered, header, now=NOW)
    assert caught.value.reason == "mismatch"


def test_verify_rejects_a_wrong_secret() -> None:
    body = notification_body(make_notification())

    with pytest.raises(NotificationSignatureError) as caught:
        verify(SECRET, body, sign("whsec_someone_else", body, int(NOW)), now=NOW)
    assert caught.value.reason == "mismatch"


def test_verify_reports_a_forged_old_header_as_mismatch_not_stale() -> None:
    """Only an authentic delivery is ever called stale."""
    body = notification_body(make_notification())

    with pytest.raises(NotificationSignatureError) as caught:
        verify(SECRET, body, sign("whsec_forger", body, int(NOW) - 10_000), now=NOW)
    assert caught.value.reason == "mismatch"


@pytest.mark.parametrize("header", [None, "", "   "])
def test_verify_rejects_a_missing_header(header: str | None) -> None:
    with pytest.raises(NotificationSignatureError) as caught:
        verify(SECRET, b"{}", header, now=NOW)
    assert caught.value.reason == "missing"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=1800000000",
        "v1=" + "0" * 64,
        "t=abc,v1=" + "0" * 64,
        "t=-5,v1=" + "0" * 64,
        "t=1800000000,t=1800000001,v1=" + "0" * 64,
        "t=1800000000,v1=" + "0" * 64 + ",",
        "t=1800000000;v1=" + "0" * 64,
        "t=١٨٠٠٠٠٠٠٠٠,v1=" + "0" * 64,  # non-ASCII digits
    ],
)
def test_verify_rejects_a_malformed_header(header: str) -> None:
    with pytest.raises(NotificationSignatureError) as caught:
        verify(SECRET, b"{}", header, now=NOW)
    assert caught.value.reason == "malformed"


def test_verify_treats_a_non_ascii_signature_as_a_mismatch() -> None:
    with pytest.raises(NotificationSignatureError) as caught:
        verify(SECRET, b"{}", f"t={int(NOW)},v1=é", now=NOW)
    assert caught.value.reason == "mismatch"


def test_verify_accepts_any_of_several_v1_values_and_ignores_other_schemes() -> None:
    body = notification_body(make_notification())
    current = sign(SECRET, body, int(NOW)).split(",")[1]
    old = sign(OLD_SECRET, body, int(NOW)).split(",")[1]
    header = f"t={int(NOW)}, v0=deadbeef, {old}, {current}"

    verify(SECRET, body, header, now=NOW)
    verify(OLD_SECRET, body, header, now=NOW)


def test_verify_accepts_a_rotated_secret_list() -> None:
    body = notification_body(make_notification())

    verify([SECRET, OLD_SECRET], body, sign(OLD_SECRET, body, int(NOW)), now=NOW)
    verify([SECRET, OLD_SECRET], body, sign(SECRET, body, int(NOW)), now=NOW)
    with pytest.raises(NotificationSignatureError, match="mismatch"):
        verify([SECRET, OLD_SECRET], body, sign("whsec_other", body, int(NOW)), now=NOW)


def test_docs_snippet_verifies_like_the_library() -> None:
    """The standard-library snippet merchants copy from the docs actually works."""
    docs = DOCS.read_text(encoding="utf-8")
    (snippet,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", docs, flags=re.S)
        if "def verify_momoflow_signature" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(DOCS), "exec"), namespace)
    check: Callable[..., bool] = namespace["verify_momoflow_signature"]
    body = notification_body(make_notification())
    fresh = sign(OLD_SECRET, body, int(time.time()))

    assert check([VECTOR_SECRET], VECTOR_BODY, VECTOR_SIGNATURE, now=VECTOR_TIMESTAMP)
    assert check([SECRET, OLD_SECRET], body, fresh)
    assert not check([SECRET], body, fresh)
    assert not check([OLD_SECRET], body + b" ", fresh)
    assert not check([OLD_SECRET], body, sign(OLD_SECRET, body, int(time.time()) - 301))
    assert not check([OLD_SECRET], body, None)
    assert not check([OLD_SECRET], body, "garbage")


def test_headers_carry_signature_event_and_user_agent() -> None:
    n = make_notification()

    assert notification_headers(n, signature="t=1,v1=ab") == {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: "t=1,v1=ab",
        EVENT_ID_HEADER: "evt_payin-acme-INV-1_succeeded",
        EVENT_TYPE_HEADER: "payin.succeeded",
        "User-Agent": "momoflow-notifications/0.1",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("86400", 3600.0),
        ("Sat, 15 Jan 2027 08:00:30 GMT", 30.0),
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after_reads_seconds_or_http_date_capped_at_one_hour(
    value: str | None, expected: float | None
) -> None:
    now = datetime(2027, 1, 15, 8, 0, 0, tzinfo=UTC).timestamp()

    assert retry_after_s(value, now=now) == expected


def test_settings_give_each_merchant_its_secret_or_the_default() -> None:
    settings = Settings(
        env="test",
        notification_secrets=json.dumps({"acme": SECRET}),
        default_notification_secret="whsec_default",
    )

    assert settings.notification_secret("acme") == SECRET
    assert settings.notification_secret("globex") == "whsec_default"


# --------------------------------------------------------------------------- receiver


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    #: "ok", or why :func:`verify` refused the delivery.
    verification: str


class Receiver:
    """A merchant endpoint: verifies and records every POST, answers scripted statuses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._script: deque[tuple[int, dict[str, str]]] = deque()
        self.server = ThreadedServer(
            Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])]),
            host=MERCHANT_HOST,
        )

    @property
    def url(self) -> str:
        return f"{self.server.url}/hooks/momoflow"

    async def _handle(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        try:
            verify(SECRET, body, request.headers.get(SIGNATURE_HEADER), now=time.time())
            verification = "ok"
        except NotificationSignatureError as exc:
            verification = exc.reason
        with self._lock:
            self._received.append(
                Received({k.lower(): v for k, v in request.headers.items()}, body, verification)
            )
            status, headers = self._script.popleft() if self._script else (200, {})
        return PlainTextResponse("received", status_code=status, headers=headers)

    def answer(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        """Answer the next POSTs with these statuses (optionally with headers), then 200."""
        with self._lock:
            self._script = deque(a if isinstance(a, tuple) else (a, {}) for a in answers)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def reset(self) -> None:
        with self._lock:
            self._received.clear()
            self._script.clear()


class Clock:
    """Real time plus an offset the test moves forward (between attempts)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    with receiver.server:
        yield receiver


@pytest.fixture
def receiver(receiver_server: Receiver) -> Iterator[Receiver]:
    receiver_server.reset()
    yield receiver_server
    receiver_server.reset()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # The worker's client: public addresses, plus the tests' merchant host.
    async with notification_client(DestinationPolicy.from_entries([MERCHANT_HOST])) as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def acts(http: httpx.AsyncClient, clock: Clock) -> NotificationActivities:
    return NotificationActivities(http, secret_for={"acme": SECRET}.__getitem__, clock=clock)


def env_at_attempt(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env


async def deliver(acts: NotificationActivities, n: MerchantNotification) -> DeliveryReport:
    return await ActivityEnvironment().run(acts.deliver_notification, n)


async def deliver_error(acts: NotificationActivities, n: MerchantNotification) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(acts.deliver_notification, n)
    assert caught.value.__cause__ is None
    return caught.value


def signature_timestamp(received: Received) -> int:
    return int(received.headers[SIGNATURE_HEADER.lower()].split(",")[0].removeprefix("t="))


# --------------------------------------------------------------------------- the activity


async def test_delivery_is_signed_verifiable_and_reported(
    acts: NotificationActivities, receiver: Receiver
) -> None:
    n = make_notification(receiver.url)
    before = datetime.now(UTC)

    report = await deliver(acts, n)

    assert report.attempt == 1
    assert report.http_status == 200
    assert before <= report.delivered_at <= datetime.now(UTC)
    (received,) = receiver.received()
    assert received.verification == "ok"
    assert received.body == notification_body(n)
    assert received.headers["content-type"] == "application/json"
    assert received.headers["momoflow-event-id"] == n.event_id
    assert received.headers["momoflow-event-type"] == n.event_type
    assert received.headers["user-agent"] == USER_AGENT


async def test_report_names_the_activity_attempt_that_delivered(
    acts: NotificationActivities, receiver: Receiver
) -> None:
    report = await env_at_attempt(4).run(acts.deliver_notification, make_notification(receiver.url))

    assert report.attempt == 4


@pytest.mark.parametrize("status", [201, 202, 204])
async def test_any_2xx_is_a_delivery(
    acts: NotificationActivities, receiver: Receiver, status: int
) -> None:
    receiver.answer(status)

    report = await deliver(acts, make_notification(receiver.url))

    assert report.http_status == status


async def test_every_attempt_sends_the_same_body_and_event_id_with_a_fresh_timestamp(
    acts: NotificationActivities, receiver: Receiver, clock: Clock
) -> None:
    n = make_notification(receiver.url)
    receiver.answer(503)

    await deliver_error(acts, n)
    clock.offset += 61
    report = await env_at_attempt(2).run(acts.deliver_notification, n)

    first, second = receiver.received()
    assert report.attempt == 2
    assert first.body == second.body == notification_body(n)
    assert first.headers["momoflow-event-id"] == second.headers["momoflow-event-id"]
    assert signature_timestamp(second) - signature_timestamp(first) >= 60
    assert first.verification == second.verification == "ok"


async def test_503_with_retry_after_is_retryable_after_that_delay(
    acts: NotificationActivities, receiver: Receiver
) -> None:
    n = make_notification(receiver.url)
    receiver.answer((503, {"Retry-After": "120"}))

    error = await deliver_error(acts, n)

    assert error.type == "MerchantEndpointUnavailable"
    assert not error.non_retryable
    assert error.next_retry_delay == timedelta(seconds=120)
    assert "HTTP 503" in error.message
    assert error.details[0] == {"event_id": n.event_id, "http_status": 503, "error": "HTTP 503"}


async def test_503_without_retry_after_leaves_the_delay_to_the_retry_policy(
    acts: NotificationActivities, receiver: Receiver
) -> None:
    receiver.answer(503)

    error = await deliver_error(acts, make_notification(receiver.url))

    assert error.type == "MerchantEndpointUnavailable"
    assert not error.non_retryable
    assert error.next_retry_delay is None


async def test_retry_after_longer_than_an_hour_is_capped(
    acts: NotificationActivities, receiver: Receiver
) -> None:
    receiver.answer((429, {"Retry-After": "604800"}))

    error = await deliver_error(acts, make_notification(receiver.url))

    assert error.next_retry_delay == timedelta(hours=1)


async def test_retry_after_zero_still_sets_a_short_delay(
    acts: NotificationActivities, receiver: Receiver
) -> None:
    receiver.answer((503, {"Retry-After": "0"}))

    error = await deliver_error(acts, make_notification(receiver.url))

    assert error.next_retry_delay == timedelta(seconds=1)


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 502])
async def test_other_statuses_are_retryable(
    acts: NotificationActivities, receiver: Receiver, status: int
) -> None:
    receiver.answer(status)

    error = await deliver_error(acts, make_notification(receiver.url))

    assert error.type == "MerchantEndpointUnavailable"
    assert not error.non_retryable
    assert f"HTTP {status}" in error.message


async def test_a_redirect_is_not_followed_and_not_a_delivery(
    acts: NotificationActivities, receiver: Receiver
) -> None:
    receiver.answer((307, {"Location": receiver.url}))

    error = await deliver_error(acts, make_notification(receiver.url))

    assert error.type == "MerchantEndpointUnavailable"
    assert "HTTP 307" in error.message
    assert len(receiver.received()) == 1


async def test_410_gone_is_not_retryable(acts: NotificationActivities, receiver: Receiver) -> None:
    receiver.answer((410, {"Retry-After": "60"}))

    error = await deliver_error(acts, make_notification(receiver.url))

    assert error.type == "MerchantEndpointGone"
    assert error.non_retryable
    assert "410" in error.message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://acme.example/hooks",
        "file:///etc/passwd",
        "mailto:ops@acme.example",
        "/hooks/momoflow",
        "acme.example/hooks",
        "http://",
        "https://exa mple.com/hooks",
        "http://exa%20mple.com/hooks",
        "",
    ],
)
async def test_a_url_that_is_not_http_is_not_retryable_and_nothing_is_sent(
    acts: NotificationActivities, receiver: Receiver, url: str
) -> None:
    error = await deliver_error(acts, make_notification(url))

    assert error.type == "InvalidNotificationUrl"
    assert error.non_retryable
    assert receiver.received() == []


async def test_an_unreachable_endpoint_is_retryable(acts: NotificationActivities) -> None:
    sock = bind_socket(MERCHANT_HOST, 0)
    port = socket_port(sock)
    sock.close()

    error = await deliver_error(acts, make_notification(f"http://{MERCHANT_HOST}:{port}/hooks"))

    assert error.type == "MerchantEndpointUnavailable"
    assert not error.non_retryable
    assert "ConnectError" in error.message
    assert error.details[0]["http_status"] is None


async def test_an_endpoint_that_never_answers_times_out_as_retryable(clock: Clock) -> None:
    # Listening but never accepting: the request is buffered by the kernel, no answer comes.
    silent = bind_socket(MERCHANT_HOST, 0)
    try:
        async with httpx.AsyncClient(timeout=0.3) as short:
            acts = NotificationActivities(
                short, secret_for={"acme": SECRET}.__getitem__, clock=clock
            )
            url = f"http://{MERCHANT_HOST}:{socket_port(silent)}/hooks"
            error = await deliver_error(acts, make_notification(url))
    finally:
        silent.close()

    assert error.type == "MerchantEndpointUnavailable"
    assert not error.non_retryable
    assert "Timeout" in error.message


async def test_a_merchant_without_a_secret_is_not_retryable_and_nothing_is_sent(
    acts: NotificationActivities, receiver: Receiver
) -> None:
    error = await deliver_error(acts, make_notification(receiver.url, merchant="globex"))

    assert error.type == "NotificationSecretMissing"
    assert error.non_retryable
    assert receiver.received() == []


async def test_the_secret_is_read_again_on_every_attempt(
    http: httpx.AsyncClient, receiver: Receiver
) -> None:
    secrets = {"acme": OLD_SECRET}
    acts = NotificationActivities(http, secret_for=lambda merchant: secrets[merchant])
    n = make_notification(receiver.url)
    receiver.answer(503)

    await deliver_error(acts, n)
    secrets["acme"] = SECRET
    await deliver(acts, n)

    first, second = receiver.received()
    assert first.verification == "mismatch"
    assert second.verification == "ok"


async def test_errors_and_logs_never_reveal_the_secret_body_or_url(
    acts: NotificationActivities, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{receiver.url}?token=url-secret-token"
    n = make_notification(url)
    receiver.answer((503, {"Retry-After": "5"}), 410)
    caplog.set_level(logging.DEBUG)

    errors = [await deliver_error(acts, n), await deliver_error(acts, n)]
    await deliver(acts, n)

    texts = [e.message for e in errors]
    texts += [json.dumps(e.details) for e in errors]
    texts += [r.getMessage() for r in caplog.records if r.name.startswith("temporalio")]
    assert len(texts) >= 7
    for text in texts:
        assert SECRET not in text
        assert "url-secret-token" not in text
        # Body content (the event id may name the reference: that is allowed).
        assert "Facture" not in text
        assert "4567" not in text
    logged = [r.getMessage() for r in caplog.records if n.event_id in r.getMessage()]
    assert len(logged) == 3
    assert all(n.event_type in line for line in logged)
    assert "HTTP 503" in logged[0]
    assert "HTTP 410" in logged[1]
    assert "HTTP 200" in logged[2]
