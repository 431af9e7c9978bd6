"""Business validation of payout requests, ids and settings (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from momoflow.business_requests import (
    PayinRequest,
    PayoutRequest,
    check_payin_request,
    check_payout_request,
)
from momoflow.ids import idempotency_key, parse_transaction_workflow_id, payout_workflow_id
from momoflow.masking import mask_name, mask_phone
from momoflow.models import Direction, PayoutTimings
from momoflow.money import Country, format_amount
from momoflow.phones import normalize_phone
from momoflow.settings import Settings, hash_api_key

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _request(**overrides: object) -> PayoutRequest:
    body: dict[str, object] = {
        "reference": "INV-1",
        "provider": "caurisflux",
        "country": "SN",
        "operator": "wave",
        "recipient": {"phone": "+221771234567", "name": "Awa Diallo"},
        "amount": 50_000,
        "currency": "XOF",
    }
    body.update(overrides)
    return PayoutRequest.model_validate(body)


def test_valid_request_has_no_problems() -> None:
    assert check_payout_request(_request()) == []


def test_every_business_problem_is_reported_at_once() -> None:
    request = _request(
        country="CI",
        operator="free_money",
        currency="XAF",
        amount=10_000_000,
        recipient={"phone": "+221771234567", "name": "Awa"},
    )
    problems = {(p.field, p.rule) for p in check_payout_request(request)}
    assert problems == {
        ("recipient.phone", "number_in_country"),
        ("currency", "currency_of_country"),
        ("operator", "operator_in_country"),
        ("currency", "currency_supported"),
    }


def test_amount_outside_provider_limits_is_refused() -> None:
    problems = check_payout_request(_request(amount=99))
    assert [(p.field, p.rule) for p in problems] == [("amount", "provider_limits")]
    assert "100 XOF" in problems[0].message and "5,000,000 XOF" in problems[0].message


def test_country_not_served_is_refused() -> None:
    problems = check_payout_request(
        _request(country="CM", currency="XAF", recipient={"phone": "+237670000001", "name": "A"})
    )
    assert ("country", "country_served") in {(p.field, p.rule) for p in problems}


def test_invalid_number_is_refused() -> None:
    problems = check_payout_request(
        _request(recipient={"phone": "+22507000000", "name": "A"}, country="CI")
    )
    assert ("recipient.phone", "valid_number") in {(p.field, p.rule) for p in problems}


@pytest.mark.parametrize(
    ("country", "written", "e164"),
    [
        ("SN", "+221771234567", "+221771234567"),
        ("SN", "771234567", "+221771234567"),
        ("SN", "77 123 45 67", "+221771234567"),
        ("SN", "+221 77-123.45.67", "+221771234567"),
        ("SN", "00221771234567", "+221771234567"),
        ("SN", "221771234567", "+221771234567"),
        ("CI", "07 01 02 03 04", "+2250701020304"),
        ("CM", "6 71 23 45 67", "+237671234567"),
    ],
)
def test_national_and_spaced_numbers_are_read_for_the_requests_country(
    country: str, written: str, e164: str
) -> None:
    currency = "XAF" if country == "CM" else "XOF"
    provider = "novasend" if country == "CM" else "caurisflux"
    operator = "mtn_momo" if country == "CM" else "wave"
    request = _request(
        country=country,
        currency=currency,
        provider=provider,
        operator=operator,
        recipient={"phone": written, "name": "A"},
    )

    assert request.recipient.phone == e164
    assert check_payout_request(request) == []
    assert (
        request.to_input(
            merchant="acme", secret="s", requested_at=NOW, timings=PayoutTimings()
        ).recipient_phone
        == e164
    )


def test_a_national_and_an_international_number_are_the_same_request() -> None:
    national = _request(recipient={"phone": "77 123 45 67", "name": "Awa Diallo"})
    international = _request()

    assert national.fingerprint("s") == international.fingerprint("s")
    assert national.model_dump() == international.model_dump()


def test_the_number_read_in_another_country_is_another_number() -> None:
    assert normalize_phone("0701020304", None) == "0701020304"
    assert normalize_phone("+2250701020304", Country.SN) == "+2250701020304"
    assert _request(recipient={"phone": "0701020304", "name": "A"}).recipient.phone == (
        "+2210701020304"
    )


@pytest.mark.parametrize(
    ("phone", "rule", "words"),
    [
        ("abc", "e164", "not a phone number"),
        ("", "e164", "not a phone number"),
        ("12", "valid_number", "wrong length or prefix"),
        ("0701020304", "valid_number", "wrong length or prefix"),
        ("+2250701020304", "number_in_country", "belongs to Côte d'Ivoire (CI), not to Senegal"),
        ("+33612345678", "number_in_country", "belongs to France (FR), not to Senegal"),
    ],
)
def test_a_number_that_is_not_of_the_country_says_how_to_write_one(
    phone: str, rule: str, words: str
) -> None:
    (problem,) = check_payout_request(_request(recipient={"phone": phone, "name": "A"}))

    assert (problem.field, problem.rule) == ("recipient.phone", rule)
    assert words in problem.message
    assert "write the number in international form (+221 " in problem.message
    assert "or as a Senegal national number (" in problem.message
    if len(phone) > 6:
        assert phone not in problem.message  # error bodies and logs never echo a number


def test_payin_customer_numbers_are_read_for_the_country_too() -> None:
    body: dict[str, object] = {
        "reference": "ORDER-1",
        "provider": "novasend",
        "mode": "direct",
        "country": "CI",
        "operator": "wave",
        "customer": {"phone": "07 01 02 03 04", "name": "Aya"},
        "amount": 15_000,
        "currency": "XOF",
        "return_url": "https://shop.example/paid",
    }
    payin = PayinRequest.model_validate(body)
    assert payin.customer.phone == "+2250701020304"
    assert check_payin_request(payin) == []
    assert payin.fingerprint("s") == PayinRequest.model_validate(
        {**body, "customer": {"phone": "+2250701020304", "name": "Aya"}}
    ).fingerprint("s")

    senegal = PayinRequest.model_validate({**body, "customer": {"phone": "+221771234567"}})
    (problem,) = check_payin_request(senegal)
    assert (problem.field, problem.rule) == ("customer.phone", "number_in_country")
    assert "Côte d'Ivoire national number" in problem.message


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (5000.5, "amount must be an integer in the currency's minor unit"),
        (5000.5, "5000.5 has decimals"),
        (5000.0, "write 5000, not 5000.0"),
        ("5000", 'amount must be a JSON number, not a string: write 5000, not "5000"'),
        ("5000.50", "not a string"),
        (True, "for example 50000"),
        (None, "for example 50000"),
        (float("nan"), "for example 50000"),
        (1e300, "without a decimal point or exponent"),
    ],
)
def test_an_amount_that_is_not_an_integer_is_refused_in_words(amount: object, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        _request(amount=amount)

    (error,) = info.value.errors()
    assert (error["loc"], error["type"]) == (("amount",), "whole_number")
    assert words in error["msg"]
    assert "XOF and XAF have none" in error["msg"] or "JSON number" in error["msg"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"amount": 100.5}, "amount"),
        ({"amount": "5000"}, "amount"),
        ({"amount": 0}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"reference": "bad ref!"}, "reference"),
        ({"recipient": {"phone": "+221 " + "7" * 40, "name": "A"}}, "recipient"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_malformed_fields_fail_parsing_with_their_name(
    override: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _request(**override)
    assert any(err["loc"][0] == field for err in info.value.errors())


def test_fingerprint_changes_with_any_field_and_with_the_secret() -> None:
    base = _request().fingerprint("s")
    assert base == _request().fingerprint("s")
    assert base != _request(amount=50_001).fingerprint("s")
    assert base != _request().fingerprint("other")


def test_workflow_ids_cannot_collide_across_merchants() -> None:
    assert payout_workflow_id("acme", "INV-1") == "payout-acme-INV-1"
    assert parse_transaction_workflow_id("payout-acme-INV-1") == (Direction.PAYOUT, "acme", "INV-1")
    with pytest.raises(ValueError):
        payout_workflow_id("acme-sarl", "INV-1")
    assert parse_transaction_workflow_id("refund-acme-1") is None


def test_idempotency_keys_derive_from_the_business_id_only() -> None:
    key = idempotency_key("payout-acme-INV-1", "initiate_payout")
    assert key == idempotency_key("payout-acme-INV-1", "initiate_payout")
    assert key != idempotency_key("payout-acme-INV-2", "initiate_payout")
    # Pinned: a change here would re-key every payout in flight.
    assert key == "8c6bd94e-5dad-5520-bac2-e0a0f35693e9"


def test_money_and_masks_render_for_humans() -> None:
    assert format_amount(1_500_000, "XOF") == "1,500,000 XOF"
    assert mask_phone("+221771234567") == "+221*****4567"
    assert mask_name("Awa Diallo") == "A** D*****"


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(env="production")
    assert "fingerprint_secret" in str(info.value)


def test_api_keys_map_to_their_merchant() -> None:
    settings = Settings(api_keys=[{"merchant": "acme", "key_sha256": hash_api_key("k1")}])
    assert settings.merchant_for_key("k1") == "acme"
    assert settings.merchant_for_key("k2") is None


@pytest.mark.parametrize(
    ("url", "production", "local"),
    [
        ("http://shop.example/hook", "https_only", None),
        ("https://127.0.0.1:7233/", "public_host", "public_host"),
        # The sandbox's reset, reached from a merchant's URL in dev (issue 14).
        ("http://127.0.0.1:8101/_sandbox/reset", "https_only", "public_host"),
        ("https://169.254.169.254/latest/meta-data", "public_host", "public_host"),
        ("https://10.0.0.5/hook", "public_host", "public_host"),
        ("https://[::ffff:127.0.0.1]/hook", "public_host", "public_host"),
        ("https://metadata.internal/hook", "public_host", "public_host"),
        ("http://localhost:8000/hook", "https_only", "public_host"),
        ("https://localhost./hook", "public_host", "public_host"),
        # Allowed locally only: 127.0.0.2 is MOMOFLOW_NOTIFY_ALLOW of the local stack.
        ("http://127.0.0.2:9000/hook", "https_only", None),
        ("https://shop.example/hook", None, None),
    ],
)
def test_notification_urls_must_be_public_https_outside_local(
    url: str, production: str | None, local: str | None
) -> None:
    from momoflow.business_requests import check_notify_url
    from momoflow.outbound import DestinationPolicy

    problem = check_notify_url(url, local=False)
    assert (problem.rule if problem else None) == production
    allow = DestinationPolicy.from_entries(["127.0.0.2"])
    problem = check_notify_url(url, local=True, policy=allow)
    assert (problem.rule if problem else None) == local
