"""Pure mapping of the NovaSend adapter: statuses, amounts, requests, errors, webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from decimal import Decimal
from typing import Any

import httpx
import pytest

from momoflow.models import (
    InitiatePayinInput,
    InitiatePayoutInput,
    Operator,
    PayinMode,
    PaymentStatus,
    PayoutQuoteInput,
    ProviderName,
    RefundInput,
    StatusLookup,
)
from momoflow.money import Country, Currency
from momoflow.providers import errors
from momoflow.providers.base import PaymentProvider
from momoflow.providers.novasend import NovaSendClient, NovaSendCredentials
from momoflow.providers.novasend import mapping as ns
from momoflow.providers.novasend.wire import dump
from momoflow.settings import NovaSendSettings, Settings

NOW = 1_800_000_000.0
SECRET = "nswh_test_secret"
REF = "payout-acme-INV-1"
KEY = "5b1f2c1e-8f0a-5d7e-9a51-2c3d4e5f6a7b"


def _body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def _session(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "pr_9f3k2",
        "type": "payin",
        "reference": REF,
        "status": "processing",
        "confirmationRequired": True,
        "confirmationStatus": "none",
        "paymentUrl": "https://business.novasend.app/link/QGRD4D",
        "customer": {"name": "Awa Diallo", "phoneNumber": "+2250700000000"},
        "amount": 200,
        "fee": 7,
        "chargedAmount": 207,
        "currency": "XOF",
        "failure": None,
        "transaction": None,
        "createdAt": "2026-01-05T10:00:00Z",
    }
    payload.update(overrides)
    return payload


def _settled(status: str = "completed", **core: Any) -> dict[str, Any]:
    return {
        "reference": "tr_77ab",
        "status": status,
        "customerName": "Awa Diallo",
        "processedAt": "2026-01-05T10:01:30Z",
        "phoneNumber": "+2250700000000",
        "amount": "200.00",
        "fees": "7.00",
        "chargedAmount": "207.00",
        "currency": "XOF",
        **core,
    }


# --------------------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("status", "confirmation", "settlement", "expected"),
    [
        ("processing", "none", None, PaymentStatus.PENDING),
        ("processed", "accepted", None, PaymentStatus.PENDING),
        ("processed", None, None, PaymentStatus.PENDING),
        ("processed", "accepted", "pending", PaymentStatus.PENDING),
        ("processed", "accepted", "completed", PaymentStatus.SUCCEEDED),
        ("processed", "accepted", "COMPLETED", PaymentStatus.SUCCEEDED),
        ("processed", "accepted", "failed", PaymentStatus.FAILED),
        ("processed", "accepted", "settling", PaymentStatus.PENDING),
        ("processing", "declined", None, PaymentStatus.FAILED),
        ("processing", "expired", None, PaymentStatus.EXPIRED),
        ("expired", "none", None, PaymentStatus.EXPIRED),
        ("expired", "pending", None, PaymentStatus.EXPIRED),
        ("processed", "declined", "pending", PaymentStatus.PENDING),
        ("expired", "none", "completed", PaymentStatus.SUCCEEDED),
        ("success", None, None, PaymentStatus.PENDING),
        ("failed", None, None, PaymentStatus.PENDING),
        ("on_hold", "maybe", None, PaymentStatus.PENDING),
        (None, None, None, PaymentStatus.PENDING),
    ],
)
def test_status_layers_normalise_conservatively(
    status: str | None, confirmation: str | None, settlement: str | None, expected: PaymentStatus
) -> None:
    got = ns.map_status(
        status=status, confirmation_status=confirmation, settlement_status=settlement
    )
    assert got is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("processing", PaymentStatus.PENDING),
        ("pending", PaymentStatus.PENDING),
        ("completed", PaymentStatus.SUCCEEDED),
        ("failed", PaymentStatus.FAILED),
        ("reversing", PaymentStatus.PENDING),
    ],
)
def test_refund_statuses_use_the_refund_word(status: str, expected: PaymentStatus) -> None:
    got = ns.map_status(
        status=status, confirmation_status=None, settlement_status="completed", kind="refund"
    )
    assert got is expected


def test_settled_payin_reads_as_succeeded_with_informative_raw_status() -> None:
    body = _session(status="processed", confirmationStatus="accepted", transaction=_settled())
    tx = ns.parse_transaction_response(200, _body(body), operation="payin_status")
    assert tx.status is PaymentStatus.SUCCEEDED
    assert tx.raw_status == "processed/accepted/completed"
    assert tx.provider == ProviderName.NOVASEND
    assert tx.provider_transaction_id == "pr_9f3k2"
    assert tx.provider_reference == "tr_77ab"
    assert tx.external_reference == REF
    assert (tx.amount, tx.fees, tx.currency) == (200, 7, Currency.XOF)
    assert tx.updated_at is not None and tx.updated_at.year == 2026


def test_empty_transaction_object_means_not_confirmed_yet() -> None:
    body = _session(confirmationStatus="declined", transaction={})
    tx = ns.parse_transaction_response(200, _body(body), operation="payin_status")
    assert tx.status is PaymentStatus.FAILED
    assert tx.raw_status == "processing/declined/-"
    assert tx.provider_reference is None


def test_failure_object_fills_failure_fields() -> None:
    body = _session(
        status="processed",
        transaction=_settled("failed"),
        failure={"code": "client_not_enough_cash", "message": "Solde insuffisant"},
    )
    tx = ns.parse_transaction_response(200, _body(body), operation="payin_status")
    assert tx.status is PaymentStatus.FAILED
    assert tx.failure_code == "client_not_enough_cash"
    assert tx.failure_message == "Solde insuffisant"


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("value", "expected"),
    [("300.00", 300), ("300", 300), (300, 300), (Decimal("1500000.000"), 1_500_000), ("1e3", 1000)],
)
def test_amounts_parse_exactly(value: Decimal | int | str, expected: int) -> None:
    assert ns.parse_amount(value, Currency.XOF, operation="payin_status") == expected


@pytest.mark.parametrize("value", ["300.50", "0.01", "abc", "NaN", "Infinity", True])
def test_fractional_or_non_numeric_amounts_are_protocol_errors(value: Any) -> None:
    with pytest.raises(errors.ProviderProtocolError):
        ns.parse_amount(value, Currency.XAF, operation="payin_status")


def test_decimal_strings_inside_transaction_fill_missing_top_level_amounts() -> None:
    body = _session(status="processed", transaction=_settled(amount="300.00", fees="6.00"))
    del body["amount"], body["fee"], body["currency"]
    tx = ns.parse_transaction_response(200, _body(body), operation="payout_status")
    assert (tx.amount, tx.fees, tx.currency) == (300, 6, Currency.XOF)


def test_non_integral_franc_inside_transaction_is_rejected() -> None:
    body = _session(status="processed", transaction=_settled(chargedAmount="207.50"))
    with pytest.raises(errors.ProviderProtocolError):
        ns.parse_transaction_response(200, _body(body), operation="payin_status")


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>502</html>",
        b"[]",
        _body(_session(id=None)),
        _body(_session(currency="USD")),
        _body(_session(amount="two hundred")),
    ],
)
def test_unreadable_success_bodies_are_protocol_errors_not_failures(raw: bytes) -> None:
    with pytest.raises(errors.ProviderProtocolError):
        ns.parse_transaction_response(200, raw, operation="payout_status")


def test_balances_keep_known_currencies_only() -> None:
    raw = _body(
        [
            {"balance": "1500.00", "availableBalance": 1200, "reference": "w1", "currency": "XOF"},
            {"balance": "12.50", "availableBalance": "12.50", "reference": "w2", "currency": "USD"},
        ]
    )
    [xof] = ns.parse_balances_response(200, raw)
    assert (xof.currency, xof.balance, xof.available) == (Currency.XOF, 1500, 1200)
    with pytest.raises(errors.ProviderProtocolError):
        ns.parse_balances_response(200, _body({"balance": 1}))


# --------------------------------------------------------------------------- requests


def _payout(operator: Operator = Operator.WAVE) -> InitiatePayoutInput:
    return InitiatePayoutInput(
        provider=ProviderName.NOVASEND,
        external_reference=REF,
        idempotency_key=KEY,
        quote_id=None,
        amount=50_000,
        currency=Currency.XOF,
        country=Country.CI,
        operator=operator,
        recipient_phone="+2250700000000",
        recipient_name="Awa Diallo",
    )


def _payin(mode: PayinMode = PayinMode.DIRECT, **overrides: Any) -> InitiatePayinInput:
    fields: dict[str, Any] = {
        "provider": ProviderName.NOVASEND,
        "mode": mode,
        "external_reference": REF,
        "idempotency_key": KEY,
        "amount": 200,
        "currency": Currency.XOF,
        "country": Country.CI,
        "operator": Operator.WAVE,
        "customer_phone": "+2250700000000",
        "customer_name": "Awa Diallo",
        "return_url": "https://shop.example/ok",
        "cancel_url": "https://shop.example/ko",
    }
    fields.update(overrides)
    return InitiatePayinInput(**fields)


def test_direct_payout_body_names_reference_recipient_and_operator() -> None:
    assert dump(ns.build_payout_request(_payout())) == {
        "reference": REF,
        "customerName": "Awa Diallo",
        "payout": {
            "amount": 50_000,
            "msisdn": "+2250700000000",
            "provider": "WAVE",
            "country": "CI",
        },
    }


@pytest.mark.parametrize(
    ("operator", "code"),
    [
        (Operator.WAVE, "WAVE"),
        (Operator.ORANGE_MONEY, "ORANGE"),
        (Operator.MTN_MOMO, "MOMO"),
        (Operator.MOOV_MONEY, "MOOV"),
    ],
)
def test_operators_use_direct_api_codes(operator: Operator, code: str) -> None:
    assert ns.build_payout_request(_payout(operator)).payout.provider == code


def test_free_money_is_unsupported() -> None:
    with pytest.raises(errors.UnsupportedOperation):
        ns.build_payout_request(_payout(Operator.FREE_MONEY))
    with pytest.raises(errors.UnsupportedOperation):
        ns.build_payin_request(_payin(operator=Operator.FREE_MONEY))


def test_checkout_payin_is_a_session_with_redirect_urls() -> None:
    body = ns.build_payin_request(_payin(PayinMode.CHECKOUT, operator=None))
    assert dump(body) == {
        "reference": REF,
        "amount": 200,
        "msisdn": "+2250700000000",
        "country": "CI",
        "customerName": "Awa Diallo",
        "action": {
            "successUrl": "https://shop.example/ok",
            "failureUrl": "https://shop.example/ko",
        },
    }


def test_redirect_urls_fall_back_to_callback_url() -> None:
    request = _payin(
        PayinMode.CHECKOUT, return_url=None, cancel_url=None, callback_url="https://gw/cb"
    )
    action = ns.build_action(request)
    assert (action.success_url, action.failure_url) == ("https://gw/cb", "https://gw/cb")


def test_payin_without_any_redirect_url_is_refused_before_calling() -> None:
    with pytest.raises(errors.InvalidRequest, match="successUrl"):
        ns.build_payin_request(_payin(PayinMode.CHECKOUT, return_url=None, cancel_url=None))


def test_direct_payin_names_the_operator_and_omits_a_missing_otp() -> None:
    assert dump(ns.build_payin_request(_payin())) == {
        "reference": REF,
        "customerName": "Awa Diallo",
        "payin": {"amount": 200, "msisdn": "+2250700000000", "provider": "WAVE", "country": "CI"},
        "action": {
            "successUrl": "https://shop.example/ok",
            "failureUrl": "https://shop.example/ko",
        },
    }


def test_orange_direct_payin_carries_the_otp() -> None:
    body = dump(ns.build_payin_request(_payin(operator=Operator.ORANGE_MONEY, otp="123456")))
    assert body["payin"]["provider"] == "ORANGE"
    assert body["payin"]["otp"] == "123456"


def test_orange_direct_payin_without_otp_needs_one() -> None:
    with pytest.raises(errors.OtpRequired):
        ns.build_payin_request(_payin(operator=Operator.ORANGE_MONEY))


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"mode": PayinMode.QR}, errors.UnsupportedOperation),
        ({"operator": None}, errors.InvalidRequest),
        ({"customer_phone": None}, errors.InvalidRequest),
    ],
)
def test_payins_the_api_cannot_express_are_refused(
    overrides: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ns.build_payin_request(_payin(**overrides))


def test_refund_body_has_reason_and_our_reference_but_no_amount() -> None:
    request = RefundInput(
        provider=ProviderName.NOVASEND,
        payin_reference=REF,
        external_reference="refund-acme-INV-1",
        idempotency_key=KEY,
        reason="customer request",
    )
    assert dump(ns.build_refund_request(request)) == {
        "reason": "customer request",
        "externalReference": "refund-acme-INV-1",
    }
    answer = {
        "type": "refund",
        "reference": "rf_12",
        "originalReference": "tr_77ab",
        "amount": 200,
        "fee": 0,
        "currency": "XOF",
        "status": "processing",
        "reason": "customer request",
        "refundType": "full",
    }
    tx = ns.parse_refund_response(201, _body(answer), request=request)
    assert (tx.provider_transaction_id, tx.status, tx.raw_status) == (
        "rf_12",
        PaymentStatus.PENDING,
        "processing",
    )
    assert tx.external_reference == "refund-acme-INV-1"


# --------------------------------------------------------------------------- errors


def _error(
    status: int, body: object, op: str = "initiate_payout", headers: dict[str, str] | None = None
) -> errors.ProviderError:
    raw = body if isinstance(body, bytes) else _body(body)
    return ns.classify_error(op, status, raw, headers or {}, now=NOW)


def _code(code: str, status: int = 403) -> dict[str, Any]:
    return {"code": code, "message": "Message localisé", "statusCode": status}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, {"message": "Internal Server Error", "statusCode": 500}, errors.ProviderUnavailable),
        (502, b"<html>bad gateway</html>", errors.ProviderUnavailable),
        (408, b"", errors.ProviderUnavailable),
        (401, {"message": "Unauthorized", "statusCode": 401}, errors.ProviderAuthError),
        (401, b"", errors.ProviderAuthError),
        (403, _code("api_token_invalid"), errors.ProviderAuthError),
        (404, _code("api_token_not_found", 404), errors.ProviderAuthError),
        (403, _code("wallet_not_enough_cash"), errors.InsufficientBalance),
        (403, _code("client_not_enough_cash"), errors.InsufficientBalance),
        (403, _code("transaction_otp_required"), errors.OtpRequired),
        (403, _code("client_kyc_not_approved"), errors.InvalidRecipient),
        (404, _code("client_not_found", 404), errors.InvalidRecipient),
        (404, _code("wallet_not_found", 404), errors.InvalidRecipient),
        (404, _code("country_not_found", 404), errors.OperatorUnavailable),
        (404, _code("provider_not_found", 404), errors.OperatorUnavailable),
        (400, {"message": "Invalid amount", "statusCode": 400}, errors.InvalidAmount),
        (400, _code("invalid_amount", 400), errors.InvalidAmount),
        (403, _code("transaction_greater_than_zero"), errors.InvalidAmount),
        (409, _code("transaction_is_already_processed", 409), errors.DuplicateReference),
        (409, _code("transaction_already_refunded", 409), errors.DuplicateReference),
        (409, {"message": "Duplicate refund", "statusCode": 409}, errors.DuplicateReference),
        (403, _code("transaction_not_refundable"), errors.InvalidRequest),
        (403, _code("transaction_not_processed"), errors.InvalidRequest),
        (403, {"message": "Refund not allowed", "statusCode": 403}, errors.InvalidRequest),
        (400, _code("idempotency_key_invalid", 400), errors.InvalidRequest),
        (404, _code("transaction_does_not_exist", 404), errors.InvalidRequest),
        (403, _code("transaction_error"), errors.InvalidRequest),
        (403, _code("wallet_should_be_different"), errors.InvalidRequest),
        (418, {"message": "teapot"}, errors.InvalidRequest),
    ],
)
def test_errors_are_classified_by_code_before_status(
    status: int, body: object, expected: type
) -> None:
    error = _error(status, body)
    assert type(error) is expected
    assert error.provider == "novasend"
    assert error.http_status == status


def test_code_decides_even_when_the_status_disagrees() -> None:
    assert type(_error(400, _code("wallet_not_enough_cash", 400))) is errors.InsufficientBalance
    assert type(_error(422, _code("country_not_found", 422))) is errors.OperatorUnavailable
    assert _error(403, _code("client_not_found")).provider_code == "client_not_found"


def test_missing_transaction_on_a_status_read_is_not_yet_visible() -> None:
    for op in ("payout_status", "payin_status"):
        error = _error(404, _code("transaction_does_not_exist", 404), op=op)
        assert type(error) is errors.ProviderUnavailable
    assert type(_error(404, {"message": "Payment not found"}, op="payin_status")) is (
        errors.ProviderUnavailable
    )
    refund = _error(404, _code("transaction_does_not_exist", 404), op="refund_payin")
    assert type(refund) is errors.InvalidRequest


def test_rate_limit_honours_retry_after() -> None:
    limited = _error(429, _code("too_many_requests", 429), headers={"Retry-After": "7"})
    assert isinstance(limited, errors.ProviderRateLimited)
    assert limited.retry_after == 7
    bare = _error(429, b"")
    assert isinstance(bare, errors.ProviderRateLimited)
    assert bare.retry_after is None


def test_conflicts_and_outages_are_not_declines() -> None:
    assert not isinstance(
        _error(409, _code("transaction_is_already_processed", 409)), errors.ProviderRejected
    )
    assert not isinstance(_error(503, b""), errors.ProviderRejected)


# --------------------------------------------------------------------------- webhooks


def _sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Signature-Value": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


WEBHOOK = {
    "id": "tr_77ab",
    "eventId": "9a3e7f2c-0000-4000-8000-000000000001",
    "fees": 7,
    "type": "payin",
    "amount": 200,
    "status": "processed",
    "confirmationStatus": "accepted",
    "confirmationRequired": True,
    "failure": None,
    "currency": "XOF",
    "customer": {"name": "Awa Diallo", "phoneNumber": "+2250700000000"},
    "createdAt": "2026-01-05T10:00:00Z",
    "reference": REF,
    "paymentUrl": "https://pay.wave.com/c/cos-1",
    "chargedAmount": 207,
    "transaction": _settled(),
}
COMPACT = json.dumps(WEBHOOK, separators=(",", ":"), ensure_ascii=False).encode()


def _client(handler: Any = None, language: str = "en") -> NovaSendClient:
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(500)))
    return NovaSendClient(
        httpx.AsyncClient(transport=transport),
        base_url="https://business.novasend.test/",
        credentials=NovaSendCredentials("nsk_key", "nsc_secret_client", SECRET),
        language=language,
        clock=lambda: NOW,
    )


def test_webhook_signed_over_raw_bytes_verifies_and_normalises() -> None:
    event = _client().parse_webhook(_sign(COMPACT), COMPACT)
    assert event.verified is True
    assert event.status is PaymentStatus.SUCCEEDED
    assert event.raw_status == "processed/accepted/completed"
    assert event.event_id == WEBHOOK["eventId"]
    assert event.external_reference == REF
    assert event.provider_transaction_id == "tr_77ab"
    assert event.provider_reference == "tr_77ab"
    assert (event.amount, event.fees, event.currency) == (200, 7, Currency.XOF)
    assert event.event_type == "payin.processed"


def test_webhook_signed_over_compact_reserialisation_verifies() -> None:
    pretty = json.dumps(WEBHOOK, indent=2).encode()
    event = _client().parse_webhook(
        {"x-signature-value": _sign(COMPACT)["X-Signature-Value"]}, pretty
    )
    assert event.status is PaymentStatus.SUCCEEDED
    assert event.event_id == WEBHOOK["eventId"]


def test_webhook_status_uses_the_same_rules_as_a_status_read() -> None:
    for payload in (
        {**WEBHOOK, "transaction": None},
        {**WEBHOOK, "status": "success", "transaction": None},
        {**WEBHOOK, "confirmationStatus": "declined", "transaction": {}},
        {**WEBHOOK, "transaction": _settled("failed")},
    ):
        raw = _body(payload)
        event = ns.parse_webhook_event(raw)
        read = ns.parse_transaction_response(200, raw, operation="payin_status")
        assert (event.status, event.raw_status) == (read.status, read.raw_status)
    assert ns.parse_webhook_event(_body({**WEBHOOK, "transaction": None})).status is (
        PaymentStatus.PENDING
    )


def test_webhook_without_event_id_is_keyed_by_body_hash() -> None:
    raw = _body({k: v for k, v in WEBHOOK.items() if k != "eventId"})
    assert ns.parse_webhook_event(raw).event_id == hashlib.sha256(raw).hexdigest()


def test_refund_webhook_is_routed_by_our_refund_reference() -> None:
    raw = _body(
        {
            "type": "refund",
            "reference": "rf_12",
            "externalReference": "refund-acme-INV-1",
            "status": "completed",
            "amount": 200,
            "currency": "XOF",
        }
    )
    event = ns.parse_webhook_event(raw)
    assert event.status is PaymentStatus.SUCCEEDED
    assert event.external_reference == "refund-acme-INV-1"
    assert event.provider_transaction_id == "rf_12"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({}, COMPACT, "missing"),
        ({"X-Signature-Value": "  "}, COMPACT, "missing"),
        (_sign(COMPACT, secret="another-secret"), COMPACT, "mismatch"),
        ({"X-Signature-Value": "zz-not-hex-é"}, COMPACT, "mismatch"),
        (_sign(COMPACT), COMPACT.replace(b'"amount":200', b'"amount":900'), "mismatch"),
        (_sign(b"not json"), b"not json", "bad_body"),
        (_sign(b"[1,2]"), b"[1,2]", "bad_body"),
        (_sign(b'{"type":"payin"}'), b'{"type":"payin"}', "bad_body"),
        (_sign(b'{"id":"tr_1","amount":"1.5"}'), b'{"id":"tr_1","amount":"1.5"}', "bad_body"),
    ],
)
def test_bad_webhooks_are_refused_with_a_reason(
    headers: dict[str, str], body: bytes, reason: str
) -> None:
    with pytest.raises(errors.WebhookVerificationError) as info:
        _client().parse_webhook(headers, body)
    assert info.value.reason == reason


# --------------------------------------------------------------------------- client edges


def test_credentials_repr_hides_secrets_and_build_basic_auth() -> None:
    creds = NovaSendCredentials("nsk_key", "nsc_secret_client", "nswh_secret_hook")
    assert "nsc_secret_client" not in repr(creds)
    assert "nswh_secret_hook" not in repr(creds)
    assert (
        creds.basic_auth_header()
        == "Basic " + base64.b64encode(b"nsk_key:nsc_secret_client").decode()
    )


def test_client_is_a_payment_provider() -> None:
    client: PaymentProvider = _client()
    assert isinstance(client, PaymentProvider)
    assert client.name is ProviderName.NOVASEND


async def test_duplicate_reference_is_read_back_by_reference_and_returned_when_it_matches() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(409, json=_code("transaction_is_already_processed", 409))
        return httpx.Response(
            200,
            json=_session(
                type="payout",
                amount=50_000,
                status="processed",
                confirmationStatus="accepted",
                transaction=_settled("pending", amount="50000.00", phoneNumber="2250700000000"),
            ),
        )

    tx = await _client(handler).initiate_payout(_payout())
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/v1/direct/payout"),
        ("GET", f"/v1/direct/payout/{REF}"),
    ]
    post = seen[0]
    assert post.headers["X-Idempotency-Key"] == KEY
    assert post.headers["Authorization"].startswith("Basic ")
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Accept-Language"] == "en"
    assert tx.provider_transaction_id == "pr_9f3k2"
    assert tx.status is PaymentStatus.PENDING


async def test_duplicate_reference_with_another_amount_is_a_conflict() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(409, json=_code("transaction_is_already_processed", 409))
        return httpx.Response(200, json=_session(type="payout", amount=49_000))

    with pytest.raises(errors.DuplicateReference) as info:
        await _client(handler).initiate_payout(_payout())
    assert info.value.provider_code == "transaction_is_already_processed"


async def test_orange_payin_without_otp_makes_no_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with pytest.raises(errors.OtpRequired):
        await _client(handler).initiate_payin(_payin(operator=Operator.ORANGE_MONEY))


async def test_status_is_read_by_our_reference() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        assert "X-Idempotency-Key" not in request.headers
        assert request.headers["Accept-Language"] == "fr"
        return httpx.Response(200, json=_session())

    lookup = StatusLookup(
        provider=ProviderName.NOVASEND, provider_transaction_id=None, external_reference=REF
    )
    client = _client(handler, language="fr")
    await client.payin_status(lookup)
    await client.payout_status(lookup)
    assert paths == [f"/v1/payin/{REF}", f"/v1/direct/payout/{REF}"]


async def test_quote_is_unsupported() -> None:
    quote = PayoutQuoteInput(
        provider=ProviderName.NOVASEND,
        amount=1000,
        currency=Currency.XOF,
        country=Country.CI,
        operator=Operator.WAVE,
    )
    with pytest.raises(errors.UnsupportedOperation):
        await _client().quote_payout(quote)


async def test_availability_reports_a_down_provider_without_raising() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = await _client(refuse).availability()
    assert (down.available, down.detail) == (False, "no answer (ConnectError)")
    failing = await _client(lambda request: httpx.Response(503)).availability()
    assert failing.available is False
    up = await _client(lambda request: httpx.Response(200)).availability()
    assert up.available is True


# --------------------------------------------------------------------------- both payin versions
# providers.md 2.3 and 2.11.1: the older payin page (seed 004) and the newer one (N4).

OLDER_ID = "tr_fhchi842jyimwiugjgszcxvb8n"


def _older(**overrides: Any) -> dict[str, Any]:
    """An answer of the older payin page: no id, NovaSend's id in reference, ours in
    customerReference, the payer at the top level."""
    payload: dict[str, Any] = {
        "type": "payin",
        "fee": 7,
        "reference": OLDER_ID,
        "phoneNumber": "+2250700000000",
        "amount": 200,
        "chargedAmount": 207,
        "status": "processing",
        "currency": "XOF",
        "customerReference": REF,
        "confirmationRequired": True,
        "confirmationStatus": "none",
        "paymentUrl": "https://link.novasend.app/link/QGRD4D",
        "createdAt": "2026-01-05T10:00:00Z",
    }
    payload.update(overrides)
    return payload


def _lookup(provider_id: str | None, ours: str = REF) -> StatusLookup:
    return StatusLookup(
        provider=ProviderName.NOVASEND, provider_transaction_id=provider_id, external_reference=ours
    )


def test_session_carries_the_fields_of_both_versions_when_an_account_is_configured() -> None:
    request = _payin(PayinMode.CHECKOUT, operator=None)
    body = dump(ns.build_payin_request(request, account_id="merchant_9923lkdz"))
    assert body == {
        "reference": REF,
        "accountId": "merchant_9923lkdz",
        "amount": 200,
        "msisdn": "+2250700000000",
        "customerName": "Awa Diallo",
        "country": "CI",
        "action": {
            "successUrl": "https://shop.example/ok",
            "failureUrl": "https://shop.example/ko",
        },
    }
    assert "accountId" not in dump(ns.build_payin_request(request))
    nameless = dump(ns.build_payin_request(_payin(PayinMode.CHECKOUT, customer_name=None)))
    assert "customerName" not in nameless  # the gateway refuses it first (customer.name)
    direct = dump(ns.build_payin_request(_payin(), account_id="merchant_9923lkdz"))
    assert "accountId" not in direct  # one documented version of the direct payin [N5]


def test_older_create_answer_keeps_both_references() -> None:
    created = ns.to_payin_created(ns.parse_transaction_wire(201, _body(_older()), operation="x"))
    tx = created.transaction
    assert (tx.provider_transaction_id, tx.external_reference) == (OLDER_ID, REF)
    assert (tx.status, tx.raw_status) == (PaymentStatus.PENDING, "processing/none/-")
    assert (tx.amount, tx.fees, tx.currency) == (200, 7, Currency.XOF)
    assert tx.provider_reference is None
    assert created.payment_url == "https://link.novasend.app/link/QGRD4D"
    assert created.confirmation_required is True


def test_newer_create_answer_is_read_as_before() -> None:
    tx = ns.to_payin_created(ns.parse_transaction_wire(201, _body(_session()), operation="x"))
    assert (tx.transaction.provider_transaction_id, tx.transaction.external_reference) == (
        "pr_9f3k2",
        REF,
    )


@pytest.mark.parametrize("shape", [_older, _session], ids=["older", "newer"])
def test_processed_amount_is_the_core_transactions_exactly(shape: Any) -> None:
    body = shape(
        amount=300,
        fee=6,
        chargedAmount=306,
        status="processed",
        transaction=_settled(amount="153.00", fees="0.00", chargedAmount="153.00"),
    )
    tx = ns.parse_transaction_response(200, _body(body), operation="payin_status")
    assert tx.status is PaymentStatus.SUCCEEDED
    assert (tx.amount, tx.fees, tx.currency) == (153, 0, Currency.XOF)
    assert tx.provider_reference == "tr_77ab"


@pytest.mark.parametrize("shape", [_older, _session], ids=["older", "newer"])
@pytest.mark.parametrize("amount", ["153.50", "153.001", "-0.5"])
def test_fraction_of_a_franc_processed_is_a_protocol_error_never_rounded(
    shape: Any, amount: str
) -> None:
    body = shape(status="processed", transaction=_settled(amount=amount))
    with pytest.raises(errors.ProviderProtocolError, match="whole number"):
        ns.parse_transaction_response(200, _body(body), operation="payin_status")
    with pytest.raises(errors.WebhookVerificationError):
        ns.parse_webhook_event(_body(body))


def test_older_answer_without_its_reference_is_a_protocol_error() -> None:
    body = _older(transaction=_settled())
    del body["reference"]
    with pytest.raises(errors.ProviderProtocolError, match="neither id nor reference"):
        ns.parse_transaction_response(200, _body(body), operation="payin_status")


def test_older_webhook_is_routed_by_our_reference_with_novasends_id() -> None:
    raw = _body({**_older(status="processed", transaction=_settled()), "eventId": "e-1"})
    event = ns.parse_webhook_event(raw)
    assert (event.external_reference, event.provider_transaction_id) == (REF, OLDER_ID)
    assert (event.status, event.amount, event.provider_reference) == (
        PaymentStatus.SUCCEEDED,
        200,
        "tr_77ab",
    )


def test_older_top_level_phone_number_matches_a_read_back() -> None:
    wire = ns.parse_transaction_wire(200, _body(_older()), operation="initiate_payin")
    assert ns.matches_request(
        wire, kind="payin", amount=200, msisdn="+2250700000000", operation="initiate_payin"
    )


@pytest.mark.parametrize(
    ("provider_id", "keys"),
    [
        (None, (REF,)),
        (REF, (REF,)),
        ("pr_9f3k2", (REF, "pr_9f3k2")),
        (OLDER_ID, (OLDER_ID, REF)),
        ("mtr_fhscgaywizujwjyymlge1hncaq", ("mtr_fhscgaywizujwjyymlge1hncaq", REF)),
    ],
)
def test_status_is_read_first_by_the_id_the_create_answer_designates(
    provider_id: str | None, keys: tuple[str, ...]
) -> None:
    assert ns.payin_status_keys(_lookup(provider_id)) == keys


def test_a_status_answer_about_another_transaction_is_refused() -> None:
    ours = ns.parse_transaction_response(200, _body(_older()), operation="payin_status")
    ns.ensure_about(ours, _lookup(OLDER_ID), operation="payin_status")
    ns.ensure_about(ours, _lookup(None), operation="payin_status")
    with pytest.raises(errors.ProviderProtocolError, match="not payin-acme-OTHER"):
        ns.ensure_about(ours, _lookup(OLDER_ID, "payin-acme-OTHER"), operation="payin_status")
    anonymous = ours.model_copy(update={"external_reference": None})
    ns.ensure_about(anonymous, _lookup(OLDER_ID), operation="payin_status")
    with pytest.raises(errors.ProviderProtocolError):
        ns.ensure_about(anonymous, _lookup(None), operation="payin_status")


def _routes(answers: dict[str, httpx.Response]) -> tuple[list[str], Any]:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return answers.get(request.url.path) or httpx.Response(
            404, json=_code("transaction_does_not_exist", 404)
        )

    return paths, handler


async def test_older_payin_is_read_by_novasends_id() -> None:
    settled = _older(status="processed", transaction=_settled())
    paths, handler = _routes({f"/v1/payin/{OLDER_ID}": httpx.Response(200, json=settled)})
    tx = await _client(handler).payin_status(_lookup(OLDER_ID))
    assert paths == [f"/v1/payin/{OLDER_ID}"]
    assert (tx.status, tx.provider_transaction_id, tx.external_reference) == (
        PaymentStatus.SUCCEEDED,
        OLDER_ID,
        REF,
    )


async def test_status_falls_back_to_the_other_reference_when_not_found() -> None:
    paths, handler = _routes({f"/v1/payin/{REF}": httpx.Response(200, json=_session())})
    tx = await _client(handler).payin_status(_lookup(OLDER_ID))
    assert paths == [f"/v1/payin/{OLDER_ID}", f"/v1/payin/{REF}"]
    assert tx.provider_transaction_id == "pr_9f3k2"


async def test_not_found_anywhere_keeps_the_payin_unknown() -> None:
    paths, handler = _routes({})
    client = _client(handler)
    with pytest.raises(errors.ProviderUnavailable, match="not proof that nothing was created"):
        await client.payin_status(_lookup(None))
    assert paths == [f"/v1/payin/{REF}"]
    with pytest.raises(errors.ProviderUnavailable) as info:
        await client.payin_status(_lookup("pr_9f3k2"))
    assert paths[1:] == [f"/v1/payin/{REF}", "/v1/payin/pr_9f3k2"]
    assert not isinstance(info.value, errors.ProviderRejected)
    assert (info.value.http_status, info.value.provider_code) == (
        404,
        "transaction_does_not_exist",
    )


async def test_other_errors_are_not_retried_under_the_other_reference() -> None:
    paths, handler = _routes({f"/v1/payin/{OLDER_ID}": httpx.Response(503)})
    with pytest.raises(errors.ProviderUnavailable) as info:
        await _client(handler).payin_status(_lookup(OLDER_ID))
    assert info.value.http_status == 503 and paths == [f"/v1/payin/{OLDER_ID}"]


async def test_a_read_that_finds_another_payin_is_a_protocol_error() -> None:
    other = _older(customerReference="payin-acme-SOMEONE-ELSE")
    _, handler = _routes({f"/v1/payin/{OLDER_ID}": httpx.Response(200, json=other)})
    with pytest.raises(errors.ProviderProtocolError):
        await _client(handler).payin_status(_lookup(OLDER_ID))


def _account_client(handler: Any, account_id: str | None) -> NovaSendClient:
    return NovaSendClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        base_url="https://business.novasend.test",
        credentials=NovaSendCredentials("nsk_key", "nsc_secret_client", SECRET),
        account_id=account_id,
        clock=lambda: NOW,
    )


async def test_checkout_payin_sends_the_account_and_reads_an_older_answer() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(201, json=_older())

    created = await _account_client(handler, "merchant_9923lkdz").initiate_payin(
        _payin(PayinMode.CHECKOUT, operator=None)
    )
    assert sent[0]["accountId"] == "merchant_9923lkdz"
    assert sent[0]["customerName"] == "Awa Diallo" and sent[0]["action"]
    assert created.transaction.provider_transaction_id == OLDER_ID
    assert created.transaction.external_reference == REF


async def test_a_refused_session_without_account_says_which_setting_is_missing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=_code("validation_error", 400))

    request = _payin(PayinMode.CHECKOUT, operator=None)
    with pytest.raises(errors.InvalidRequest, match="MOMOFLOW_NOVASEND__ACCOUNT_ID"):
        await _account_client(handler, None).initiate_payin(request)
    with pytest.raises(errors.InvalidRequest) as info:
        await _account_client(handler, "merchant_9923lkdz").initiate_payin(request)
    assert "ACCOUNT_ID" not in info.value.message


def test_account_id_setting_is_read_from_the_environment_and_blank_means_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("MOMOFLOW_")]:
        monkeypatch.delenv(name)
    assert Settings(_env_file=None).novasend.account_id is None
    monkeypatch.setenv("MOMOFLOW_NOVASEND__ACCOUNT_ID", " merchant_9923lkdz ")
    assert Settings(_env_file=None).novasend.account_id == "merchant_9923lkdz"
    monkeypatch.setenv("MOMOFLOW_NOVASEND__ACCOUNT_ID", "")  # docker-compose's "${VAR:-}"
    assert Settings(_env_file=None).novasend.account_id is None
    assert NovaSendSettings(account_id="  ").account_id is None
