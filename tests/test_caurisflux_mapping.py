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


#: Every error code the CaurisFlux documents name (providers.md 1.5), with its source and
#: what momoflow makes of it on a payout create. A code added here without a mapping in
#: ``DOCUMENTED_ERROR_CODES`` fails below, and so does a mapping no document names.
DOCUMENTED_CODES: list[tuple[str, str, type[errors.ProviderError]]] = [
    ("insufficient_funds", "S1", errors.InsufficientBalance),
    ("invalid_phone", "S1", errors.InvalidRecipient),
    ("invalid_amount", "S1", errors.InvalidAmount),
    ("provider_error", "S1, S3", errors.UpstreamError),
    ("limit_exceeded", "S1, S3", errors.LimitExceeded),
    ("invalid_recipient", "S3", errors.InvalidRecipient),
    ("insufficient_balance", "S3", errors.InsufficientBalance),
    ("account_blocked", "S3", errors.RecipientAccountBlocked),
    ("UNAUTHORIZED", "S5", errors.ProviderAuthError),
    ("FORBIDDEN", "S5", errors.ProviderAuthError),
    ("VALIDATION_ERROR", "S5", errors.InvalidRequest),
    ("RATE_LIMIT_EXCEEDED", "S5", errors.ProviderRateLimited),
    ("DAILY_LIMIT_EXCEEDED", "S5", errors.LimitExceeded),
    ("REFUND_NOT_ALLOWED", "S5", errors.InvalidRequest),
    ("INVALID_REFUND_AMOUNT", "S5", errors.InvalidAmount),
]


def test_the_documented_codes_are_exactly_the_mapped_ones() -> None:
    assert {code.lower() for code, _, _ in DOCUMENTED_CODES} == set(cf.DOCUMENTED_ERROR_CODES)


@pytest.mark.parametrize(
    ("code", "source", "expected"), DOCUMENTED_CODES, ids=[c for c, _, _ in DOCUMENTED_CODES]
)
def test_every_documented_code_has_its_own_error(
    code: str, source: str, expected: type[errors.ProviderError]
) -> None:
    assert cf.error_type_for_code(code, "initiate_payout") is expected, source
    assert cf.error_type_for_code(code.swapcase(), "initiate_payout") is expected
    status = {"ProviderAuthError": 403, "ProviderRateLimited": 429}.get(expected.__name__, 422)
    error = _error(status, {"statusCode": status, "message": "texte", "code": code})
    assert type(error) is expected
    assert error.provider_code == code
    # The same code on a 400 (class-validator style) means the same.
    if status == 422:
        assert type(_error(400, {"statusCode": 400, "message": "x", "code": code})) is expected


@pytest.mark.parametrize("status", [400, 404, 422, 500, 502, 503])
@pytest.mark.parametrize("op", ["initiate_payout", "quote_payout", "initiate_payin"])
def test_provider_error_is_retried_never_a_decline(status: int, op: str) -> None:
    """``provider_error`` does not prove nothing was created (S3 shows it on an existing
    payout): whatever the status it is retried with the same key, never ``failed``."""
    error = _error(status, {"message": "Erreur du fournisseur", "code": "provider_error"}, op=op)
    assert type(error) is errors.UpstreamError
    assert isinstance(error, errors.ProviderUnavailable)
    assert not isinstance(error, errors.ProviderRejected | errors.ProviderConflict)


def test_insufficient_funds_is_ours_on_a_payout_and_the_customers_on_a_payin() -> None:
    body = {"statusCode": 422, "message": "Solde insuffisant", "code": "insufficient_funds"}
    assert type(_error(422, body)) is errors.InsufficientBalance
    assert type(_error(422, body, op="initiate_payin")) is errors.InsufficientFunds


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        # A 5xx is an unknown outcome whatever code it carries.
        (500, "insufficient_balance", errors.ProviderUnavailable),
        (503, "invalid_recipient", errors.ProviderUnavailable),
        # A 409 is a conflict whatever code it carries: money may have moved.
        (409, "provider_error", errors.IdempotencyConflict),
        (409, "duplicate_reference", errors.DuplicateReference),
        # Assumed conflict codes keep their meaning on a 422 (1.12.5 allows 409 or 422).
        (422, "idempotency_key_reuse", errors.IdempotencyConflict),
        (422, "duplicate_reference", errors.DuplicateReference),
        (400, "RATE_LIMIT_EXCEEDED", errors.ProviderRateLimited),
        (400, "quote_expired", errors.QuoteExpired),
        (422, "some_future_code", errors.InvalidRequest),
    ],
)
def test_status_and_code_precedence(status: int, code: str, expected: type) -> None:
    assert type(_error(status, {"statusCode": status, "message": "x", "code": code})) is expected


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        # The documented messages, for bodies without a code [S1, S2].
        (400, "Le montant doit être supérieur à 100 XOF", errors.InvalidAmount),
        (400, "Montant invalide", errors.InvalidAmount),
        (400, "Provider non disponible", errors.OperatorUnavailable),
        (401, "Non authentifié", errors.ProviderAuthError),
    ],
)
def test_documented_messages_without_a_code(status: int, message: str, expected: type) -> None:
    assert type(_error(status, {"statusCode": status, "message": message})) is expected


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


def test_unprefixed_signatures_are_accepted_and_legacy_ones_only_when_allowed() -> None:
    cf.verify_webhook_signature(
        _signed(WEBHOOK, int(NOW), prefix=""), WEBHOOK, secret=SECRET, tolerance_s=300, now=NOW
    )
    legacy = {"X-Cauris-Signature": hmac.new(SECRET.encode(), WEBHOOK, hashlib.sha256).hexdigest()}
    # A signature of the body alone never expires: refused by default.
    with pytest.raises(errors.WebhookVerificationError) as refused:
        cf.verify_webhook_signature(legacy, WEBHOOK, secret=SECRET, tolerance_s=300, now=NOW)
    assert refused.value.reason == "no_timestamp"
    assert "ALLOW_LEGACY_SIGNATURES" in str(refused.value)
    cf.verify_webhook_signature(
        legacy, WEBHOOK, secret=SECRET, tolerance_s=300, now=NOW, allow_legacy=True
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


# --------------------------------------------------------------------------- lists [S1]


def test_documented_list_envelope_is_read_with_its_meta() -> None:
    listing = cf.parse_list_page(
        200,
        json.dumps(
            {
                "data": [{"code": "SN"}, {"code": "CI"}],
                "meta": {"total": 150, "page": 1, "limit": 20, "totalPages": 8},
            }
        ).encode(),
        operation="availability",
        page=1,
    )
    assert listing.data == [{"code": "SN"}, {"code": "CI"}]
    assert listing.meta is not None and listing.meta.total == 150
    assert cf.next_page(listing) == 2
    last = cf.parse_list_page(
        200,
        b'{"data": [{"code": "BJ"}], "meta": {"total": 141, "page": 8, "limit": 20, '
        b'"totalPages": 8}}',
        operation="availability",
        page=8,
    )
    assert cf.next_page(last) is None


@pytest.mark.parametrize(
    "payload", [[{"code": "SN"}], {"success": True, "data": [{"code": "SN"}]}, {"data": []}]
)
def test_lists_without_meta_are_whole(payload: object) -> None:
    listing = cf.parse_list_page(
        200, json.dumps(payload).encode(), operation="availability", page=1
    )
    assert listing.meta is None
    assert cf.next_page(listing) is None


@pytest.mark.parametrize(
    ("body", "page"),
    [
        # The provider answered another page than the one asked for: following it could loop.
        (b'{"data": [1], "meta": {"total": 3, "page": 1, "limit": 1, "totalPages": 3}}', 2),
        # An empty page before the last one would cut the list short.
        (b'{"data": [], "meta": {"total": 3, "page": 2, "limit": 1, "totalPages": 3}}', 2),
        (b'{"data": {"code": "SN"}}', 1),
        (b"<html>", 1),
    ],
)
def test_inconsistent_pages_are_protocol_errors(body: bytes, page: int) -> None:
    with pytest.raises(errors.ProviderProtocolError):
        cf.parse_list_page(200, body, operation="availability", page=page)


def test_operators_come_from_the_items_of_both_lists() -> None:
    providers = [
        {"code": "wave", "country": "SN", "active": True},
        {"code": "orange_money", "country": "SN"},
        {"code": "wave", "country": "GH"},
        {"code": "card", "country": "SN"},
        {"code": "mtn_money", "country": "CI", "active": False},
        {"code": "moov_money", "country": "TG"},
    ]
    assert cf.parse_operators(providers, [{"code": "SN"}, {"code": "CI"}]) == {
        Country.SN: [Operator.WAVE, Operator.ORANGE_MONEY]
    }
    assert Country.TG in cf.parse_operators(providers, None)
