"""Pure mapping of the CaurisFlux adapter: statuses, errors, envelopes, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from momoflow.models import (
    InitiatePayoutInput,
    Operator,
    PaymentStatus,
    ProviderName,
)
from momoflow.money import Country, Currency
from momoflow.providers import caurisflux as cf
from momoflow.providers import errors

NOW = 1_800_000_000.0
SECRET = "whsec_test"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("pending", PaymentStatus.PENDING),
        ("processing", PaymentStatus.PENDING),
        ("success", PaymentStatus.SUCCEEDED),
        ("completed", PaymentStatus.SUCCEEDED),
        ("COMPLETED", PaymentStatus.SUCCEEDED),
        ("failed", PaymentStatus.FAILED),
        ("cancelled", PaymentStatus.CANCELLED),
        ("expired", PaymentStatus.EXPIRED),
        ("on_hold", PaymentStatus.PENDING),
        ("", PaymentStatus.PENDING),
    ],
)
def test_status_words_map_conservatively(raw: str, expected: PaymentStatus) -> None:
    assert cf.map_status(raw) is expected


def test_success_envelope_and_bare_object_both_parse() -> None:
    bare = {"transactionId": "PO1", "status": "pending", "amount": 5000, "currency": "XOF"}
    wrapped = {"success": True, "data": bare}
    for payload in (bare, wrapped):
        tx = cf.parse_transaction_response(
            201, json.dumps(payload).encode(), operation="initiate_payout"
        )
        assert tx.provider_transaction_id == "PO1"
        assert tx.status is PaymentStatus.PENDING
        assert tx.amount == 5000


def test_unparseable_success_body_is_a_protocol_error_not_a_failure() -> None:
    with pytest.raises(errors.ProviderProtocolError):
        cf.parse_transaction_response(200, b"<html>oops</html>", operation="initiate_payout")
    with pytest.raises(errors.ProviderProtocolError):
        cf.parse_transaction_response(200, b'{"status": "pending"}', operation="payout_status")


def _error(
    status: int, body: object, headers: dict[str, str] | None = None, op: str = "initiate_payout"
) -> errors.ProviderError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return cf.classify_error(op, status, raw, headers or {}, now=NOW)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, {"statusCode": 500, "message": "boom"}, errors.ProviderUnavailable),
        (503, b"not json", errors.ProviderUnavailable),
        (401, {"statusCode": 401, "message": "Non authentifié"}, errors.ProviderAuthError),
        (403, {"statusCode": 403, "message": "FORBIDDEN"}, errors.ProviderAuthError),
        (
            422,
            {"statusCode": 422, "message": "Solde insuffisant", "code": "insufficient_balance"},
            errors.InsufficientBalance,
        ),
        (
            422,
            {"statusCode": 422, "message": "x", "code": "invalid_recipient"},
            errors.InvalidRecipient,
        ),
        (
            422,
            {"statusCode": 422, "message": "x", "code": "account_blocked"},
            errors.RecipientAccountBlocked,
        ),
        (
            422,
            {"statusCode": 422, "message": "x", "code": "DAILY_LIMIT_EXCEEDED"},
            errors.LimitExceeded,
        ),
        (
            400,
            {"statusCode": 400, "message": "Provider non disponible"},
            errors.OperatorUnavailable,
        ),
        (400, {"statusCode": 400, "message": ["Montant invalide"]}, errors.InvalidAmount),
        (
            400,
            {"statusCode": 400, "message": "Quote invalide ou expirée", "code": "quote_expired"},
            errors.QuoteExpired,
        ),
        (
            409,
            {
                "statusCode": 409,
                "message": "Idempotency key reuse",
                "code": "idempotency_key_reuse",
            },
            errors.IdempotencyConflict,
        ),
        (
            409,
            {"statusCode": 409, "message": "dup", "code": "duplicate_reference"},
            errors.DuplicateReference,
        ),
        (400, {"statusCode": 400, "message": "something else"}, errors.InvalidRequest),
    ],
)
def test_errors_are_classified_by_status_and_code(
    status: int, body: object, expected: type
) -> None:
    error = _error(status, body)
    assert type(error) is expected
    assert error.provider == "caurisflux"
    assert error.http_status == status


def test_rate_limit_honours_retry_after_then_reset_header() -> None:
    limited = _error(429, {"statusCode": 429, "message": "Trop"}, {"Retry-After": "7"})
    assert isinstance(limited, errors.ProviderRateLimited)
    assert limited.retry_after == 7
    by_reset = _error(
        429, {"statusCode": 429, "message": "Trop"}, {"X-RateLimit-Reset": str(int(NOW) + 12)}
    )
    assert isinstance(by_reset, errors.ProviderRateLimited)
    assert by_reset.retry_after == pytest.approx(12)


def test_conflicts_and_unknowns_are_not_declines() -> None:
    assert not isinstance(_error(409, {"code": "duplicate_reference"}), errors.ProviderRejected)
    assert not isinstance(_error(502, b""), errors.ProviderRejected)
    assert isinstance(
        _error(404, {"message": "nope"}, op="payout_status"), errors.ProviderUnavailable
    )


def _initiate(name: str = "Awa Diallo") -> InitiatePayoutInput:
    return InitiatePayoutInput(
        provider=ProviderName.CAURISFLUX,
        external_reference="payout-acme-INV-1",
        idempotency_key="k",
        quote_id="QT-1",
        amount=50_000,
        currency=Currency.XOF,
        country=Country.SN,
        operator=Operator.MTN_MOMO,
        recipient_phone="+221771234567",
        recipient_name=name,
        description="",
    )


def test_payout_request_carries_quote_reference_and_split_name() -> None:
    body = json.loads(
        cf.build_payout_request(_initiate("Awa Binta Diallo")).model_dump_json(
            by_alias=True, exclude_none=True
        )
    )
    assert body == {
        "quoteId": "QT-1",
        "externalReference": "payout-acme-INV-1",
        "recipient": {"phone": "+221771234567", "firstName": "Awa Binta", "lastName": "Diallo"},
        "description": "payout-acme-INV-1",
    }
    assert cf.split_name("Sonatel") == ("Sonatel", "Sonatel")


def _signed(body: bytes, ts: int, secret: str = SECRET, prefix: str = "sha256=") -> dict[str, str]:
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Webhook-Signature": prefix + sig,
        "X-Webhook-Timestamp": str(ts),
        "X-Webhook-Delivery-Id": "d-1",
    }


WEBHOOK = json.dumps(
    {
        "event": "payout.success",
        "data": {
            "transactionId": "PO1",
            "externalReference": "payout-acme-INV-1",
            "providerTransactionId": "WAVE-PAY-1",
            "status": "completed",
            "amount": 50000,
            "currency": "XOF",
            "fees": 750,
        },
    },
    separators=(",", ":"),
).encode()


def test_valid_webhook_verifies_and_normalises() -> None:
    headers = _signed(WEBHOOK, int(NOW))
    cf.verify_webhook_signature(headers, WEBHOOK, secret=SECRET, tolerance_s=300, now=NOW)
    event = cf.parse_webhook_event(headers, WEBHOOK)
    assert event.status is PaymentStatus.SUCCEEDED
    assert event.event_id == "d-1"
    assert event.external_reference == "payout-acme-INV-1"
    assert event.provider_reference == "WAVE-PAY-1"
    assert event.amount == 50000


def test_unprefixed_and_legacy_signatures_are_accepted() -> None:
    cf.verify_webhook_signature(
        _signed(WEBHOOK, int(NOW), prefix=""), WEBHOOK, secret=SECRET, tolerance_s=300, now=NOW
    )
    legacy = hmac.new(SECRET.encode(), WEBHOOK, hashlib.sha256).hexdigest()
    cf.verify_webhook_signature(
        {"X-Cauris-Signature": legacy}, WEBHOOK, secret=SECRET, tolerance_s=300, now=NOW
    )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        (_signed(WEBHOOK, int(NOW), secret="other"), "mismatch"),
        (_signed(WEBHOOK, int(NOW) - 301), "stale"),
        (_signed(WEBHOOK, int(NOW) + 301), "stale"),
        ({**_signed(WEBHOOK, int(NOW)), "X-Webhook-Timestamp": "soon"}, "bad_timestamp"),
    ],
)
def test_bad_webhooks_are_refused_with_a_reason(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(errors.WebhookVerificationError) as info:
        cf.verify_webhook_signature(headers, WEBHOOK, secret=SECRET, tolerance_s=300, now=NOW)
    assert info.value.reason == reason


def test_tampered_body_fails_verification() -> None:
    headers = _signed(WEBHOOK, int(NOW))
    tampered = WEBHOOK.replace(b"50000", b"90000")
    with pytest.raises(errors.WebhookVerificationError):
        cf.verify_webhook_signature(headers, tampered, secret=SECRET, tolerance_s=300, now=NOW)


def test_webhook_status_falls_back_to_event_name() -> None:
    body = json.dumps(
        {
            "event": "payout.failed",
            "data": {"transactionId": "PO1", "errorCode": "invalid_recipient"},
        }
    ).encode()
    event = cf.parse_webhook_event({}, body)
    assert event.status is PaymentStatus.FAILED
    assert event.failure_code == "invalid_recipient"
    assert event.event_id == hashlib.sha256(body).hexdigest()


def test_credentials_repr_hides_secrets() -> None:
    creds = cf.CaurisFluxCredentials(
        public_key="pk_test_x", secret_key="sk_test_secret", webhook_secret="whsec_s"
    )
    assert "sk_test_secret" not in repr(creds)
    assert "whsec_s" not in repr(creds)
