"""The NovaSend simulator, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
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
from pathlib import Path
from typing import Any

import httpx
import pytest

from momoflow.sandbox.novasend import NovaSendSandboxConfig, create_app
from momoflow.sandbox.shared import ThreadedServer

from .helpers import ReceivedWebhook, WebhookReceiver, wait_until

NS_SECRET = "nswh_test_receiver"
NS_AUTH = "Basic " + base64.b64encode(b"nsk_test_momoflow:nsc_test_momoflow").decode()
UNAUTHORIZED = {"code": "api_token_invalid", "message": "Unauthorized", "statusCode": 401}
ACTION = {"successUrl": "https://shop.example/ok", "failureUrl": "https://shop.example/ko"}
START = 100_000_000


@pytest.fixture(scope="module")
def ns_server(webhook_receiver: WebhookReceiver) -> Iterator[ThreadedServer]:
    """A NovaSend simulator with test-friendly timings; reset restores this config."""
    config = NovaSendSandboxConfig(
        settle_delay=0.15,
        webhook_url=f"{webhook_receiver.url}/hooks/novasend",
        webhook_secret=NS_SECRET,
        webhook_retry_schedule=(0.05, 0.1, 0.15),
        late_reversal_delay=0.5,
        payment_ttl=60.0,
        seed=4321,
    )
    with ThreadedServer(create_app(config)) as server:
        yield server


@pytest.fixture(scope="module")
def ns(ns_server: ThreadedServer) -> Iterator[httpx.Client]:
    """Authenticated client of the NovaSend API (host root)."""
    with httpx.Client(
        base_url=ns_server.url, headers={"Authorization": NS_AUTH}, timeout=5.0
    ) as client:
        yield client


@pytest.fixture(scope="module")
def ns_control(ns_server: ThreadedServer) -> Iterator[httpx.Client]:
    """Client of the ``/_sandbox`` control API."""
    with httpx.Client(base_url=f"{ns_server.url}/_sandbox", timeout=5.0) as client:
        yield client


@pytest.fixture(autouse=True)
def _clean(ns_control: httpx.Client, webhook_receiver: WebhookReceiver) -> None:
    assert ns_control.post("/reset").status_code == 200
    webhook_receiver.clear()


# -- helpers ------------------------------------------------------------------------------------


def ref() -> str:
    return f"REF-{uuid.uuid4().hex[:12]}"


def key() -> str:
    return str(uuid.uuid4())


def post(
    ns: httpx.Client, path: str, body: dict[str, Any], idem: str | None = None, **headers: str
) -> httpx.Response:
    return ns.post(path, json=body, headers={"X-Idempotency-Key": idem or key(), **headers})


def session_body(msisdn: str = "+2250701234567", **extra: Any) -> dict[str, Any]:
    return {
        "reference": ref(),
        "amount": 5_000,
        "msisdn": msisdn,
        "country": "CI",
        "customerName": "Awa Koné",
        "action": ACTION,
        **extra,
    }


def payin(ns: httpx.Client, msisdn: str = "+2250701234567", **extra: Any) -> dict[str, Any]:
    created = post(ns, "/v1/payin/sessions", session_body(msisdn, **extra))
    assert created.status_code == 201, created.text
    return dict(created.json())


def payout_body(msisdn: str = "+2250701234567", **extra: Any) -> dict[str, Any]:
    return {"reference": ref(), "amount": 10_000, "msisdn": msisdn, "country": "CI", **extra}


def payout(ns: httpx.Client, msisdn: str = "+2250701234567", **extra: Any) -> dict[str, Any]:
    created = post(ns, "/v1/payout", payout_body(msisdn, **extra))
    assert created.status_code == 201, created.text
    return dict(created.json())


def get(ns: httpx.Client, kind: str, reference: str) -> dict[str, Any]:
    response = ns.get(f"/v1/{kind}/{reference}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def settled(
    ns: httpx.Client, kind: str, reference: str, wanted: str, timeout: float = 5.0
) -> dict[str, Any]:
    """The transfer once ``transaction.status`` is ``wanted``."""
    return wait_until(
        lambda: get(ns, kind, reference),
        lambda b: (b["transaction"] or {}).get("status") == wanted,
        timeout=timeout,
    )


def hooks(receiver: WebhookReceiver, reference: str) -> list[ReceivedWebhook]:
    return [h for h in receiver.received() if h.json().get("reference") == reference]


def events(receiver: WebhookReceiver, reference: str) -> list[str]:
    return [h.json()["event"] for h in hooks(receiver, reference)]


def available(ns: httpx.Client, currency: str = "XOF") -> int:
    entries = ns.get("/v1/balance").json()
    return int(next(e for e in entries if e["currency"] == currency)["availableBalance"])


def verify_signature(hook: ReceivedWebhook) -> None:
    """providers.md 2.8: hex HMAC-SHA256 of the body, both ways a receiver may compute it."""
    signature = hook.headers["x-signature-value"]
    raw = hmac.new(NS_SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    reserialized = json.dumps(json.loads(hook.body), separators=(",", ":")).encode()
    again = hmac.new(NS_SECRET.encode(), reserialized, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, raw)
    assert hmac.compare_digest(signature, again)


# -- health, auth, balance ------------------------------------------------------------------------


def test_health_is_public_and_empty(ns_server: ThreadedServer) -> None:
    health = httpx.get(f"{ns_server.url}/health")
    assert health.status_code == 200 and health.content == b""


def test_auth_errors_and_language(ns_server: ThreadedServer) -> None:
    url = f"{ns_server.url}/v1/balance"
    assert httpx.get(url).status_code == 401 and httpx.get(url).json() == UNAUTHORIZED
    wrong = "Basic " + base64.b64encode(b"nsk_test_momoflow:nsc_wrong").decode()
    for header in (wrong, "Basic !!notbase64", "Bearer nsk_test_momoflow:nsc_test_momoflow"):
        answer = httpx.get(url, headers={"Authorization": header})
        assert answer.status_code == 401 and answer.json() == UNAUTHORIZED
    french = httpx.get(url, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert french.json() == {
        "code": "api_token_invalid",
        "message": "Non autorisé",
        "statusCode": 401,
    }
    assert httpx.get(url, headers={"Authorization": NS_AUTH}).status_code == 200


def test_balance_lists_both_wallets(ns: httpx.Client) -> None:
    entries = ns.get("/v1/balance").json()
    assert [e["currency"] for e in entries] == ["XOF", "XAF"]
    for entry in entries:
        assert set(entry) == {"balance", "availableBalance", "reference", "currency"}
        assert entry["balance"] == entry["availableBalance"] == START
        assert entry["reference"].startswith("wa_")


def test_unknown_route_is_404(ns: httpx.Client) -> None:
    assert ns.get("/v1/nope").json() == {
        "code": "not_found",
        "message": "Cannot GET /v1/nope",
        "statusCode": 404,
    }
    missing = ns.get("/v1/payin/UNKNOWN")
    assert missing.status_code == 404 and missing.json()["code"] == "transaction_does_not_exist"


# -- payins -------------------------------------------------------------------------------------


def test_wallet_payin_lifecycle_webhooks_and_balance(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    body = session_body(accountId="merchant_9923lkdz")  # older field, ignored
    created = post(ns, "/v1/payin/sessions", body)
    assert created.status_code == 201, created.text
    data = created.json()
    assert re.fullmatch(r"pr_[a-z0-9]{26}", data["id"])
    assert data["paymentUrl"] == f"{ns.base_url}/link/" + data["paymentUrl"][-6:]
    assert re.fullmatch(r"[A-Z0-9]{6}", data["paymentUrl"][-6:])
    assert {k: data[k] for k in data if k not in ("id", "paymentUrl", "createdAt")} == {
        "type": "payin",
        "reference": body["reference"],
        "status": "processing",
        "confirmationRequired": True,
        "confirmationStatus": "none",
        "customer": {"name": "Awa Koné", "phoneNumber": "+2250701234567"},
        "isDirect": False,
        "payFee": False,
        "amount": 5_000,
        "fee": 175,
        "chargedAmount": 5_175,
        "currency": "XOF",
        "failure": None,
    }
    assert httpx.get(data["paymentUrl"]).status_code == 200

    done = settled(ns, "payin", body["reference"], "completed")
    assert (done["status"], done["confirmationStatus"]) == ("processed", "accepted")
    transaction = done["transaction"]
    assert re.fullmatch(r"tr_[a-z0-9]{26}", transaction["reference"])
    assert (transaction["amount"], transaction["fees"], transaction["chargedAmount"]) == (
        "5000.00",
        "175.00",
        "5175.00",
    )
    assert transaction["processedAt"] and transaction["phoneNumber"] == "+2250701234567"
    assert get(ns, "payin", data["id"]) == done  # the system id works too
    wait_until(lambda: events(webhook_receiver, body["reference"]), lambda e: len(e) == 2)
    assert events(webhook_receiver, body["reference"]) == ["payin.confirmed", "payin.completed"]
    final = hooks(webhook_receiver, body["reference"])[-1].json()
    assert uuid.UUID(final["eventId"]).version == 4
    assert final["transaction"]["status"] == "completed" and final["id"] == data["id"]
    assert available(ns) == START + 5_000
    assert ns_control.get(f"/ledger/{body['reference']}").json() == {
        "transactionId": data["id"],
        "externalReference": body["reference"],
        "kind": "payin",
        "amount": 5_000,
        "currency": "XOF",
        "status": "completed",
        "executions": 1,
        "recipientPhone": "+2250701234567",
    }


def test_direct_payin_operators_and_otp(ns: httpx.Client) -> None:
    def direct(provider: str, country: str = "CI", msisdn: str = "+2250701234567", **more: Any):
        body = {
            "reference": ref(),
            "customerName": "Yao",
            "payin": {"amount": 1_000, "msisdn": msisdn, "provider": provider, "country": country}
            | more,
            "action": ACTION,
        }
        return post(ns, "/v1/direct/payin", body)

    wave = direct("WAVE")
    assert wave.status_code == 201, wave.text
    assert wave.json()["mobileMoney"] == {"provider": {"name": "WAVE_CI"}}
    assert wave.json()["isDirect"] is True and wave.json()["paymentUrl"]
    assert direct("MOMO").json()["paymentUrl"] is None
    no_otp = direct("ORANGE")
    assert no_otp.status_code == 403 and no_otp.json()["code"] == "transaction_otp_required"
    orange = direct("ORANGE", otp="123456")
    assert orange.status_code == 201 and orange.json()["mobileMoney"]["provider"]["name"] == (
        "ORANGE_CI"
    )
    cameroon = direct("MOMO", "CM", "+237671234567")
    assert cameroon.status_code == 201 and cameroon.json()["currency"] == "XAF"
    assert direct("WAVE", "CM", "+237671234567").json()["code"] == "provider_not_found"
    for unknown in ("FREE", "wave"):  # enumerations are case-sensitive
        answer = direct(unknown)
        assert answer.status_code == 404 and answer.json()["code"] == "provider_not_found"


@pytest.mark.parametrize(
    ("path", "amount", "country", "msisdn", "status", "code"),
    [
        ("/v1/payin/sessions", 99, "CI", "+2250701234567", 400, "invalid_amount"),
        ("/v1/payin/sessions", 100, "CI", "+2250701234567", 201, None),
        ("/v1/payin/sessions", 2_000_000, "CI", "+2250701234567", 201, None),
        ("/v1/payin/sessions", 2_000_001, "CI", "+2250701234567", 400, "invalid_amount"),
        ("/v1/payin/sessions", 199, "CM", "+237671234567", 400, "invalid_amount"),
        ("/v1/payin/sessions", 500_001, "CM", "+237671234567", 400, "invalid_amount"),
        ("/v1/payin/sessions", 0, "CI", "+2250701234567", 403, "transaction_greater_than_zero"),
        ("/v1/payin/sessions", 100.5, "CI", "+2250701234567", 400, "validation_error"),
        ("/v1/payin/sessions", 500, "SN", "+221771234567", 404, "country_not_found"),
        ("/v1/payin/sessions", 500, "ci", "+2250701234567", 404, "country_not_found"),
        ("/v1/payin/sessions", 500, "CI", "+237671234567", 400, "validation_error"),
        ("/v1/payout", 199, "CI", "+2250701234567", 400, "invalid_amount"),
        ("/v1/payout", 200, "CI", "+2250701234567", 201, None),
        ("/v1/payout", 1_500_000, "CI", "+2250701234567", 201, None),
        ("/v1/payout", 1_500_001, "CI", "+2250701234567", 400, "invalid_amount"),
        ("/v1/payout", 500_000, "CM", "+237671234567", 201, None),
        ("/v1/payout", -5, "CI", "+2250701234567", 403, "transaction_greater_than_zero"),
    ],
)
def test_limits_and_validation(
    ns: httpx.Client,
    path: str,
    amount: Any,
    country: str,
    msisdn: str,
    status: int,
    code: str | None,
) -> None:
    body = {"reference": ref(), "amount": amount, "msisdn": msisdn, "country": country}
    if "payin" in path:
        body["action"] = ACTION
    answer = post(ns, path, body)
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["code"] == code and answer.json()["statusCode"] == status


def test_error_messages_and_malformed_bodies(ns: httpx.Client) -> None:
    country = post(ns, "/v1/payout", payout_body(country="SN", msisdn="+221771234567"))
    assert country.json() == {
        "code": "country_not_found",
        "message": "The country with code SN does not exist",
        "statusCode": 404,
    }
    french = post(ns, "/v1/payout", payout_body(amount=10), **{"Accept-Language": "fr"})
    assert french.json() == {
        "code": "invalid_amount",
        "message": "Montant invalide",
        "statusCode": 400,
    }
    currency = post(ns, "/v1/payout", payout_body(currency="XAF"))
    assert currency.status_code == 400 and "currency" in currency.json()["message"]
    no_action = post(ns, "/v1/payin/sessions", session_body(action=None))
    assert no_action.status_code == 400 and "action" in no_action.json()["message"]
    not_json = ns.post("/v1/payout", content=b"{nope", headers={"X-Idempotency-Key": key()})
    assert not_json.status_code == 400 and not_json.json()["code"] == "validation_error"
    bad_scenario = post(ns, "/v1/payout", payout_body(sandboxScenario="maybe"))
    assert bad_scenario.status_code == 400 and "sandboxScenario" in bad_scenario.json()["message"]


@pytest.mark.parametrize(
    ("path", "amount", "fee"),
    [
        ("/v1/payin/sessions", 100, 4),
        ("/v1/payin/sessions", 200, 7),
        ("/v1/payin/sessions", 300, 11),
        ("/v1/payin/sessions", 2_000_000, 70_000),
        ("/v1/payout", 200, 4),
        ("/v1/payout", 250, 5),
        ("/v1/payout", 1_499_999, 30_000),
    ],
)
def test_fees_are_integer_ceilings(ns: httpx.Client, path: str, amount: int, fee: int) -> None:
    body = payout_body(amount=amount) if path == "/v1/payout" else session_body(amount=amount)
    created = post(ns, path, body).json()
    assert (created["fee"], created["chargedAmount"]) == (fee, amount + fee)
    kind = "payout" if path == "/v1/payout" else "payin"
    transaction = settled(ns, kind, body["reference"], "completed")["transaction"]
    assert transaction["fees"] == f"{fee}.00" and transaction["amount"] == f"{amount}.00"


@pytest.mark.parametrize(
    ("suffix", "settlement", "confirmation", "code", "event"),
    [
        ("0000", "completed", "accepted", None, "payin.completed"),
        ("0001", "failed", "accepted", "client_not_enough_cash", "payin.failed"),
        ("0002", "failed", "declined", "transaction_declined", "payin.declined"),
        ("0005", "failed", "accepted", "transaction_error", "payin.failed"),
    ],
)
def test_scripted_payin_outcomes(
    ns: httpx.Client,
    webhook_receiver: WebhookReceiver,
    suffix: str,
    settlement: str,
    confirmation: str,
    code: str | None,
    event: str,
) -> None:
    reference = payin(ns, f"+225070123{suffix}")["reference"]
    done = settled(ns, "payin", reference, settlement)
    assert done["status"] == "processed" and done["confirmationStatus"] == confirmation
    assert (done["failure"] or {}).get("code") == code
    if code is not None:
        assert done["failure"]["message"]
    wait_until(lambda: event in events(webhook_receiver, reference))
    assert available(ns) == START + (5_000 if settlement == "completed" else 0)


def test_unconfirmed_payin_expires(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    ns_control.post("/config", json={"payment_ttl": 0.4})
    reference = payin(ns, "+2250701230003")["reference"]
    prompted = wait_until(
        lambda: get(ns, "payin", reference), lambda b: b["confirmationStatus"] == "pending"
    )
    assert prompted["status"] == "processing" and prompted["transaction"] is None
    expired = wait_until(lambda: get(ns, "payin", reference), lambda b: b["status"] == "expired")
    assert expired["confirmationStatus"] == "expired" and expired["transaction"] is None
    wait_until(lambda: events(webhook_receiver, reference) == ["payin.expired"])
    assert ns_control.get(f"/ledger/{reference}").json()["status"] == "expired"


def test_sandbox_scenario_overrides_the_msisdn(
    ns: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    failed = payin(ns, "+2250701230000", sandboxScenario="failed")["reference"]
    assert settled(ns, "payin", failed, "failed")["failure"]["code"] == "transaction_error"
    pending = payin(ns, sandboxScenario="pending")["reference"]
    stuck = settled(ns, "payin", pending, "pending")
    assert stuck["status"] == "processed" and stuck["failure"] is None
    assert stuck["transaction"]["processedAt"] is None
    wait_until(lambda: events(webhook_receiver, pending) == ["payin.confirmed"])
    forced = payin(ns, "+2250701230001", sandboxScenario="completed")["reference"]
    settled(ns, "payin", forced, "completed")


def test_late_reversal_flips_failed_to_completed(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    reference = payin(ns, "+2250701230004")["reference"]
    failed = settled(ns, "payin", reference, "failed")
    assert failed["failure"]["code"] == "transaction_error" and available(ns) == START
    wait_until(lambda: "payin.failed" in events(webhook_receiver, reference))
    done = settled(ns, "payin", reference, "completed")
    assert (
        done["failure"] is None
        and done["transaction"]["reference"] == (failed["transaction"]["reference"])
    )
    wait_until(
        lambda: events(webhook_receiver, reference),
        lambda e: e == ["payin.confirmed", "payin.failed", "payin.completed"],
    )
    for hook in hooks(webhook_receiver, reference):
        verify_signature(hook)
    assert available(ns) == START + 5_000
    entry = ns_control.get(f"/ledger/{reference}").json()
    assert (entry["status"], entry["executions"]) == ("completed", 1)


# -- payouts ------------------------------------------------------------------------------------


def test_payouts_wallet_and_direct_with_both_keys(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    wallet = payout(ns, customerName="Koffi")
    assert (wallet["type"], wallet["status"], wallet["paymentUrl"]) == (
        "payout",
        "processing",
        None,
    )
    assert (wallet["confirmationRequired"], wallet["confirmationStatus"]) == (False, "accepted")
    assert (wallet["fee"], wallet["chargedAmount"], wallet["isDirect"]) == (200, 10_200, False)
    assert available(ns) == START - 10_200
    references = [wallet["reference"]]
    for nested in ("payout", "payin"):  # the SDK sends `payin` [N14]
        body = {
            "reference": ref(),
            "customerName": "Koffi",
            nested: {
                "amount": 1_000,
                "msisdn": "+2250501234567",
                "provider": "MOOV",
                "country": "CI",
            },
        }
        created = post(ns, "/v1/direct/payout", body)
        assert created.status_code == 201, created.text
        assert created.json()["mobileMoney"] == {"provider": {"name": "MOOV_CI"}}
        references.append(body["reference"])
    for reference in references:
        done = settled(ns, "payout", reference, "completed")
        assert done["status"] == "processed" and done["failure"] is None
        assert ns.get(f"/v1/direct/payout/{reference}").json() == done
    wait_until(lambda: all(events(webhook_receiver, r) == ["payout.completed"] for r in references))
    entries = ns.get("/v1/balance").json()
    assert entries[0]["balance"] == entries[0]["availableBalance"] == START - 10_200 - 2 * 1_020
    assert ns.get(f"/v1/payin/{wallet['reference']}").status_code == 404
    assert [e["executions"] for e in ns_control.get("/ledger").json()["transfers"]] == [1, 1, 1]


def test_failed_payout_returns_the_gross_amount(
    ns: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    stuck = payout(ns, "+2250701230003")["reference"]
    assert settled(ns, "payout", stuck, "pending")["status"] == "processing"
    in_flight = ns.get("/v1/balance").json()[0]  # `balance` still holds the stuck payout
    assert in_flight["availableBalance"] == START - 10_200 and in_flight["balance"] == START
    reference = payout(ns, "+2250701230001")["reference"]
    done = settled(ns, "payout", reference, "failed")
    assert done["failure"]["code"] == "wallet_not_found"
    wait_until(lambda: events(webhook_receiver, reference) == ["payout.failed"])
    assert available(ns) == START - 10_200  # the failed one gave back amount + fee


def test_wallet_short_of_cash_keeps_the_key_free(
    ns: httpx.Client, ns_control: httpx.Client
) -> None:
    ns_control.post("/config", json={"balance": 10_199})
    body, idem = payout_body(), key()
    poor = post(ns, "/v1/payout", body, idem)
    assert poor.status_code == 403 and poor.json()["code"] == "wallet_not_enough_cash"
    assert ns_control.get(f"/ledger/{body['reference']}").status_code == 404
    ns_control.post("/config", json={"balance": 10_200})
    assert post(ns, "/v1/payout", body, idem).status_code == 201  # only 2xx are stored
    assert available(ns) == 0


# -- idempotency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/payin/sessions",
        "/v1/direct/payin",
        "/v1/payout",
        "/v1/direct/payout",
        "/v1/payin/X/refund",
    ],
)
def test_writes_require_a_uuid_key(ns: httpx.Client, path: str) -> None:
    for headers in ({}, {"X-Idempotency-Key": "not-a-uuid"}):
        answer = ns.post(path, json={}, headers=headers)
        assert answer.status_code == 400
        assert answer.json()["code"] == "idempotency_key_invalid"


def test_replay_conflict_and_reference_reuse(ns: httpx.Client, ns_control: httpx.Client) -> None:
    body, idem = payout_body(), key()
    first = post(ns, "/v1/payout", body, idem)
    second = post(ns, "/v1/payout", dict(reversed(list(body.items()))), idem.upper())
    assert first.status_code == second.status_code == 201
    assert second.content == first.content and second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    conflict = post(ns, "/v1/payout", {**body, "amount": 10_001}, idem)
    assert conflict.json() == {
        "code": "transaction_is_already_processed",
        "message": "The transaction is already processed",
        "statusCode": 409,
    }
    reuse = post(ns, "/v1/payout", body)
    assert reuse.status_code == 409 and reuse.json()["code"] == "transaction_is_already_processed"
    other_endpoint = post(ns, "/v1/payin/sessions", session_body(), idem)
    assert other_endpoint.status_code == 409
    assert ns_control.get(f"/ledger/{body['reference']}").json()["executions"] == 1
    assert available(ns) == START - 10_200


def test_idempotency_key_only_mode_lets_a_reused_reference_execute_again(
    ns: httpx.Client, ns_control: httpx.Client
) -> None:
    """With ``idempotency_key_only`` the key is the only protection: a used reference under
    a new key is a second transfer (a second debit, ``executions`` 2); the same key still
    replays and the same key with another body is still a 409."""
    changed = ns_control.post("/config", json={"idempotency_key_only": True})
    assert changed.status_code == 200 and changed.json()["idempotency_key_only"] is True

    body, idem = payout_body(), key()
    reference = body["reference"]
    first = post(ns, "/v1/direct/payout", _direct(body), idem)
    replay = post(ns, "/v1/direct/payout", _direct(body), idem)
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"
    conflict = post(ns, "/v1/direct/payout", _direct({**body, "amount": 10_001}), idem)
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "transaction_is_already_processed"
    assert ns_control.get(f"/ledger/{reference}").json()["executions"] == 1
    assert available(ns) == START - 10_200

    second = post(ns, "/v1/direct/payout", _direct(body))  # same reference, new key
    assert second.status_code == 201, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    entry = ns_control.get(f"/ledger/{reference}").json()
    assert (entry["executions"], entry["transactionId"]) == (2, second.json()["id"])
    assert available(ns) == START - 2 * 10_200
    # Status by our reference shows the latest transfer; each stays readable by its id.
    assert get(ns, "payout", reference)["id"] == second.json()["id"]
    assert get(ns, "payout", first.json()["id"])["reference"] == reference

    session = session_body()
    created = [post(ns, "/v1/payin/sessions", session) for _ in range(2)]
    assert [c.status_code for c in created] == [201, 201]
    assert created[0].json()["id"] != created[1].json()["id"]
    assert ns_control.get(f"/ledger/{session['reference']}").json()["executions"] == 2

    assert ns_control.post("/config", json={"idempotency_key_only": None}).status_code == 400
    assert ns_control.post("/reset").status_code == 200
    assert ns_control.get("/config").json()["idempotency_key_only"] is False
    again = payout_body()
    assert post(ns, "/v1/payout", again).status_code == 201
    refused = post(ns, "/v1/payout", again)
    assert refused.status_code == 409
    assert refused.json()["code"] == "transaction_is_already_processed"


def test_idempotency_key_only_mode_settles_each_transfer_and_reuses_refund_references(
    ns: httpx.Client, ns_control: httpx.Client
) -> None:
    """Both transfers of a reused reference settle (each debit is real money); the ledger
    keeps the status of the latest. A refund ``externalReference`` is no guard either,
    while a second refund of one payin stays refused (that rule is NovaSend's own [N8])."""
    ns_control.post("/config", json={"idempotency_key_only": True})
    body = payout_body(sandboxScenario="pending")
    first = post(ns, "/v1/payout", body).json()["id"]
    second = post(ns, "/v1/payout", {**body, "sandboxScenario": "completed"})
    assert second.status_code == 201, second.text
    settled(ns, "payout", body["reference"], "completed")
    assert available(ns) == START - 2 * 10_200
    # The first one fails after the second completed: its gross comes back, and the
    # ledger still shows the latest transfer's status.
    forced = ns_control.post(f"/transactions/{first}/settle", json={"status": "failed"})
    assert forced.status_code == 200, forced.text
    assert get(ns, "payout", first)["transaction"]["status"] == "failed"
    entry = ns_control.get(f"/ledger/{body['reference']}").json()
    assert (entry["executions"], entry["status"]) == (2, "completed")
    assert entry["transactionId"] == second.json()["id"]
    assert available(ns) == START - 10_200

    refund = {"reason": "x", "externalReference": ref()}
    payins = [payin(ns)["reference"] for _ in range(2)]
    for reference in payins:
        settled(ns, "payin", reference, "completed")
    assert [post(ns, f"/v1/payin/{r}/refund", refund).status_code for r in payins] == [201, 201]
    assert ns_control.get(f"/ledger/{refund['externalReference']}").json()["executions"] == 2
    twice = post(ns, f"/v1/payin/{payins[0]}/refund", {"reason": "x"})
    assert twice.status_code == 409 and twice.json()["code"] == "transaction_already_refunded"


def _direct(body: dict[str, Any]) -> dict[str, Any]:
    """A wallet payout body as the direct API has it (the shape momoflow sends) [N6]."""
    return {
        "reference": body["reference"],
        "payout": {
            "amount": body["amount"],
            "msisdn": body["msisdn"],
            "provider": "WAVE",
            "country": body["country"],
        },
    }


async def test_concurrent_requests_with_one_key_execute_once(
    ns_server: ThreadedServer, ns_control: httpx.Client
) -> None:
    headers = {"Authorization": NS_AUTH, "X-Idempotency-Key": key()}
    body = payout_body()
    async with httpx.AsyncClient(base_url=ns_server.url, timeout=5) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/payout", json=body, headers=headers) for _ in range(8))
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert [t["executions"] for t in ns_control.get("/ledger").json()["transfers"]] == [1]


# -- refunds ------------------------------------------------------------------------------------


def test_refund_rules_and_completion(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    refund_body = {"reason": "Commande annulée", "externalReference": ref()}
    missing = post(ns, "/v1/payin/UNKNOWN/refund", refund_body)
    assert missing.status_code == 404 and missing.json()["code"] == "transaction_does_not_exist"
    open_payin = payin(ns, sandboxScenario="pending")["reference"]
    not_yet = post(ns, f"/v1/payin/{open_payin}/refund", refund_body)
    assert not_yet.status_code == 403 and not_yet.json()["code"] == "transaction_not_processed"
    failed = payin(ns, "+2250701230005")["reference"]
    settled(ns, "payin", failed, "failed")
    refused = post(ns, f"/v1/payin/{failed}/refund", refund_body)
    assert refused.status_code == 403 and refused.json()["code"] == "transaction_not_refundable"

    reference = payin(ns)["reference"]
    original = settled(ns, "payin", reference, "completed")["transaction"]["reference"]
    idem = key()
    created = post(ns, f"/v1/payin/{reference}/refund", refund_body, idem)
    assert created.status_code == 201, created.text
    data = created.json()
    assert re.fullmatch(r"rf_[a-z0-9]{26}", data["reference"])
    assert {k: data[k] for k in data if k not in ("reference", "createdAt")} == {
        "type": "refund",
        "originalReference": original,
        "amount": 5_000,
        "fee": 0,
        "currency": "XOF",
        "status": "processing",
        "reason": "Commande annulée",
        "refundType": "full",
        "customerMsisdn": "+2250701234567",
        "customerName": "Awa Koné",
        "transaction": None,
    }
    assert available(ns) == START
    replay = post(ns, f"/v1/payin/{reference}/refund", refund_body, idem)
    assert replay.content == created.content and replay.headers["idempotent-replayed"] == "true"
    again = post(ns, f"/v1/payin/{reference}/refund", refund_body)
    assert again.status_code == 409 and again.json()["code"] == "transaction_already_refunded"
    hook = wait_until(
        lambda: [h for h in webhook_receiver.received() if h.json().get("type") == "refund"]
    )[0]
    verify_signature(hook)
    completed = hook.json()
    assert (completed["event"], completed["status"]) == ("refund.completed", "completed")
    assert completed["reference"] == data["reference"]
    assert completed["transaction"]["status"] == "completed"
    assert completed["transaction"]["amount"] == "5000.00"
    entry = ns_control.get(f"/ledger/{refund_body['externalReference']}").json()
    assert (entry["kind"], entry["executions"], entry["status"]) == ("refund", 1, "completed")

    ns_control.post("/config", json={"refund_type": "partial"})
    second = payin(ns)["reference"]
    settled(ns, "payin", second, "completed")
    partial = post(ns, f"/v1/payin/{second}/refund", {"reason": "x"})
    assert partial.json()["refundType"] == "partial"


# -- webhooks -----------------------------------------------------------------------------------


def test_webhook_signature_is_over_compact_ascii_json(
    ns: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    reference = payin(ns, customerName="Adjoua N'Guessan Ébrié")["reference"]
    received = wait_until(lambda: hooks(webhook_receiver, reference), lambda h: len(h) == 2)
    for hook in received:
        verify_signature(hook)
        assert hook.headers["content-type"] == "application/json"
        assert b": " not in hook.body and b", " not in hook.body
        assert "timestamp" not in " ".join(hook.headers)
    body = received[-1].json()
    assert body["customer"]["name"] == "Adjoua N'Guessan Ébrié"
    assert body["type"] == "payin" and body["fees"] == body["fee"] == 175
    assert "data" not in body and "envelope" not in body


def test_webhook_retries_until_200_with_a_stable_event_id(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.respond(500, 201)  # NovaSend wants exactly 200
    reference = payout(ns, "+2250701230000")["reference"]
    attempts = wait_until(lambda: hooks(webhook_receiver, reference), lambda h: len(h) == 3)
    assert len({h.body for h in attempts}) == 1
    assert len({h.json()["eventId"] for h in attempts}) == 1
    log = wait_until(
        lambda: [d for d in ns_control.get("/webhooks").json()["deliveries"] if d["delivered"]]
    )
    assert log[0]["attempts"] == 3 and [a["statusCode"] for a in log[0]["attemptLog"]] == [
        500,
        201,
        200,
    ]


def test_webhook_given_up_after_the_schedule(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.respond(default=503)
    payout(ns)
    gave_up = wait_until(
        lambda: [d for d in ns_control.get("/webhooks").json()["deliveries"] if d["givenUp"]]
    )
    assert gave_up[0]["attempts"] == 4 and gave_up[0]["delivered"] is False


# -- faults -------------------------------------------------------------------------------------


def test_error_fault_answers_without_executing(ns: httpx.Client, ns_control: httpx.Client) -> None:
    fault = ns_control.post(
        "/faults", json={"operation": "payout.wallet", "kind": "error", "status": 503, "count": 2}
    )
    assert fault.status_code == 201 and fault.json()["id"]
    body, idem = payout_body(), key()
    for _ in range(2):
        failed = post(ns, "/v1/payout", body, idem)
        assert failed.json() == {
            "code": "service_unavailable",
            "message": "Service Unavailable",
            "statusCode": 503,
        }
    assert ns_control.get("/ledger").json() == {"transfers": []}
    assert post(ns, "/v1/payout", body, idem).status_code == 201
    assert ns_control.get("/faults").json() == {"faults": []}
    unknown = ns_control.post("/faults", json={"operation": "payouts.initiate", "kind": "error"})
    assert unknown.status_code == 400
    ns_control.post("/faults", json={"operation": "*", "kind": "error", "status": 500})
    assert ns.get("/v1/balance").json() == {
        "code": "internal_error",
        "message": "Internal Server Error",
        "statusCode": 500,
    }
    kyc = {"operation": "payout.wallet", "kind": "error", "status": 403}
    ns_control.post("/faults", json={**kyc, "code": "client_kyc_not_approved"})
    rejected = post(ns, "/v1/payout", payout_body(), **{"Accept-Language": "fr"})
    assert rejected.json() == {
        "code": "client_kyc_not_approved",
        "message": "Le KYC du client n'est pas approuvé",
        "statusCode": 403,
    }


def test_delay_fault(ns: httpx.Client, ns_control: httpx.Client) -> None:
    ns_control.post("/faults", json={"operation": "balance", "kind": "delay", "seconds": 0.3})
    started = time.monotonic()
    assert ns.get("/v1/balance").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_after_execute_then_replay(ns: httpx.Client, ns_control: httpx.Client) -> None:
    ns_control.post(
        "/faults",
        json={"operation": "payin.sessions", "kind": "timeout_after_execute", "seconds": 1.0},
    )
    body, idem = session_body(), key()
    with pytest.raises(httpx.ReadTimeout):
        ns.post("/v1/payin/sessions", json=body, headers={"X-Idempotency-Key": idem}, timeout=0.3)
    entry = ns_control.get(f"/ledger/{body['reference']}").json()
    assert entry["executions"] == 1  # the money moved although the client saw a timeout
    replay = post(ns, "/v1/payin/sessions", body, idem)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == entry["transactionId"]
    assert post(ns, "/v1/payin/sessions", body).status_code == 409
    assert ns_control.get(f"/ledger/{body['reference']}").json()["executions"] == 1


def test_garbage_body_after_execution(ns: httpx.Client, ns_control: httpx.Client) -> None:
    ns_control.post("/faults", json={"operation": "payout.direct", "kind": "garbage_body"})
    body = {
        "reference": ref(),
        "payout": {"amount": 500, "msisdn": "+2250701234567", "provider": "WAVE", "country": "CI"},
    }
    garbled = post(ns, "/v1/direct/payout", body)
    assert garbled.status_code == 200
    with pytest.raises(ValueError):
        garbled.json()
    assert ns_control.get(f"/ledger/{body['reference']}").json()["executions"] == 1


def test_drop_duplicate_and_reorder_webhook_faults(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    ns_control.post("/faults", json={"kind": "drop_webhooks", "count": 1})
    dropped = payin(ns)["reference"]
    wait_until(lambda: events(webhook_receiver, dropped) == ["payin.completed"])

    ns_control.post("/faults", json={"kind": "duplicate_webhooks", "count": 1})
    duplicated = payin(ns)["reference"]
    wait_until(lambda: len(events(webhook_receiver, duplicated)) == 3)
    copies = [
        h for h in hooks(webhook_receiver, duplicated) if h.json()["event"] == "payin.confirmed"
    ]
    assert len(copies) == 2 and copies[0].body == copies[1].body

    ns_control.post("/faults", json={"kind": "reorder_webhooks", "count": 1})
    reordered = payin(ns)["reference"]
    wait_until(
        lambda: events(webhook_receiver, reordered) == ["payin.completed", "payin.confirmed"]
    )
    assert any(d["dropped"] for d in ns_control.get("/webhooks").json()["deliveries"])


def test_rate_limit_is_off_by_default_and_429_when_enabled(
    ns: httpx.Client, ns_control: httpx.Client
) -> None:
    assert all(ns.get("/v1/balance").status_code == 200 for _ in range(20))
    ns_control.post("/config", json={"rate_limit_per_minute": 2})
    assert [ns.get("/v1/balance").status_code for _ in range(2)] == [200, 200]
    limited = ns.get("/v1/payin/ANY")
    assert limited.status_code == 429
    assert limited.json() == {
        "code": "too_many_requests",
        "message": "Too many requests",
        "statusCode": 429,
    }
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "x-ratelimit-limit" not in limited.headers


# -- control API --------------------------------------------------------------------------------


def test_forced_settlement_and_control_contract(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    stuck = payout(ns, "+2250701230003")
    forced = ns_control.post(
        f"/transactions/{stuck['id']}/settle",
        json={"status": "failed", "errorCode": "wallet_not_found"},
    )
    assert forced.status_code == 200 and forced.json()["transaction"]["status"] == "failed"
    assert get(ns, "payout", stuck["reference"])["failure"]["code"] == "wallet_not_found"
    wait_until(lambda: events(webhook_receiver, stuck["reference"]) == ["payout.failed"])
    assert available(ns) == START
    again = ns_control.post(f"/transactions/{stuck['id']}/settle", json={"status": "completed"})
    assert again.status_code == 409
    foreign = ns_control.post(f"/transactions/{stuck['id']}/settle", json={"status": "declined"})
    assert foreign.status_code == 400

    declined = payin(ns, "+2250701230003")["reference"]
    ns_control.post(f"/transactions/{declined}/settle", json={"status": "declined"})
    assert get(ns, "payin", declined)["confirmationStatus"] == "declined"
    late = ns_control.post(
        f"/transactions/{declined}/settle", json={"status": "completed", "late": True}
    )
    assert late.status_code == 200 and late.json()["transaction"]["status"] == "completed"
    assert late.json()["state"] == "completed" and late.json()["scriptedOutcome"]["payin"]
    wait_until(lambda: events(webhook_receiver, declined)[-1:] == ["payin.completed"])
    assert available(ns) == START + 5_000
    assert ns_control.get("/transactions/pr_unknown").status_code == 404


def test_request_log_reset_and_config(ns: httpx.Client, ns_control: httpx.Client) -> None:
    body, idem = payout_body(), key()
    post(ns, "/v1/payout", body, idem)
    text = ns_control.get("/requests").text
    assert "nsc_test_momoflow" not in text and NS_AUTH not in text
    record = [r for r in ns_control.get("/requests").json()["requests"] if r["operation"]][0]
    assert record["operation"] == "payout.wallet" and record["idempotencyKey"] == idem
    assert record["credential"] == "nsk_test***:***" and record["statusCode"] == 201
    config = ns_control.get("/config").json()
    assert config["api_client"] == config["webhook_secret"] == "***"
    assert config["current_balances"] == {"XOF": START - 10_200, "XAF": START}
    assert ns_control.post("/config", json={"quote_ttl": 1}).status_code == 400
    assert ns_control.post("/config", json={"settle_delay": -1}).status_code == 400
    ns_control.post("/config", json={"balance_xaf": 7, "settle_delay": 3})
    ns_control.post("/faults", json={"kind": "error", "operation": "balance"})
    ns_control.post("/reset")
    config = ns_control.get("/config").json()
    assert config["settle_delay"] == 0.15 and config["current_balances"]["XAF"] == START
    assert ns_control.get("/faults").json() == {"faults": []}
    assert ns_control.get("/requests").json() == {"requests": []}


async def test_control_api_refuses_remote_clients() -> None:
    app = create_app(NovaSendSandboxConfig())
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        refused = await client.get("/_sandbox/ledger")
    assert refused.status_code == 403 and refused.json()["statusCode"] == 403


def test_shutdown_is_prompt_with_pending_work() -> None:
    server = ThreadedServer(create_app(NovaSendSandboxConfig(settle_delay=0.05))).start()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": NS_AUTH}) as api:
            assert post(api, "/v1/payout", payout_body("+2250701230003")).status_code == 201
            assert (
                post(api, "/v1/payin/sessions", session_body("+2250701230003")).status_code == 201
            )
            httpx.post(
                f"{server.url}/_sandbox/faults",
                json={"operation": "balance", "kind": "timeout_after_execute"},
            )
            with pytest.raises(httpx.ReadTimeout):
                api.get("/v1/balance", timeout=0.2)
    finally:
        started = time.monotonic()
        server.stop(timeout=5)
    assert time.monotonic() - started < 2.0


# -- the older payin API (seed 004) ---------------------------------------------------------------

ACCOUNT = "merchant_9923lkdz"


def older_session(msisdn: str = "+2250701234567", **extra: Any) -> dict[str, Any]:
    """The seed 004 request example's fields (no ``action``: the older page has none)."""
    return {
        "reference": ref(),
        "accountId": ACCOUNT,
        "amount": 300,
        "msisdn": msisdn,
        "customerName": "John Doe",
        "country": "CI",
        **extra,
    }


def older_hooks(receiver: WebhookReceiver, reference: str) -> list[ReceivedWebhook]:
    return [h for h in receiver.received() if h.json().get("customerReference") == reference]


def test_older_payin_api_requires_account_and_name_and_answers_without_id(
    ns: httpx.Client, ns_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    config = ns_control.post("/config", json={"payin_api_version": "seed004"})
    assert config.status_code == 200 and config.json()["payin_api_version"] == "seed004"

    lacking = post(ns, "/v1/payin/sessions", session_body())  # the newer body: no accountId
    assert lacking.status_code == 400 and lacking.json()["code"] == "validation_error"
    assert "accountId must be a non-empty string" in lacking.json()["message"]
    nameless = {k: v for k, v in older_session().items() if k != "customerName"}
    refused = post(ns, "/v1/payin/sessions", nameless)
    assert refused.status_code == 400 and "customerName" in refused.json()["message"]

    body = older_session()
    created = post(ns, "/v1/payin/sessions", body)
    assert created.status_code == 201, created.text
    data = created.json()
    assert list(data) == [  # the seed's answer, field for field and in its order
        "type",
        "fee",
        "reference",
        "phoneNumber",
        "amount",
        "chargedAmount",
        "status",
        "currency",
        "customerReference",
        "confirmationRequired",
        "confirmationStatus",
        "paymentUrl",
        "createdAt",
    ]
    system = data["reference"]
    assert re.fullmatch(r"tr_[a-z0-9]{26}", system)
    assert data["customerReference"] == body["reference"]
    assert (data["amount"], data["fee"], data["chargedAmount"]) == (300, 11, 311)
    assert (data["status"], data["confirmationStatus"]) == ("processing", "none")
    assert data["phoneNumber"] == "+2250701234567" and data["currency"] == "XOF"
    assert httpx.get(data["paymentUrl"]).status_code == 200

    # The status path takes the id generated by the POST, not the merchant's reference.
    by_ours = ns.get(f"/v1/payin/{body['reference']}")
    assert by_ours.status_code == 404 and by_ours.json()["code"] == "transaction_does_not_exist"
    first = get(ns, "payin", system)
    assert "id" not in first and "paymentUrl" not in first and first["failure"] is None
    assert first["customerName"] == "John Doe" and first["customerReference"] == body["reference"]
    done = settled(ns, "payin", system, "completed")
    assert done["reference"] == system and done["status"] == "processed"
    core = done["transaction"]
    assert core["reference"] != system and core["reference"].startswith("tr_")
    assert (core["amount"], core["fees"], core["chargedAmount"]) == ("300.00", "11.00", "311.00")
    assert ns.get(f"/v1/payin/{core['reference']}").status_code == 404

    wait_until(lambda: older_hooks(webhook_receiver, body["reference"]), lambda h: len(h) == 2)
    confirmed, completed = (h.json() for h in older_hooks(webhook_receiver, body["reference"]))
    assert (confirmed["event"], completed["event"]) == ("payin.confirmed", "payin.completed")
    assert "id" not in completed and completed["reference"] == system
    assert completed["transaction"]["status"] == "completed"
    verify_signature(older_hooks(webhook_receiver, body["reference"])[-1])

    state = ns_control.get(f"/transactions/{system}").json()
    assert state["accountId"] == ACCOUNT and state["state"] == "completed"
    ledger = ns_control.get(f"/ledger/{body['reference']}").json()
    assert (ledger["transactionId"], ledger["executions"]) == (system, 1)
    assert available(ns) == START + 300


def test_older_payin_api_accepts_the_newer_fields_and_changes_sessions_only(
    ns: httpx.Client, ns_control: httpx.Client
) -> None:
    ns_control.post("/config", json={"payin_api_version": "seed004"})
    both = post(ns, "/v1/payin/sessions", older_session(action=ACTION))  # momoflow's superset
    assert both.status_code == 201 and "id" not in both.json()
    direct = post(
        ns,
        "/v1/direct/payin",
        {
            "reference": ref(),
            "payin": {
                "amount": 500,
                "msisdn": "+2250701234567",
                "provider": "WAVE",
                "country": "CI",
            },
            "action": ACTION,
        },
    )
    assert direct.status_code == 201 and direct.json()["id"].startswith("pr_")
    assert payout(ns)["id"].startswith("pr_")

    # A session keeps the version it was created under; new ones follow the setting.
    ns_control.post("/config", json={"payin_api_version": "v2"})
    older = both.json()
    assert "id" not in get(ns, "payin", older["reference"])
    assert ns.get(f"/v1/payin/{older['customerReference']}").status_code == 404
    newer = payin(ns, accountId=ACCOUNT)  # the newer API ignores accountId
    assert newer["id"].startswith("pr_") and newer["reference"] != older["customerReference"]
    assert ns_control.get(f"/transactions/{newer['id']}").json()["accountId"] == ACCOUNT


def test_payin_api_version_is_validated_and_reset(ns_control: httpx.Client) -> None:
    assert ns_control.get("/config").json()["payin_api_version"] == "v2"
    assert ns_control.post("/config", json={"payin_api_version": "v1"}).status_code == 400
    ns_control.post("/config", json={"payin_api_version": "seed004"})
    ns_control.post("/reset")
    assert ns_control.get("/config").json()["payin_api_version"] == "v2"


# -- command line -------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "momoflow.sandbox", "novasend", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_ready_line_env_and_sigterm() -> None:
    env = {"NOVASEND_SANDBOX_API_KEY": "nsk_env", "NOVASEND_SANDBOX_SETTLE_DELAY": "0.5"}
    proc = _spawn("--port", "0", "--api-client", "nsc_flag", env=env)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(15), "no ready line within 15 s"
        line = proc.stdout.readline().strip()
        assert re.fullmatch(r"novasend sandbox listening on http://127\.0\.0\.1:\d+", line), line
        url = line.rsplit(" ", 1)[1]
        auth = "Basic " + base64.b64encode(b"nsk_env:nsc_flag").decode()
        assert httpx.get(f"{url}/v1/balance", headers={"Authorization": auth}).status_code == 200
        assert httpx.get(f"{url}/_sandbox/config").json()["settle_delay"] == 0.5
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_cli_refuses_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _spawn("--port", str(port))
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert "already in use" in stderr and str(port) in stderr


def test_cli_payin_api_version_flag_and_environment() -> None:
    proc = _spawn("--port", "0", "--payin-api-version", "seed004")
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(15), "no ready line within 15 s"
        url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        assert httpx.get(f"{url}/_sandbox/config").json()["payin_api_version"] == "seed004"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    wrong = _spawn("--port", "0", env={"NOVASEND_SANDBOX_PAYIN_API_VERSION": "v1"})
    _, stderr = wrong.communicate(timeout=15)
    assert wrong.returncode == 2 and "payin_api_version" in stderr


def test_cli_idempotency_key_only_flag_and_environment() -> None:
    """``--idempotency-key-only`` and ``NOVASEND_SANDBOX_IDEMPOTENCY_KEY_ONLY`` turn the mode
    on; ``--no-idempotency-key-only`` wins over the variable; off by default."""
    runs = [
        ((), {}, False),
        (("--idempotency-key-only",), {}, True),
        ((), {"NOVASEND_SANDBOX_IDEMPOTENCY_KEY_ONLY": "1"}, True),
        (("--no-idempotency-key-only",), {"NOVASEND_SANDBOX_IDEMPOTENCY_KEY_ONLY": "1"}, False),
    ]
    for args, env, expected in runs:
        proc = _spawn("--port", "0", *args, env=env)
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                assert selector.select(15), "no ready line within 15 s"
            url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
            config = httpx.get(f"{url}/_sandbox/config").json()
            assert config["idempotency_key_only"] is expected, (args, env)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
