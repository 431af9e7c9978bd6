"""Pure mapping of the NovaSend adapter: statuses, amounts, requests, errors, webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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
