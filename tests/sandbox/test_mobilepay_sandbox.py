"""The MOBILE-PAY simulator, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from momoflow.sandbox.mobilepay import MobilePaySandboxConfig, create_app
from momoflow.sandbox.shared import ThreadedServer

from .helpers import ReceivedWebhook, WebhookReceiver, wait_until

TOKEN = "mp_test_momoflow"
EMAIL = "sandbox@momoflow.local"
PASSWORD = "momoflow-sandbox"
SECRET = "mpwh_test_receiver"
START_BALANCE = 100_000_000
ROOT = Path(__file__).resolve().parents[2]
HOOKS = "/hooks/mobilepay"


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mp_server(webhook_receiver: WebhookReceiver) -> Iterator[ThreadedServer]:
    """A MOBILE-PAY simulator with test-friendly timings; reset restores this config.

    The rate limit is off here (tests poll ``GET /transactions``); one test turns it on.
    """
    config = MobilePaySandboxConfig(
        settle_delay=0.1,
        webhook_url=f"{webhook_receiver.url}{HOOKS}",
        webhook_secret=SECRET,
        webhook_retry_schedule=(0.05, 0.1),
        payment_ttl=60.0,
        rate_limit_per_hour=0,
        seed=4321,
    )
    with ThreadedServer(create_app(config)) as server:
        yield server


@pytest.fixture(scope="module")
def mp(mp_server: ThreadedServer) -> Iterator[httpx.Client]:
    """Client of the MOBILE-PAY API with the configured API token."""
    with httpx.Client(
        base_url=f"{mp_server.url}/api/v1",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5.0,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def mp_control(mp_server: ThreadedServer) -> Iterator[httpx.Client]:
    """Client of the ``/_sandbox`` control API."""
    with httpx.Client(base_url=f"{mp_server.url}/_sandbox", timeout=5.0) as client:
        yield client


@pytest.fixture(autouse=True)
def _clean(mp_control: httpx.Client, webhook_receiver: WebhookReceiver) -> None:
    assert mp_control.post("/reset").status_code == 200
    webhook_receiver.clear()


# -- helpers ------------------------------------------------------------------------------------


def local(
    mp: httpx.Client,
    phone: str = "+2250701021234",
    amount: int = 10_000,
    *,
    description: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    body = {
        "recipient_phone": phone,
        "amount": amount,
        "description": description or f"Paiement {uuid.uuid4().hex[:8]}",
        **extra,
    }
    return mp.post("/transfers/local", json=body, headers=headers or {})


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["transfer_id"])


def qr(mp: httpx.Client, amount: int = 25_000, **extra: Any) -> dict[str, Any]:
    body = {"amount": amount, "description": "Achat boutique", "merchant_id": "MERCHANT123"}
    response = mp.post("/payments/qr", json={**body, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def all_transactions(mp: httpx.Client, **params: str) -> list[dict[str, Any]]:
    """Every transaction, read the only way MOBILE-PAY offers: the paged list."""
    items: list[dict[str, Any]] = []
    while True:
        page = mp.get("/transactions", params={**params, "limit": 100, "offset": len(items)})
        assert page.status_code == 200, page.text
        data = page.json()["data"]
        items.extend(data)
        if not data:
            return items


def tx(mp: httpx.Client, tx_id: str) -> dict[str, Any]:
    found = [item for item in all_transactions(mp) if item["id"] == tx_id]
    assert len(found) == 1, tx_id
    return found[0]


def wait_status(mp: httpx.Client, tx_id: str, wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    return wait_until(lambda: tx(mp, tx_id), lambda t: t["status"] == wanted, timeout=timeout)


def balance(mp: httpx.Client) -> int:
    body = mp.get("/balance").json()
    assert body["currency"] == "XOF"
    return int(body["balance"])


def hooks_for(receiver: WebhookReceiver, tx_id: str) -> list[dict[str, Any]]:
    bodies = [h.json() for h in receiver.received(HOOKS)]
    return [b for b in bodies if tx_id in (b["data"].get(k) for k in _ID_FIELDS)]


_ID_FIELDS = ("transfer_id", "payment_id", "transaction_id")


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return response.status_code, body["error"]["code"]


def verify_signature(hook: ReceivedWebhook, secret: str = SECRET) -> None:
    """hex(HMAC-SHA256(secret, raw body)), as providers.md 3.4.7 assumes."""
    expected = hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(hook.headers["x-mobilepay-signature"], expected)


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- auth ---------------------------------------------------------------------------------------


def test_health_and_documented_defaults(mp_server: ThreadedServer) -> None:
    assert httpx.get(f"{mp_server.url}/health").json() == {"status": "ok"}
    defaults = MobilePaySandboxConfig()
    assert (defaults.api_token, defaults.rate_limit_per_hour) == (TOKEN, 100)
    assert defaults.fcfa_currency and not defaults.honour_idempotency_key
    assert not defaults.sign_webhooks and defaults.webhook_retry_schedule == (60.0, 600.0)
    assert defaults.payment_ttl == 900.0 and defaults.session_ttl == 3600.0
    assert (defaults.list_lag, defaults.description_max_chars) == (0.0, None)
    assert defaults.echo_metadata


def test_bearer_token_is_required(mp_server: ThreadedServer, mp: httpx.Client) -> None:
    url = f"{mp_server.url}/api/v1/balance"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = httpx.get(url, headers=headers)
        assert error(refused) == (401, "UNAUTHORIZED")
    assert mp.get("/balance").json() == {"balance": START_BALANCE, "currency": "XOF"}
    missing = mp.get("/transactions/TRF1")
    assert error(missing) == (404, "NOT_FOUND")


def test_login_session_token_is_accepted_until_it_expires(
    mp_server: ThreadedServer, mp_control: httpx.Client
) -> None:
    api = f"{mp_server.url}/api/v1"
    wrong = httpx.post(f"{api}/auth/login", json={"email": EMAIL, "password": "x"})
    assert error(wrong) == (401, "UNAUTHORIZED")
    assert error(httpx.post(f"{api}/auth/login", json={"email": EMAIL})) == (
        400,
        "VALIDATION_ERROR",
    )
    login = httpx.post(f"{api}/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert login.status_code == 200
    session = login.json()
    assert set(session) == {"access_token", "token_type", "expires_in"}
    assert session["token_type"] == "Bearer" and session["expires_in"] == 3600
    bearer = {"Authorization": f"Bearer {session['access_token']}"}
    assert httpx.get(f"{api}/balance", headers=bearer).status_code == 200

    mp_control.post("/config", json={"session_ttl": 0.3})
    short = httpx.post(f"{api}/auth/login", json={"email": EMAIL, "password": PASSWORD}).json()
    assert short["expires_in"] == 0
    short_bearer = {"Authorization": f"Bearer {short['access_token']}"}
    assert httpx.get(f"{api}/balance", headers=short_bearer).status_code == 200
    wait_until(lambda: httpx.get(f"{api}/balance", headers=short_bearer).status_code == 401)


# -- transfers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "amount", "fee"),
    [
        ("local", 100, 1),
        ("local", 10_000, 100),
        ("local", 10_050, 101),
        ("local", 1_500_000, 15_000),
        ("international", 100, 2),
        ("international", 10_050, 201),
    ],
)
def test_fees_are_integer_and_rounded_up(
    mp: httpx.Client, path: str, amount: int, fee: int
) -> None:
    body = {"recipient_phone": "+2250701021234", "amount": amount, "description": "x"}
    if path == "international":
        body = {"recipient_country": "SN", "recipient_phone": "+221771231234", "amount": amount}
    created = mp.post(f"/transfers/{path}", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["fee"] == fee
    assert balance(mp) == START_BALANCE - amount - fee


def test_local_transfer_shape_list_ledger_and_balance(
    mp: httpx.Client, mp_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    metadata = {"reference": "PO-42", "invoice": "INV-9"}
    created = local(mp, "+2250701020001", 50_000, description="Facture 9", metadata=metadata)
    body = created.json()
    assert set(body) == {
        "transfer_id",
        "status",
        "amount",
        "currency",
        "recipient_phone",
        "description",
        "metadata",
        "reference",
        "fee",
        "created_at",
    }
    assert re.fullmatch(r"TRF\d+", body["transfer_id"])
    assert (body["status"], body["amount"], body["currency"], body["fee"]) == (
        "pending",
        50_000,
        "XOF",
        500,
    )
    assert body["metadata"] == metadata and body["reference"] is None
    assert abs(iso(body["created_at"]).timestamp() - time.time()) < 5
    assert balance(mp) == START_BALANCE - 50_500

    done = wait_status(mp, body["transfer_id"], "completed")
    assert done["type"] == "transfer" and done["currency"] == "FCFA"
    assert done["recipient_phone"] == "+2250701020001" and done["metadata"] == metadata
    assert done["error_code"] is None and done["error_message"] is None
    assert iso(done["updated_at"]) > iso(done["created_at"])
    entry = mp_control.get("/ledger/PO-42").json()
    assert entry["key"] == "PO-42" and entry["transfers"] == [body["transfer_id"]]
    assert (entry["executions"], entry["amount"], entry["status"]) == (1, 50_000, "completed")
    assert balance(mp) == START_BALANCE - 50_500
    wait_until(lambda: len(hooks_for(webhook_receiver, body["transfer_id"])) == 1)


def test_no_idempotency_every_post_executes(mp: httpx.Client, mp_control: httpx.Client) -> None:
    key_header = {"Idempotency-Key": "ignored-by-default"}
    first = local(mp, description="Salaire mars", headers=key_header)
    second = local(mp, description="Salaire mars", headers=key_header)
    ids = [created_id(first), created_id(second)]
    assert ids[0] != ids[1] and "idempotent-replayed" not in second.headers
    entry = mp_control.get("/ledger/Salaire mars").json()
    assert entry["executions"] == 2 and entry["transfers"] == ids
    assert entry["transactionId"] == ids[1]
    assert balance(mp) == START_BALANCE - 2 * 10_100
    assert {t["id"] for t in all_transactions(mp)} == set(ids)
    assert mp_control.get("/ledger/unknown").status_code == 404


def test_optional_idempotency_key_mode(mp: httpx.Client, mp_control: httpx.Client) -> None:
    mp_control.post("/config", json={"honour_idempotency_key": True})
    key = {"Idempotency-Key": "idem-1"}
    first = local(mp, description="Prime", headers=key)
    replay = local(mp, description="Prime", headers=key)
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"
    assert mp_control.get("/ledger/Prime").json()["executions"] == 1
    reuse = local(mp, description="Autre", headers=key)
    assert error(reuse) == (409, "IDEMPOTENCY_KEY_REUSE")
    assert local(mp, description="Prime").status_code == 201  # no key: executes again
    assert mp_control.get("/ledger/Prime").json()["executions"] == 2
    records = mp_control.get("/requests").json()["requests"]
    assert records[0]["idempotencyKey"] == "idem-1"


def test_scripted_outcomes_through_paged_transactions(
    mp: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    suffixes = ["0000", "0001", "0002", "0003", "0004", "5678"]
    ids = {s: created_id(local(mp, f"+225070102{s}", 10_000)) for s in suffixes}
    expected = {
        "0000": ("failed", "RECIPIENT_NOT_FOUND"),
        "0001": ("completed", None),
        "0002": ("failed", "INSUFFICIENT_FUNDS"),
        "0003": ("processing", None),
        "0004": ("failed", "OPERATOR_ERROR"),
        "5678": ("completed", None),
    }

    def paged() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for offset in (0, 2, 4):
            page = mp.get("/transactions", params={"limit": 2, "offset": offset}).json()
            assert (page["total"], page["limit"], page["offset"]) == (6, 2, offset)
            assert len(page["data"]) == 2
            items.extend(page["data"])
        return items

    def settled(items: list[dict[str, Any]]) -> bool:
        by_id = {i["id"]: (i["status"], i["error_code"]) for i in items}
        return all(by_id[ids[s]] == expected[s] for s in suffixes)

    items = wait_until(paged, settled)
    assert [i["id"] for i in items] == [ids[s] for s in reversed(suffixes)]  # newest first
    assert mp.get("/transactions", params={"offset": 6}).json()["data"] == []
    failed = {i["id"]: i for i in items if i["status"] == "failed"}
    assert failed[ids["0002"]]["error_message"] == "Solde insuffisant"
    assert all(i["error_message"] for i in failed.values())
    # Failed transfers are credited back; the stuck one stays debited.
    assert balance(mp) == START_BALANCE - 3 * 10_100

    wait_until(lambda: len(webhook_receiver.received(HOOKS)) == 5)
    assert hooks_for(webhook_receiver, ids["0003"]) == []
    done = hooks_for(webhook_receiver, ids["0001"])[0]
    assert done["event"] == "transfer.completed"
    assert done["data"] == {
        "transfer_id": ids["0001"],
        "amount": 10_000,
        "currency": "FCFA",
        "status": "completed",
    }
    failure = hooks_for(webhook_receiver, ids["0002"])[0]
    assert failure["event"] == "transaction.failed"
    assert failure["data"] == {
        "transaction_id": ids["0002"],
        "error_code": "INSUFFICIENT_FUNDS",
        "error_message": "Solde insuffisant",
    }


def test_transactions_date_filters_and_paging_limits(mp: httpx.Client) -> None:
    first = local(mp).json()
    wait_until(time.time, lambda now: now * 1000 > iso(first["created_at"]).timestamp() * 1000 + 2)
    second = local(mp).json()
    today = datetime.now(UTC).date()
    ids = (first["transfer_id"], second["transfer_id"])

    def listed(**params: str) -> list[str]:
        return [t["id"] for t in all_transactions(mp, **params)]

    day = today.isoformat()
    assert listed(start_date=day, end_date=day) == [ids[1], ids[0]]
    assert listed(end_date=(today - timedelta(days=1)).isoformat()) == []
    assert listed(start_date=(today + timedelta(days=1)).isoformat()) == []
    assert listed(start_date=second["created_at"]) == [ids[1]]
    assert listed(end_date=first["created_at"]) == [ids[0]]
    for params in ({"start_date": "hier"}, {"limit": "0"}, {"limit": "101"}, {"offset": "-1"}):
        assert error(mp.get("/transactions", params=params)) == (400, "VALIDATION_ERROR")

    for _ in range(20):
        local(mp)
    page = mp.get("/transactions").json()
    assert (len(page["data"]), page["total"], page["limit"], page["offset"]) == (20, 22, 20, 0)
    assert len(mp.get("/transactions", params={"limit": 100}).json()["data"]) == 22


def test_fcfa_quirk_is_configurable(mp: httpx.Client, mp_control: httpx.Client) -> None:
    tx_id = created_id(local(mp))
    assert tx(mp, tx_id)["currency"] == "FCFA"
    mp_control.post("/config", json={"fcfa_currency": False})
    assert tx(mp, tx_id)["currency"] == "XOF"


def test_list_lag_hides_new_transactions_for_a_while(
    mp: httpx.Client, mp_control: httpx.Client
) -> None:
    config = mp_control.post("/config", json={"list_lag": 0.6}).json()
    assert config["list_lag"] == 0.6
    created = local(mp, description="Facture lag")
    tx_id = created_id(created)
    # Executed and counted at once, but not in the list yet.
    assert mp_control.get("/ledger/Facture lag").json()["executions"] == 1
    assert mp_control.get(f"/transactions/{tx_id}").status_code == 200
    page = mp.get("/transactions").json()
    assert (page["data"], page["total"]) == ([], 0)
    shown = wait_until(lambda: all_transactions(mp), timeout=5.0)
    assert [t["id"] for t in shown] == [tx_id]
    assert time.time() - iso(created.json()["created_at"]).timestamp() >= 0.6
    # Simulated seconds: time_scale shortens the lag like every other delay.
    mp_control.post("/config", json={"list_lag": 1000, "time_scale": 0})
    assert [t["id"] for t in all_transactions(mp)] == [tx_id]
    assert created_id(local(mp))
    assert len(all_transactions(mp)) == 2


def test_descriptions_can_be_stored_short_and_metadata_dropped(
    mp: httpx.Client, mp_control: httpx.Client
) -> None:
    mp_control.post("/config", json={"description_max_chars": 12, "echo_metadata": False})
    sent = "[mf:abcdefghijkl] Salaire mars [ref payout-acme-INV-1]"
    created = local(mp, description=sent, metadata={"reference": "payout-acme-INV-1"}).json()
    assert created["description"] == sent[:12]
    assert created["metadata"] is None
    listed = tx(mp, created["transfer_id"])
    assert (listed["description"], listed["metadata"]) == (sent[:12], None)
    payment = qr(mp, description="Achat boutique du samedi")
    assert tx(mp, payment["payment_id"])["description"] == "Achat boutiq"
    # The ledger is the simulator's own bookkeeping: it still keys on what was sent.
    assert mp_control.get("/ledger/payout-acme-INV-1").json()["executions"] == 1

    cleared = mp_control.post(
        "/config", json={"description_max_chars": None, "echo_metadata": True}
    ).json()
    assert (cleared["description_max_chars"], cleared["echo_metadata"]) == (None, True)
    whole = local(mp, description=sent, metadata={"reference": "payout-acme-INV-2"}).json()
    assert (whole["description"], whole["metadata"]) == (
        sent,
        {"reference": "payout-acme-INV-2"},
    )
    refused = mp_control.post("/config", json={"description_max_chars": 0})
    assert error(refused) == (400, "VALIDATION_ERROR")
    assert mp_control.post("/config", json={"list_lag": -1}).status_code == 400


def test_international_transfer_and_country_checks(
    mp: httpx.Client, mp_control: httpx.Client
) -> None:
    ok = mp.post(
        "/transfers/international",
        json={"recipient_country": "SN", "recipient_phone": "+221771231234", "amount": 50_000},
    )
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert (body["recipient_country"], body["fee"], body["currency"]) == ("SN", 1_000, "XOF")
    listed = wait_status(mp, body["transfer_id"], "completed")
    assert listed["recipient_country"] == "SN"
    for country, phone in (("ML", "+22376123456"), ("NE", "+22790123456"), ("BJ", "+22997123456")):
        body = {"recipient_country": country, "recipient_phone": phone, "amount": 1_000}
        assert mp.post("/transfers/international", json=body).status_code == 201

    def international(**body: Any) -> httpx.Response:
        return mp.post("/transfers/international", json=body)

    base = {"recipient_phone": "+221771231234", "amount": 5_000}
    assert error(international(**base, recipient_country="ML")) == (422, "INVALID_PHONE")
    assert error(international(**base, recipient_country="CI")) == (422, "INVALID_COUNTRY")
    assert error(international(**base, recipient_country="sn")) == (422, "INVALID_COUNTRY")
    assert error(international(**base)) == (400, "VALIDATION_ERROR")
    assert len(mp_control.get("/ledger").json()["transfers"]) == 4


def test_create_validation_never_executes(mp: httpx.Client, mp_control: httpx.Client) -> None:
    cases: list[tuple[Any, tuple[int, str]]] = [
        ({"recipient_phone": "+221771231234", "amount": 1_000}, (422, "INVALID_PHONE")),
        ({"recipient_phone": "0701020304", "amount": 1_000}, (422, "INVALID_PHONE")),
        ({"recipient_phone": "+2250701020304", "amount": 99}, (422, "INVALID_AMOUNT")),
        ({"recipient_phone": "+2250701020304", "amount": 1_500_001}, (422, "INVALID_AMOUNT")),
        ({"recipient_phone": "+2250701020304", "amount": 100.5}, (422, "INVALID_AMOUNT")),
        ({"recipient_phone": "+2250701020304", "amount": "100"}, (400, "VALIDATION_ERROR")),
        ({"amount": 1_000}, (400, "VALIDATION_ERROR")),
        ({"recipient_phone": "+2250701020304", "metadata": []}, (400, "VALIDATION_ERROR")),
    ]
    for body, expected in cases:
        full = {"description": "x", **body}
        assert error(mp.post("/transfers/local", json=full)) == expected, body
    no_description = {"recipient_phone": "+2250701020304", "amount": 1_000}
    assert error(mp.post("/transfers/local", json=no_description)) == (400, "VALIDATION_ERROR")
    not_json = mp.post("/transfers/local", content=b"{nope", headers={"Content-Type": "x"})
    assert error(not_json) == (400, "VALIDATION_ERROR")
    assert error(mp.post("/payments/qr", json={"amount": 1_000})) == (400, "VALIDATION_ERROR")

    mp_control.post("/config", json={"balance": 10_099})
    assert error(local(mp, amount=10_000)) == (422, "INSUFFICIENT_FUNDS")
    assert created_id(local(mp, amount=9_999))  # 9,999 + fee 100 fits exactly
    assert len(mp_control.get("/ledger").json()["transfers"]) == 1
    assert balance(mp) == 0


# -- QR payments --------------------------------------------------------------------------------


def test_qr_payment_is_paid_by_a_customer(
    mp: httpx.Client, mp_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    payment = qr(mp, metadata={"reference": "ORDER-7"})
    assert re.fullmatch(r"PAY\d+", payment["payment_id"])
    assert payment["status"] == "pending" and payment["amount"] == 25_000
    assert round((iso(payment["expires_at"]) - iso(payment["created_at"])).total_seconds()) == 60
    payload = httpx.get(payment["qr_code"])
    assert payload.status_code == 200 and payload.json()["payment_id"] == payment["payment_id"]
    pay_id = payment["payment_id"]
    assert tx(mp, pay_id)["payer"] is None

    paid = mp_control.post(f"/payments/{pay_id}/pay", json={"payer": "+2250505050505"})
    assert paid.status_code == 200 and paid.json()["status"] == "received"
    listed = tx(mp, pay_id)
    assert (listed["type"], listed["status"], listed["payer"]) == (
        "payment",
        "received",
        "+2250505050505",
    )
    assert balance(mp) == START_BALANCE + 25_000
    hook = wait_until(lambda: hooks_for(webhook_receiver, pay_id))[0]
    assert hook["event"] == "payment.received"
    assert hook["data"] == {
        "payment_id": pay_id,
        "amount": 25_000,
        "payer": "+2250505050505",
        "status": "received",
    }
    again = mp_control.post(f"/payments/{pay_id}/pay", json={"payer": "+2250505050505"})
    assert error(again) == (409, "CONFLICT")
    bad_payer = mp_control.post(f"/payments/{qr(mp)['payment_id']}/pay", json={"payer": "05"})
    assert error(bad_payer) == (400, "VALIDATION_ERROR")
    assert mp_control.get("/ledger/ORDER-7").json()["kind"] == "payment"


def test_unpaid_qr_payment_expires_and_failed_one_is_reported(
    mp: httpx.Client, mp_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    mp_control.post("/config", json={"payment_ttl": 0.3})
    expiring = qr(mp)["payment_id"]
    failing = qr(mp)["payment_id"]
    forced = mp_control.post(
        f"/transactions/{failing}/settle",
        json={"status": "failed", "errorCode": "INSUFFICIENT_FUNDS"},
    )
    assert forced.status_code == 200 and forced.json()["error_message"] == "Solde insuffisant"
    assert wait_status(mp, expiring, "expired")["payer"] is None
    late = mp_control.post(f"/payments/{expiring}/pay", json={"payer": "+2250505050505"})
    assert error(late) == (409, "CONFLICT")
    failed_hook = wait_until(lambda: hooks_for(webhook_receiver, failing))[0]
    assert failed_hook["event"] == "transaction.failed"
    assert failed_hook["data"]["error_code"] == "INSUFFICIENT_FUNDS"
    assert hooks_for(webhook_receiver, expiring) == []  # no documented event for expiry
    reversal = mp_control.post(
        f"/transactions/{expiring}/settle", json={"status": "received", "late": True}
    )
    assert reversal.status_code == 200 and reversal.json()["payer"]
    assert balance(mp) == START_BALANCE + 25_000


# -- rate limit ---------------------------------------------------------------------------------


def test_rate_limit_per_hour_with_retry_after(
    mp_server: ThreadedServer, mp: httpx.Client, mp_control: httpx.Client
) -> None:
    mp_control.post("/config", json={"rate_limit_per_hour": 3})
    responses = [mp.get("/balance") for _ in range(3)]
    assert {r.status_code for r in responses} == {200}
    assert not any(k.startswith("x-ratelimit") for r in responses for k in r.headers)
    limited = mp.get("/transactions")
    assert error(limited) == (429, "RATE_LIMITED")
    assert 3_590 <= int(limited.headers["retry-after"]) <= 3_600
    assert not any(k.startswith("x-ratelimit") for k in limited.headers)
    assert error(local(mp)) == (429, "RATE_LIMITED")
    assert mp_control.get("/ledger").json() == {"transfers": []}

    api = f"{mp_server.url}/api/v1"
    session = httpx.post(f"{api}/auth/login", json={"email": EMAIL, "password": PASSWORD})
    other = {"Authorization": f"Bearer {session.json()['access_token']}"}
    assert httpx.get(f"{api}/balance", headers=other).status_code == 200  # per token

    mp_control.post("/config", json={"rate_limit_per_hour": 0})
    assert mp.get("/balance").status_code == 200


# -- webhooks -----------------------------------------------------------------------------------


def test_webhooks_are_unsigned_by_default(
    mp: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    tx_id = created_id(local(mp))
    hook = wait_until(lambda: webhook_receiver.received(HOOKS))[0]
    body = hook.json()
    assert set(body) == {"event", "timestamp", "data"}
    assert body["event"] == "transfer.completed" and body["data"]["transfer_id"] == tx_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])
    assert abs(iso(body["timestamp"]).timestamp() - time.time()) < 5
    assert "x-mobilepay-signature" not in hook.headers
    assert hook.headers["content-type"] == "application/json"
    assert not [h for h in hook.headers if "id" in h.split("-")]  # no event or delivery id


def test_signed_webhooks(
    mp: httpx.Client, mp_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    mp_control.post("/config", json={"sign_webhooks": True})
    created_id(local(mp, "+2250701020000"))
    hook = wait_until(lambda: webhook_receiver.received(HOOKS))[0]
    assert hook.json()["event"] == "transaction.failed"
    verify_signature(hook)
    assert "***" in mp_control.get("/config").json()["webhook_secret"]


def test_webhook_retries_then_given_up(
    mp: httpx.Client, mp_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.respond(500, 502)
    created_id(local(mp))
    hooks = wait_until(lambda: webhook_receiver.received(HOOKS), lambda h: len(h) == 3)
    assert len({h.body for h in hooks}) == 1  # every attempt sends the same bytes
    delivered = wait_until(
        lambda: [d for d in mp_control.get("/webhooks").json()["deliveries"] if d["delivered"]]
    )
    assert delivered[0]["attempts"] == 3 and delivered[0]["lastStatus"] == 200

    mp_control.post("/reset")
    webhook_receiver.clear()
    webhook_receiver.respond(default=503)
    created_id(local(mp))
    gave_up = wait_until(
        lambda: [d for d in mp_control.get("/webhooks").json()["deliveries"] if d["givenUp"]]
    )
    assert gave_up[0]["attempts"] == 3  # first try + the 2 delays of the fixture's schedule
    assert gave_up[0]["delivered"] is False and gave_up[0]["lastStatus"] == 503


# -- faults -------------------------------------------------------------------------------------


def test_error_fault_answers_without_executing(mp: httpx.Client, mp_control: httpx.Client) -> None:
    fault = mp_control.post(
        "/faults", json={"operation": "transfers.local", "kind": "error", "count": 2}
    )
    assert fault.status_code == 201 and fault.json()["id"]
    for _ in range(2):
        failed = local(mp, description="Loyer")
        assert error(failed) == (503, "SERVICE_UNAVAILABLE")
    assert mp_control.get("/ledger").json() == {"transfers": []}
    assert created_id(local(mp, description="Loyer"))
    assert mp_control.get("/faults").json() == {"faults": []}

    mp_control.post(
        "/faults", json={"operation": "*", "kind": "error", "status": 429, "seconds": 7}
    )
    limited = mp.get("/balance")
    assert error(limited) == (429, "RATE_LIMITED") and limited.headers["retry-after"] == "7"
    custom = {"kind": "error", "operation": "balance", "status": 500, "code": "DB_DOWN"}
    mp_control.post("/faults", json={**custom, "message": "Base indisponible"})
    assert mp.get("/balance").json() == {
        "error": {"code": "DB_DOWN", "message": "Base indisponible"}
    }
    mp_control.post("/faults", json={"kind": "error", "operation": "auth.login", "status": 502})
    login = mp.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert error(login) == (502, "BAD_GATEWAY")
    unknown = mp_control.post("/faults", json={"operation": "payouts.initiate", "kind": "error"})
    assert error(unknown) == (400, "VALIDATION_ERROR")


def test_delay_fault(mp: httpx.Client, mp_control: httpx.Client) -> None:
    mp_control.post("/faults", json={"operation": "*", "kind": "delay", "seconds": 0.3})
    started = time.monotonic()
    assert mp.get("/balance").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    mp.get("/balance")
    assert time.monotonic() - started < 0.3


def test_timeout_after_execute_leaves_a_transfer_behind(
    mp: httpx.Client, mp_control: httpx.Client
) -> None:
    mp_control.post(
        "/faults",
        json={"operation": "transfers.local", "kind": "timeout_after_execute", "seconds": 1.0},
    )
    body = {"recipient_phone": "+2250701021234", "amount": 7_000, "description": "Facture 77"}
    with pytest.raises(httpx.ReadTimeout):
        mp.post("/transfers/local", json=body, timeout=0.3)
    listed = all_transactions(mp)
    assert len(listed) == 1 and listed[0]["amount"] == 7_000  # the money moved anyway
    assert mp_control.get("/ledger/Facture 77").json()["executions"] == 1
    # A blind retry pays twice: there is no idempotency to save the client.
    assert created_id(mp.post("/transfers/local", json=body))
    assert mp_control.get("/ledger/Facture 77").json()["executions"] == 2


def test_garbage_body_after_execution(mp: httpx.Client, mp_control: httpx.Client) -> None:
    mp_control.post("/faults", json={"operation": "payments.qr", "kind": "garbage_body"})
    garbled = mp.post(
        "/payments/qr", json={"amount": 1_000, "description": "Panier 3", "merchant_id": "M"}
    )
    assert garbled.status_code == 200
    with pytest.raises(ValueError):
        garbled.json()
    assert mp_control.get("/ledger/Panier 3").json()["executions"] == 1
    assert [t["type"] for t in all_transactions(mp)] == ["payment"]


def test_drop_duplicate_and_reorder_webhook_faults(
    mp: httpx.Client, mp_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    mp_control.post("/faults", json={"kind": "drop_webhooks", "count": 1})
    dropped = created_id(local(mp))
    kept = created_id(local(mp))
    wait_until(lambda: hooks_for(webhook_receiver, kept))
    deliveries = mp_control.get("/webhooks").json()["deliveries"]
    assert [d["dropped"] for d in deliveries if d["transactionId"] == dropped] == [True]
    assert hooks_for(webhook_receiver, dropped) == []

    mp_control.post("/faults", json={"kind": "duplicate_webhooks", "count": 1})
    duplicated = created_id(local(mp))
    wait_until(lambda: len(hooks_for(webhook_receiver, duplicated)) == 2)
    copies = [h for h in webhook_receiver.received(HOOKS) if duplicated.encode() in h.body]
    assert copies[0].body == copies[1].body

    webhook_receiver.clear()
    mp_control.post("/faults", json={"kind": "reorder_webhooks", "count": 1})
    first = created_id(local(mp))
    second = created_id(local(mp))
    wait_until(lambda: len(webhook_receiver.received(HOOKS)) == 2)
    order = [h.json()["data"]["transfer_id"] for h in webhook_receiver.received(HOOKS)]
    assert order == [second, first]

    webhook_receiver.clear()
    mp_control.post("/faults", json={"kind": "reorder_webhooks", "seconds": 0.2})
    alone = created_id(local(mp))
    wait_until(lambda: hooks_for(webhook_receiver, alone))  # released after `seconds`


# -- control API --------------------------------------------------------------------------------


def test_forced_settlement_of_a_stuck_transfer(
    mp: httpx.Client, mp_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    stuck = created_id(local(mp, "+2250701020003"))
    assert wait_status(mp, stuck, "processing")["error_code"] is None
    view = mp_control.get(f"/transactions/{stuck}").json()
    assert view["scriptedOutcome"]["status"] is None and view["ledgerKey"]
    forced = mp_control.post(
        f"/transactions/{stuck}/settle", json={"status": "failed", "errorCode": "OPERATOR_ERROR"}
    )
    assert forced.status_code == 200 and forced.json()["status"] == "failed"
    assert tx(mp, stuck)["error_code"] == "OPERATOR_ERROR"
    assert wait_until(lambda: hooks_for(webhook_receiver, stuck))[0]["event"] == (
        "transaction.failed"
    )
    assert balance(mp) == START_BALANCE
    again = mp_control.post(f"/transactions/{stuck}/settle", json={"status": "completed"})
    assert error(again) == (409, "CONFLICT")
    other = created_id(local(mp, "+2250701020003"))
    foreign = mp_control.post(f"/transactions/{other}/settle", json={"status": "received"})
    assert error(foreign) == (400, "VALIDATION_ERROR")
    completed = mp_control.post(f"/transactions/{other}/settle", json={"status": "completed"})
    assert completed.json()["status"] == "completed"
    unknown = mp_control.post("/transactions/TRF0/settle", json={"status": "failed"})
    assert error(unknown) == (404, "NOT_FOUND")


def test_request_log_redacts_tokens_and_reset_restores(
    mp: httpx.Client, mp_control: httpx.Client
) -> None:
    local(mp)
    mp.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    text = mp_control.get("/requests").text
    assert TOKEN not in text and PASSWORD not in text
    records = mp_control.get("/requests").json()["requests"]
    assert [r["operation"] for r in records] == ["transfers.local", "auth.login"]
    assert records[0]["credential"] == "mp_test_***" and records[0]["statusCode"] == 201
    config = mp_control.get("/config").json()
    assert config["api_token"] == config["login_password"] == "***"

    mp_control.post("/config", json={"settle_delay": 5, "balance": 10, "sign_webhooks": True})
    mp_control.post("/faults", json={"kind": "error", "operation": "balance"})
    assert error(mp_control.post("/config", json={"settle_delay": -1}))[0] == 400
    assert error(mp_control.post("/config", json={"rate_limit_per_minute": 1}))[0] == 400
    mp_control.post("/reset")
    config = mp_control.get("/config").json()
    assert config["settle_delay"] == 0.1 and config["current_balance"] == START_BALANCE
    assert config["sign_webhooks"] is False
    assert mp_control.get("/faults").json() == {"faults": []}
    assert mp_control.get("/requests").json() == {"requests": []}
    assert all_transactions(mp) == []


async def test_control_api_refuses_remote_clients() -> None:
    app = create_app(MobilePaySandboxConfig())
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        refused = await client.get("/_sandbox/ledger")
    assert error(refused) == (403, "FORBIDDEN")


def test_shutdown_is_prompt_with_hanging_requests_and_pending_work() -> None:
    server = ThreadedServer(create_app(MobilePaySandboxConfig(settle_delay=0.05))).start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers) as api:
            assert local(api, "+2250701020003").status_code == 201
            assert qr(api)["status"] == "pending"
            httpx.post(
                f"{server.url}/_sandbox/faults",
                json={"operation": "balance", "kind": "timeout_after_execute"},
            )
            with pytest.raises(httpx.ReadTimeout):
                api.get("/balance", timeout=0.2)
    finally:
        started = time.monotonic()
        server.stop(timeout=5)
    assert time.monotonic() - started < 2.0


# -- command line -------------------------------------------------------------------------------


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "momoflow.sandbox", "mobilepay", *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ready_url(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no ready line within {timeout}s")
    line = proc.stdout.readline().strip()
    prefix = "mobilepay sandbox listening on "
    assert line.startswith(prefix), (line, proc.stderr.read() if proc.stderr else "")
    return line.removeprefix(prefix)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_reads_env_and_exits_cleanly(processes: list[subprocess.Popen[str]]) -> None:
    env = {
        "MOBILEPAY_SANDBOX_API_TOKEN": "mp_test_env",
        "MOBILEPAY_SANDBOX_RATE_LIMIT_PER_HOUR": "7",
        "MOBILEPAY_SANDBOX_SIGN_WEBHOOKS": "1",
        "MOBILEPAY_SANDBOX_SETTLE_DELAY": "9",
    }
    env["MOBILEPAY_SANDBOX_DESCRIPTION_MAX_CHARS"] = "20"
    env["MOBILEPAY_SANDBOX_ECHO_METADATA"] = "0"
    proc = _spawn("--port", "0", "--settle-delay", "0.5", "--list-lag", "7.5", env=env)
    processes.append(proc)
    url = _ready_url(proc)
    assert url.startswith("http://127.0.0.1:")
    ok = httpx.get(f"{url}/api/v1/balance", headers={"Authorization": "Bearer mp_test_env"})
    assert ok.status_code == 200
    default = httpx.get(f"{url}/api/v1/balance", headers={"Authorization": f"Bearer {TOKEN}"})
    assert default.status_code == 401
    config = httpx.get(f"{url}/_sandbox/config").json()
    assert (config["rate_limit_per_hour"], config["sign_webhooks"]) == (7, True)
    assert config["settle_delay"] == 0.5  # the flag wins over the variable
    assert (config["list_lag"], config["description_max_chars"]) == (7.5, 20)
    assert config["echo_metadata"] is False
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_cli_refuses_a_taken_port(processes: list[subprocess.Popen[str]]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _spawn("--port", str(port))
        processes.append(proc)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert stderr.strip().count("\n") == 0 and "already in use" in stderr
