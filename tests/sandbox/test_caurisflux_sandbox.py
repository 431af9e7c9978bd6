"""The CaurisFlux simulator, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from momoflow.sandbox.caurisflux import CaurisFluxSandboxConfig, create_app
from momoflow.sandbox.shared import ThreadedServer

from .helpers import (
    CF_KEY,
    WebhookReceiver,
    verify_caurisflux_signature,
    wait_until,
)

UNAUTHENTICATED = {"statusCode": 401, "message": "Non authentifié", "error": "Unauthorized"}


@pytest.fixture(autouse=True)
def _clean(cf_control: httpx.Client, webhook_receiver: WebhookReceiver) -> None:
    assert cf_control.post("/reset").status_code == 200
    webhook_receiver.clear()


def ref() -> str:
    return f"REF-{uuid.uuid4().hex[:12]}"


def quote(cf: httpx.Client, amount: int = 50_000, **overrides: Any) -> dict[str, Any]:
    body = {
        "amount": amount,
        "currency": "XOF",
        "country": "SN",
        "method": "mobile_money",
        "provider": "wave",
        **overrides,
    }
    response = cf.post("/payouts/quote", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def payout(
    cf: httpx.Client,
    phone: str = "+221771230001",
    *,
    reference: str | None = None,
    key: str | None = None,
    quote_id: str | None = None,
    **extra: Any,
) -> httpx.Response:
    body = {
        "quoteId": quote_id or quote(cf)["quoteId"],
        "externalReference": reference or ref(),
        "recipient": {"phone": phone, "firstName": "Amadou", "lastName": "Diallo"},
        "description": "Paiement fournisseur",
        **extra,
    }
    headers = {"X-Idempotency-Key": key} if key else {}
    return cf.post("/payouts/initiate", json=body, headers=headers)


def payin(
    cf: httpx.Client, phone: str = "+221771234567", *, reference: str | None = None, **extra: Any
) -> httpx.Response:
    body = {
        "type": "direct",
        "provider": "wave",
        "country": "SN",
        "amount": 10_000,
        "currency": "XOF",
        "externalReference": reference or ref(),
        "customerPhone": phone,
        **extra,
    }
    return cf.post("/payments/initiate", json=body)


def status(cf: httpx.Client, tx_id: str) -> dict[str, Any]:
    response = cf.get(f"/payments/status/{tx_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_status(cf: httpx.Client, tx_id: str, wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    return wait_until(lambda: status(cf, tx_id), lambda s: s["status"] == wanted, timeout=timeout)


def events(receiver: WebhookReceiver, tx_id: str) -> list[str]:
    return [
        h.json()["event"] for h in receiver.received() if h.json()["data"]["transactionId"] == tx_id
    ]


def balance(cf: httpx.Client) -> int:
    return int(cf.get("/payments/balance").json()["data"]["balance"])


def ledger(control: httpx.Client) -> list[dict[str, Any]]:
    return list(control.get("/ledger").json()["transfers"])


# -- public endpoints and auth ----------------------------------------------------------------


def test_health_and_public_catalogue(cf_server: Any) -> None:
    with httpx.Client(base_url=cf_server.url) as anon:
        assert anon.get("/health").json() == {"status": "ok"}
        assert anon.get("/api/v1/health").json() == {"status": "ok"}
        providers = anon.get("/api/v1/payments/providers", params={"limit": 100}).json()["data"]
        countries = anon.get("/api/v1/countries/active").json()["data"]
    pairs = {(p["code"], p["country"]) for p in providers}
    assert {c for code, c in pairs if code == "free_money"} == {"SN"}
    assert {c for code, c in pairs if code == "mtn_money"} == {"CI", "BJ"}
    assert {c for code, c in pairs if code == "wave"} == {"SN", "CI", "ML", "BF"}
    assert {c for code, c in pairs if code == "moov_money"} == {"CI", "BJ", "TG", "BF", "ML"}
    assert set(providers[0]) == {
        "code",
        "name",
        "country",
        "minAmount",
        "maxAmount",
        "logoUrl",
        "active",
    }
    assert {c["code"] for c in countries} == {"SN", "CI", "ML", "BF", "TG", "BJ"}
    assert all(c["currency"] == "XOF" for c in countries)


def test_public_lists_are_paginated_as_documented(cf_server: Any) -> None:
    """``page`` and ``limit`` (default 20, at most 100), ``{data, meta}`` [S1]."""
    with httpx.Client(base_url=f"{cf_server.url}/api/v1") as anon:
        whole = anon.get("/payments/providers").json()
        assert whole["meta"] == {"total": 16, "page": 1, "limit": 20, "totalPages": 1}
        pages = [
            anon.get("/payments/providers", params={"page": n, "limit": 5}).json()
            for n in (1, 2, 3, 4, 5)
        ]
        assert [p["meta"]["page"] for p in pages] == [1, 2, 3, 4, 5]
        assert {p["meta"]["totalPages"] for p in pages} == {4}
        assert [len(p["data"]) for p in pages] == [5, 5, 5, 1, 0]
        assert [e for p in pages for e in p["data"]] == whole["data"]
        senegal = anon.get("/payments/providers", params={"country": "sn"}).json()
        assert senegal["meta"]["total"] == 3
        countries = anon.get("/countries/active", params={"limit": 4, "page": 2}).json()
        assert countries["meta"] == {"total": 6, "page": 2, "limit": 4, "totalPages": 2}
        assert [c["code"] for c in countries["data"]] == ["TG", "BJ"]
        for params, message in [
            ({"limit": 101}, "limit ne doit pas dépasser 100"),
            ({"page": 0}, "page doit être un entier positif"),
            ({"limit": "dix"}, "limit doit être un entier positif"),
        ]:
            refused = anon.get("/countries/active", params=params)
            assert refused.status_code == 400
            assert refused.json()["message"] == [message]


def test_auth_schemes_and_errors(cf_server: Any) -> None:
    url = f"{cf_server.url}/api/v1/payments/balance"
    missing = httpx.get(url)
    assert missing.status_code == 401 and missing.json() == UNAUTHENTICATED
    public_only = httpx.get(url, headers={"X-API-Key": "pk_test_momoflow"})
    assert public_only.status_code == 403
    assert public_only.json()["code"] == "FORBIDDEN"
    assert public_only.json()["error"] == "Forbidden"
    wrong = httpx.get(url, headers={"X-API-Key": "pk_test_momoflow:sk_test_wrong"})
    assert wrong.status_code == 401 and wrong.json() == UNAUTHENTICATED
    bearer = httpx.get(url, headers={"Authorization": f"Bearer {CF_KEY}"})
    assert bearer.status_code == 200
    assert bearer.json() == {
        "success": True,
        "data": {"balance": 100_000_000, "availableBalance": 100_000_000, "currency": "XOF"},
    }


def test_unknown_route_and_transaction_are_nestjs_404(cf: httpx.Client) -> None:
    assert cf.get("/nope").json() == {
        "statusCode": 404,
        "message": "Cannot GET /api/v1/nope",
        "error": "Not Found",
    }
    missing = cf.get("/payments/status/PONOTHING")
    assert missing.status_code == 404
    assert missing.json()["statusCode"] == 404 and missing.json()["error"] == "Not Found"


# -- quotes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "fees"),
    [(50_000, 750), (100, 2), (1_033, 15), (1_100, 17), (1_999_999, 30_000), (2_000_000, 30_000)],
)
def test_quote_fees_are_integer_half_up(cf: httpx.Client, amount: int, fees: int) -> None:
    body = quote(cf, amount)
    assert body["fees"] == fees and body["netAmount"] == amount - fees
    assert re.fullmatch(r"QT-[A-Z0-9]{12}", body["quoteId"])
    assert set(body) == {
        "quoteId",
        "amount",
        "fees",
        "netAmount",
        "currency",
        "method",
        "provider",
        "country",
        "expiresAt",
    }
    expires = datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00")).timestamp()
    assert 890 < expires - time.time() <= 900


def test_quote_validation_messages(cf: httpx.Client) -> None:
    bad = cf.post("/payouts/quote", json={"amount": 50.5, "currency": "EUR"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "Bad Request" and isinstance(bad.json()["message"], list)
    assert any("currency" in m for m in bad.json()["message"])
    low = cf.post(
        "/payouts/quote",
        json={"amount": 99, "country": "SN", "method": "mobile_money", "provider": "wave"},
    )
    assert low.json()["message"] == ["Le montant doit être supérieur à 100 XOF"]
    high = cf.post(
        "/payouts/quote",
        json={"amount": 5_000_001, "country": "SN", "method": "mobile_money", "provider": "wave"},
    )
    assert high.status_code == 400
    base = {"amount": 5000, "currency": "XOF", "method": "mobile_money"}
    unavailable = cf.post(
        "/payouts/quote", json={**base, "country": "CI", "provider": "free_money"}
    )
    assert unavailable.json() == {
        "statusCode": 400,
        "message": "Provider non disponible",
        "error": "Bad Request",
    }
    over_provider = cf.post(
        "/payouts/quote", json={**base, "amount": 3_000_000, "country": "SN", "provider": "wave"}
    )
    assert over_provider.json()["message"] == "Montant invalide"
    xaf = cf.post(
        "/payouts/quote", json={**base, "currency": "XAF", "country": "SN", "provider": "wave"}
    )
    assert xaf.status_code == 400


# -- payouts ------------------------------------------------------------------------------------


def test_payout_happy_path_status_webhooks_and_balance(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    reference = ref()
    created = payout(cf, reference=reference, metadata={"invoiceId": "INV-1"})
    assert created.status_code == 201
    body = created.json()
    assert re.fullmatch(r"PO[A-Z0-9]{14}", body["transactionId"])
    assert body["status"] == "pending" and body["externalReference"] == reference
    assert (body["amount"], body["fees"], body["netAmount"]) == (50_000, 750, 49_250)
    assert body["recipient"] == {
        "name": "Amadou Diallo",
        "firstName": "Amadou",
        "lastName": "Diallo",
        "phone": "+221771230001",
    }
    assert body["mobileWallet"] == {"provider": "wave"} and body["method"] == "mobile_money"
    assert balance(cf) == 100_000_000 - 50_000

    tx_id = body["transactionId"]
    done = wait_status(cf, tx_id, "completed")
    assert done["type"] == "payout" and done["mobileProvider"] == "wave"
    assert re.fullmatch(r"WAVE-PAY-\d+", done["providerReference"])
    assert done["completedAt"] and done["errorCode"] is None
    assert done["recipientPhone"] == "+221771230001" and done["metadata"] == {"invoiceId": "INV-1"}
    assert done["message"] == "Payout effectué avec succès"

    hooks = wait_until(webhook_receiver.received, lambda h: len(h) == 2)
    assert [h.json()["event"] for h in hooks] == ["payout.processing", "payout.success"]
    for hook in hooks:
        verify_caurisflux_signature(hook)
        assert hook.path == "/hooks/default"
        assert hook.headers["content-type"] == "application/json"
        assert hook.headers["x-webhook-event"] == hook.json()["event"]
        assert hook.headers["x-webhook-delivery-id"]
        assert b": " not in hook.body  # compact, as JSON.stringify
    data = hooks[1].json()["data"]
    assert data["providerTransactionId"] == done["providerReference"]
    assert (data["type"], data["status"], data["amount"], data["fees"]) == (
        "payout",
        "completed",
        50_000,
        750,
    )
    assert ledger(cf_control) == [
        {
            "transactionId": tx_id,
            "externalReference": reference,
            "kind": "payout",
            "amount": 50_000,
            "currency": "XOF",
            "status": "completed",
            "executions": 1,
            "recipientPhone": "+221771230001",
        }
    ]
    assert balance(cf) == 100_000_000 - 50_000


@pytest.mark.parametrize(
    ("suffix", "final", "code", "event"),
    [
        ("0000", "failed", "invalid_recipient", "payout.failed"),
        ("0002", "failed", "account_blocked", "payout.failed"),
        ("0004", "failed", "provider_error", "payout.failed"),
        ("0005", "cancelled", None, "payout.cancelled"),
        ("0007", "failed", "limit_exceeded", "payout.failed"),
        ("0008", "failed", "insufficient_balance", "payout.failed"),
    ],
)
def test_scripted_payout_failures_refund_the_balance(
    cf: httpx.Client,
    webhook_receiver: WebhookReceiver,
    suffix: str,
    final: str,
    code: str | None,
    event: str,
) -> None:
    tx_id = payout(cf, f"+22177000{suffix}").json()["transactionId"]
    assert balance(cf) == 100_000_000 - 50_000
    done = wait_status(cf, tx_id, final)
    assert done["errorCode"] == code and done["completedAt"] is None
    assert done["providerReference"] is None
    if code:
        assert done["errorMessage"]
    if suffix == "0000":
        assert "Wave" in done["errorMessage"]
    wait_until(lambda: event in events(webhook_receiver, tx_id))
    final_hook = [h for h in webhook_receiver.received() if h.json()["event"] == event][0]
    assert final_hook.json()["data"]["failureReason"] == code
    assert balance(cf) == 100_000_000


def test_stuck_and_slow_payouts(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    normal = payout(cf, "+221771230001").json()["transactionId"]
    stuck = payout(cf, "+221771230003").json()["transactionId"]
    slow = payout(cf, "+221771230006").json()["transactionId"]
    wait_status(cf, normal, "completed")
    assert status(cf, slow)["status"] == "processing"
    wait_status(cf, slow, "completed")  # 10 x settle_delay
    assert status(cf, stuck)["status"] == "processing"
    assert events(webhook_receiver, stuck) == ["payout.processing"]

    forced = cf_control.post(
        f"/transactions/{stuck}/settle", json={"status": "failed", "errorCode": "limit_exceeded"}
    )
    assert forced.status_code == 200 and forced.json()["status"] == "failed"
    assert status(cf, stuck)["errorCode"] == "limit_exceeded"
    wait_until(lambda: "payout.failed" in events(webhook_receiver, stuck))
    again = cf_control.post(f"/transactions/{stuck}/settle", json={"status": "completed"})
    assert again.status_code == 409


def test_quote_unknown_expired_and_single_use(cf: httpx.Client, cf_control: httpx.Client) -> None:
    expected = {
        "statusCode": 400,
        "message": "Quote invalide ou expirée",
        "error": "Bad Request",
        "code": "quote_expired",
    }
    assert payout(cf, quote_id="QT-UNKNOWN").json() == expected
    used = quote(cf)["quoteId"]
    assert payout(cf, quote_id=used).status_code == 201
    assert payout(cf, quote_id=used).json() == expected

    cf_control.post("/config", json={"quote_ttl": 0.05})
    short = quote(cf)
    expires = datetime.fromisoformat(short["expiresAt"].replace("Z", "+00:00")).timestamp()
    wait_until(time.time, lambda now: now > expires + 0.01)
    assert payout(cf, quote_id=short["quoteId"]).json() == expected
    assert len(ledger(cf_control)) == 1


def test_payout_without_quote(cf: httpx.Client) -> None:
    body: dict[str, Any] = {
        "amount": 20_000,
        "currency": "XOF",
        "country": "CI",
        "method": "mobile_money",
        "provider": "mtn_money",
        "externalReference": ref(),
        "recipient": {"phone": "+2250701020304", "firstName": "Awa", "lastName": "Kone"},
    }
    created = cf.post("/payouts/initiate", json=body)
    assert created.status_code == 201, created.text
    assert (
        created.json()["fees"] == 300 and created.json()["mobileWallet"]["provider"] == "mtn_money"
    )
    wrong_country = {
        **body,
        "externalReference": ref(),
        "recipient": {**body["recipient"], "phone": "+221771230001"},
    }
    rejected = cf.post("/payouts/initiate", json=wrong_country)
    assert rejected.status_code == 400 and rejected.json()["code"] == "invalid_phone"


def test_duplicate_reference_never_creates_a_second_transfer(
    cf: httpx.Client, cf_control: httpx.Client
) -> None:
    reference = ref()
    assert payout(cf, reference=reference, key="k-1").status_code == 201
    expected = {
        "statusCode": 409,
        "message": "Référence externe déjà utilisée",
        "error": "Conflict",
        "code": "duplicate_reference",
    }
    assert payout(cf, reference=reference, key="k-2").json() == expected
    assert payout(cf, reference=reference).json() == expected
    entry = cf_control.get(f"/ledger/{reference}").json()
    assert entry["executions"] == 1
    assert balance(cf) == 100_000_000 - 50_000
    assert cf_control.get("/ledger/UNKNOWN").status_code == 404


def test_idempotency_key_only_mode_lets_a_reused_reference_execute_again(
    cf: httpx.Client, cf_control: httpx.Client
) -> None:
    """With ``idempotency_key_only`` the key is the only protection: a new key (or none)
    on a used reference and quote executes a second transfer; the same key still
    replays."""
    changed = cf_control.post("/config", json={"idempotency_key_only": True})
    assert changed.status_code == 200 and changed.json()["idempotency_key_only"] is True
    reference = ref()
    quote_id = quote(cf)["quoteId"]
    first = payout(cf, reference=reference, key="k-1", quote_id=quote_id)
    replay = payout(cf, reference=reference, key="k-1", quote_id=quote_id)
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content
    assert cf_control.get(f"/ledger/{reference}").json()["executions"] == 1

    second = payout(cf, reference=reference, key="k-2", quote_id=quote_id)
    assert second.status_code == 201  # neither the reference nor the used quote stops it
    assert second.json()["transactionId"] != first.json()["transactionId"]
    assert payout(cf, reference=reference).status_code == 201
    assert cf_control.get(f"/ledger/{reference}").json()["executions"] == 3
    assert balance(cf) == 100_000_000 - 3 * 50_000

    assert cf_control.post("/config", json={"idempotency_key_only": None}).status_code == 400
    assert cf_control.post("/reset").status_code == 200
    assert cf_control.get("/config").json()["idempotency_key_only"] is False


def test_idempotent_replay_is_byte_identical(cf: httpx.Client, cf_control: httpx.Client) -> None:
    quote_id = quote(cf)["quoteId"]
    reference = ref()
    first = payout(cf, reference=reference, key="idem-1", quote_id=quote_id)
    second = payout(cf, reference=reference, key="idem-1", quote_id=quote_id)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert cf_control.get(f"/ledger/{reference}").json()["executions"] == 1
    assert balance(cf) == 100_000_000 - 50_000

    reuse = payout(cf, reference=ref(), key="idem-1", quote_id=quote_id)
    assert reuse.status_code == 409
    assert reuse.json() == {
        "statusCode": 409,
        "message": "Idempotency key reuse",
        "error": "Conflict",
        "code": "idempotency_key_reuse",
    }


def test_failed_requests_do_not_consume_the_idempotency_key(
    cf: httpx.Client, cf_control: httpx.Client
) -> None:
    cf_control.post("/config", json={"balance": 1_000})
    quote_id = quote(cf)["quoteId"]
    reference = ref()
    poor = payout(cf, reference=reference, key="idem-poor", quote_id=quote_id)
    assert poor.status_code == 422
    assert poor.json()["code"] == "insufficient_balance" and poor.json()["statusCode"] == 422
    cf_control.post("/config", json={"balance": 1_000_000})
    retried = payout(cf, reference=reference, key="idem-poor", quote_id=quote_id)
    assert retried.status_code == 201
    assert balance(cf) == 1_000_000 - 50_000


async def test_concurrent_requests_with_one_key_execute_once(
    cf_server: Any, cf: httpx.Client, cf_control: httpx.Client
) -> None:
    body = {
        "quoteId": quote(cf)["quoteId"],
        "externalReference": ref(),
        "recipient": {"phone": "+221771230001", "firstName": "A", "lastName": "B"},
    }
    headers = {"X-API-Key": CF_KEY, "X-Idempotency-Key": "idem-race"}
    async with httpx.AsyncClient(base_url=f"{cf_server.url}/api/v1", timeout=5) as client:
        responses = await asyncio.gather(
            *(client.post("/payouts/initiate", json=body, headers=headers) for _ in range(8))
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert [t["executions"] for t in ledger(cf_control)] == [1]


# -- payins -------------------------------------------------------------------------------------


def test_payin_direct_lifecycle(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    created = payin(cf, metadata={"orderId": "12345"}, customerName="Amadou Diallo")
    assert created.status_code == 201
    envelope = created.json()
    assert envelope["success"] is True
    data = envelope["data"]
    assert re.fullmatch(r"TX\d{9}", data["transactionId"])
    assert (data["status"], data["type"], data["country"]) == ("pending", "collect", "SN")
    assert data["paymentMethod"]["code"] == "wave" and data["qrCode"] is None
    assert data["deepLinks"]["wave"].startswith("wave://pay?token=")
    assert data["metadata"] == {"orderId": "12345"}
    created_at = datetime.fromisoformat(data["createdAt"].replace("Z", "+00:00"))
    expires_at = datetime.fromisoformat(data["expiresAt"].replace("Z", "+00:00"))
    assert round((expires_at - created_at).total_seconds()) == 60  # payment_ttl of the fixture

    tx_id = data["transactionId"]
    done = wait_status(cf, tx_id, "success")
    assert done["type"] == "collect" and done["customerPhone"] == "+221771234567"
    assert done["providerReference"] and done["completedAt"]
    wait_until(lambda: events(webhook_receiver, tx_id) == ["payment.processing", "payment.success"])
    assert balance(cf) == 100_000_000 + 10_000
    assert cf_control.get(f"/ledger/{data['externalReference']}").json()["kind"] == "payin"


@pytest.mark.parametrize(
    ("suffix", "final", "code"),
    [
        ("0002", "failed", "insufficient_funds"),
        ("0005", "cancelled", None),
        ("0004", "failed", "provider_error"),
        ("0007", "failed", "limit_exceeded"),
        ("0008", "failed", "insufficient_funds"),
    ],
)
def test_scripted_payin_outcomes(
    cf: httpx.Client, webhook_receiver: WebhookReceiver, suffix: str, final: str, code: str | None
) -> None:
    tx_id = payin(cf, f"+22177123{suffix}").json()["data"]["transactionId"]
    done = wait_status(cf, tx_id, final)
    assert done["errorCode"] == code
    wait_until(lambda: f"payment.{final}" in events(webhook_receiver, tx_id))
    assert balance(cf) == 100_000_000


def test_payin_expires_at_expires_at(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    cf_control.post("/config", json={"payment_ttl": 0.4})
    tx_id = payin(cf, "+221771230003").json()["data"]["transactionId"]
    assert status(cf, tx_id)["status"] == "pending"
    wait_status(cf, tx_id, "expired")
    wait_until(lambda: events(webhook_receiver, tx_id) == ["payment.expired"])


def test_payin_checkout_and_validation(cf: httpx.Client) -> None:
    checkout = cf.post(
        "/payments/initiate",
        json={
            "type": "checkout",
            "amount": 25_000,
            "externalReference": ref(),
            "customerName": "Fatou Sow",
            "returnUrl": "https://shop.example/merci",
        },
    )
    assert checkout.status_code == 201, checkout.text
    data = checkout.json()["data"]
    assert data["paymentMethod"] is None and data["currency"] == "XOF"
    assert httpx.get(data["redirectUrl"]).status_code == 200
    wait_status(cf, data["transactionId"], "success")

    missing = cf.post(
        "/payments/initiate", json={"type": "direct", "amount": 1000, "externalReference": ref()}
    )
    assert missing.status_code == 400
    assert len(missing.json()["message"]) == 3  # provider, country, customerPhone
    not_e164 = payin(cf, "771234567")
    assert not_e164.status_code == 400
    unavailable = payin(cf, provider="mtn_money")
    assert unavailable.json()["message"] == "Provider non disponible"


def test_forced_settle_and_late_reversal(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    tx_id = payin(cf, "+221771230000").json()["data"]["transactionId"]
    wait_status(cf, tx_id, "failed")
    refused = cf_control.post(f"/transactions/{tx_id}/settle", json={"status": "success"})
    assert refused.status_code == 409
    late = cf_control.post(
        f"/transactions/{tx_id}/settle", json={"status": "success", "late": True}
    )
    assert late.status_code == 200 and late.json()["status"] == "success"
    assert status(cf, tx_id)["errorCode"] is None
    wait_until(lambda: events(webhook_receiver, tx_id)[-1:] == ["payment.success"])
    assert balance(cf) == 100_000_000 + 10_000
    bad = cf_control.post(f"/transactions/{tx_id}/settle", json={"status": "completed"})
    assert bad.status_code == 400


# -- rate limiting ------------------------------------------------------------------------------


def test_rate_limit_headers_and_429(
    cf: httpx.Client, cf_control: httpx.Client, cf_server: Any
) -> None:
    cf_control.post("/config", json={"rate_limit_per_minute": 3})
    responses = [cf.get("/payments/balance") for _ in range(3)]
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["2", "1", "0"]
    assert {r.headers["x-ratelimit-limit"] for r in responses} == {"3"}
    reset = int(responses[0].headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 61
    limited = cf.get("/payments/status/ANY")
    assert limited.status_code == 429
    assert limited.json() == {
        "statusCode": 429,
        "message": "Trop de requêtes",
        "error": "Too Many Requests",
        "code": "RATE_LIMIT_EXCEEDED",
    }
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert httpx.get(f"{cf_server.url}/api/v1/countries/active").status_code == 200

    cf_control.post("/config", json={"rate_limit_per_minute": 0})
    unlimited = cf.get("/payments/balance")
    assert unlimited.status_code == 200 and "x-ratelimit-limit" not in unlimited.headers


# -- faults -------------------------------------------------------------------------------------


def test_error_fault_answers_without_executing(cf: httpx.Client, cf_control: httpx.Client) -> None:
    fault = cf_control.post(
        "/faults",
        json={"operation": "payouts.initiate", "kind": "error", "status": 503, "count": 2},
    )
    assert fault.status_code == 201 and fault.json()["id"]
    quote_id = quote(cf)["quoteId"]
    reference = ref()
    for _ in range(2):
        failed = payout(cf, reference=reference, key="idem-503", quote_id=quote_id)
        assert failed.status_code == 503
        assert failed.json() == {
            "statusCode": 503,
            "message": "Service Unavailable",
            "error": "Service Unavailable",
        }
    assert ledger(cf_control) == []
    assert payout(cf, reference=reference, key="idem-503", quote_id=quote_id).status_code == 201
    assert cf_control.get("/faults").json() == {"faults": []}
    unknown = cf_control.post("/faults", json={"operation": "nope", "kind": "error"})
    assert unknown.status_code == 400


#: Every error code of the CaurisFlux documents (providers.md 1.5) and its text.
DOCUMENTED_CODES = {
    "insufficient_funds": "Solde insuffisant",  # S1
    "invalid_phone": "Numéro de téléphone invalide",  # S1
    "invalid_amount": "Montant invalide",  # S1
    "provider_error": "Erreur du provider",  # S1, S3
    "limit_exceeded": "Limite dépassée",  # S1, S3
    "invalid_recipient": "Bénéficiaire invalide",  # S3
    "insufficient_balance": "Solde insuffisant (votre compte)",  # S3
    "account_blocked": "Compte bénéficiaire bloqué",  # S3
    "UNAUTHORIZED": "Non authentifié",  # S5
    "FORBIDDEN": "Non autorisé",  # S5
    "VALIDATION_ERROR": "Erreur de validation",  # S5
    "RATE_LIMIT_EXCEEDED": "Trop de requêtes",  # S5
    "DAILY_LIMIT_EXCEEDED": "Limite journalière dépassée",  # S5
    "REFUND_NOT_ALLOWED": "Remboursement non autorisé",  # S5
    "INVALID_REFUND_AMOUNT": "Montant de remboursement invalide",  # S5
}


@pytest.mark.parametrize("code", sorted(DOCUMENTED_CODES))
def test_every_documented_code_can_be_answered(
    cf: httpx.Client, cf_control: httpx.Client, code: str
) -> None:
    """An error fault naming only a code answers it with its documented text, without
    executing; a forced settlement puts it on a failed payout's status."""
    cf_control.post(
        "/faults",
        json={"operation": "payouts.initiate", "kind": "error", "status": 422, "code": code},
    )
    reference = ref()
    quote_id = quote(cf)["quoteId"]
    refused = payout(cf, reference=reference, key=f"idem-{code}", quote_id=quote_id)
    assert refused.status_code == 422
    assert refused.json() == {
        "statusCode": 422,
        "message": DOCUMENTED_CODES[code],
        "error": "Unprocessable Entity",
        "code": code,
    }
    assert ledger(cf_control) == []

    tx_id = payout(cf, "+221771230003", reference=reference, key=f"idem-{code}").json()[
        "transactionId"
    ]
    forced = cf_control.post(
        f"/transactions/{tx_id}/settle", json={"status": "failed", "errorCode": code}
    )
    assert forced.status_code == 200
    assert status(cf, tx_id)["errorCode"] == code
    assert status(cf, tx_id)["errorMessage"]


def test_delay_fault_and_wildcard(cf: httpx.Client, cf_control: httpx.Client) -> None:
    cf_control.post("/faults", json={"operation": "*", "kind": "delay", "seconds": 0.3})
    started = time.monotonic()
    assert cf.get("/payments/balance").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    cf.get("/payments/balance")
    assert time.monotonic() - started < 0.3


def test_timeout_after_execute_then_replay(
    cf: httpx.Client, cf_control: httpx.Client, cf_server: Any
) -> None:
    cf_control.post(
        "/faults",
        json={"operation": "payouts.initiate", "kind": "timeout_after_execute", "seconds": 1.0},
    )
    quote_id = quote(cf)["quoteId"]
    reference = ref()
    body = {
        "quoteId": quote_id,
        "externalReference": reference,
        "recipient": {"phone": "+221771230001", "firstName": "A", "lastName": "B"},
    }
    headers = {"X-Idempotency-Key": "idem-timeout"}
    with pytest.raises(httpx.ReadTimeout):
        cf.post("/payouts/initiate", json=body, headers=headers, timeout=0.3)
    entry = cf_control.get(f"/ledger/{reference}").json()
    assert entry["executions"] == 1  # the money moved although the client saw a timeout
    replay = cf.post("/payouts/initiate", json=body, headers=headers)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["transactionId"] == entry["transactionId"]
    assert cf_control.get(f"/ledger/{reference}").json()["executions"] == 1


def test_garbage_body_after_execution(cf: httpx.Client, cf_control: httpx.Client) -> None:
    cf_control.post("/faults", json={"operation": "payments.initiate", "kind": "garbage_body"})
    reference = ref()
    garbled = payin(cf, reference=reference)
    assert garbled.status_code == 200
    with pytest.raises(ValueError):
        garbled.json()
    assert cf_control.get(f"/ledger/{reference}").json()["executions"] == 1
    assert payin(cf, reference=reference).status_code == 409


# -- webhooks -----------------------------------------------------------------------------------


def test_webhook_retries_keep_body_and_delivery_id(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.respond(500, 502)
    payout(cf, "+221771230003")  # stays processing: its only webhook fails twice, then passes
    processing = wait_until(webhook_receiver.received, lambda h: len(h) == 3)
    assert len({h.body for h in processing}) == 1
    assert len({h.headers["x-webhook-delivery-id"] for h in processing}) == 1
    for hook in processing:
        verify_caurisflux_signature(hook)
    log = wait_until(
        lambda: [
            d
            for d in cf_control.get("/webhooks").json()["deliveries"]
            if d["event"] == "payout.processing" and d["delivered"]
        ]
    )
    assert log[0]["attempts"] == 3 and log[0]["lastStatus"] == 200
    assert log[0]["deliveryId"] == processing[0].headers["x-webhook-delivery-id"]


def test_webhook_given_up_after_schedule(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.respond(default=500)
    payout(cf)
    gave_up = wait_until(
        lambda: [d for d in cf_control.get("/webhooks").json()["deliveries"] if d["givenUp"]]
    )
    assert gave_up[0]["attempts"] == 4  # first try + the 3 delays of the fixture's schedule
    assert gave_up[0]["delivered"] is False and gave_up[0]["lastStatus"] == 500


def test_callback_url_overrides_default(
    cf: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    tx_id = payout(cf, callbackUrl=f"{webhook_receiver.url}/hooks/mine").json()["transactionId"]
    wait_until(lambda: len(webhook_receiver.received("/hooks/mine")) == 2)
    assert webhook_receiver.received("/hooks/default") == []
    assert status(cf, tx_id)["status"] == "completed"


def test_drop_duplicate_and_reorder_faults(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    cf_control.post("/faults", json={"kind": "drop_webhooks", "count": 1})
    dropped = payout(cf).json()["transactionId"]
    wait_until(lambda: events(webhook_receiver, dropped) == ["payout.success"])

    cf_control.post("/faults", json={"kind": "duplicate_webhooks", "count": 1})
    duplicated = payout(cf).json()["transactionId"]
    wait_until(lambda: len(events(webhook_receiver, duplicated)) == 3)
    copies = [
        h
        for h in webhook_receiver.received()
        if h.json()["data"]["transactionId"] == duplicated
        and h.json()["event"] == "payout.processing"
    ]
    assert len(copies) == 2 and copies[0].body == copies[1].body
    assert copies[0].headers["x-webhook-delivery-id"] == copies[1].headers["x-webhook-delivery-id"]

    cf_control.post("/faults", json={"kind": "reorder_webhooks", "count": 1})
    reordered = payout(cf).json()["transactionId"]
    wait_until(
        lambda: events(webhook_receiver, reordered) == ["payout.success", "payout.processing"]
    )
    deliveries = cf_control.get("/webhooks").json()["deliveries"]
    assert any(d["dropped"] for d in deliveries)


# -- control API and request log ------------------------------------------------------------


def test_request_log_redacts_credentials(cf: httpx.Client, cf_control: httpx.Client) -> None:
    payout(cf, key="idem-log")
    text = cf_control.get("/requests").text
    assert "sk_test_momoflow" not in text
    records = cf_control.get("/requests").json()["requests"]
    initiate = [r for r in records if r["operation"] == "payouts.initiate"][0]
    assert initiate["idempotencyKey"] == "idem-log" and initiate["statusCode"] == 201
    assert initiate["credential"] == "pk_test_***:***"
    assert "whsec" not in cf_control.get("/config").text


def test_reset_restores_state_and_config(cf: httpx.Client, cf_control: httpx.Client) -> None:
    cf_control.post("/config", json={"settle_delay": 5, "balance": 10})
    cf_control.post("/faults", json={"kind": "error", "operation": "payments.status"})
    assert cf_control.post("/config", json={"settle_delay": -1}).status_code == 400
    assert cf_control.post("/config", json={"nope": 1}).status_code == 400
    cf_control.post("/reset")
    config = cf_control.get("/config").json()
    assert config["settle_delay"] == 0.1 and config["current_balance"] == 100_000_000
    assert cf_control.get("/faults").json() == {"faults": []}
    assert cf_control.get("/requests").json() == {"requests": []}


async def test_control_api_refuses_remote_clients() -> None:
    app = create_app(CaurisFluxSandboxConfig())
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        refused = await client.get("/_sandbox/ledger")
    assert refused.status_code == 403 and refused.json()["statusCode"] == 403


def test_time_scale_compresses_simulated_delays(cf: httpx.Client, cf_control: httpx.Client) -> None:
    cf_control.post("/config", json={"settle_delay": 2.0, "time_scale": 0.05})
    tx_id = payout(cf).json()["transactionId"]
    wait_status(cf, tx_id, "completed", timeout=1.0)  # 2 s simulated = 0.1 s real
    data = payin(cf).json()["data"]
    created_at = datetime.fromisoformat(data["createdAt"].replace("Z", "+00:00"))
    expires_at = datetime.fromisoformat(data["expiresAt"].replace("Z", "+00:00"))
    assert round((expires_at - created_at).total_seconds(), 1) == 3.0  # 60 s x 0.05


def test_zero_settle_delay_keeps_each_transaction_webhooks_in_order(
    cf: httpx.Client, cf_control: httpx.Client, webhook_receiver: WebhookReceiver
) -> None:
    cf_control.post("/config", json={"settle_delay": 0})
    ids = [payout(cf).json()["transactionId"] for _ in range(5)]
    wait_until(webhook_receiver.received, lambda h: len(h) == 10)
    for tx_id in ids:
        assert events(webhook_receiver, tx_id) == ["payout.processing", "payout.success"]


def test_shutdown_is_prompt_with_hanging_requests_and_pending_work() -> None:
    server = ThreadedServer(create_app(CaurisFluxSandboxConfig(settle_delay=0.05))).start()
    try:
        with httpx.Client(base_url=f"{server.url}/api/v1", headers={"X-API-Key": CF_KEY}) as api:
            stuck = payout(api, "+221771230003")
            assert stuck.status_code == 201
            assert payin(api, "+221771230003").status_code == 201
            httpx.post(
                f"{server.url}/_sandbox/faults",
                json={"operation": "payments.status", "kind": "timeout_after_execute"},
            )
            with pytest.raises(httpx.ReadTimeout):
                api.get(f"/payments/status/{stuck.json()['transactionId']}", timeout=0.2)
    finally:
        started = time.monotonic()
        server.stop(timeout=5)
    assert time.monotonic() - started < 2.0
