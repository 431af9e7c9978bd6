"""Settings read from ``MOMOFLOW_*`` environment variables, in the forms the docs give."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from momoflow.codec import generate_key
from momoflow.models import ProviderName
from momoflow.settings import Settings, hash_api_key

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets: none inherited from the shell or a test stack."""
    for name in list(os.environ):
        if name.startswith("MOMOFLOW_"):
            monkeypatch.delenv(name)


def from_environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("caurisflux", [ProviderName.CAURISFLUX]),
        ("caurisflux,novasend", [ProviderName.CAURISFLUX, ProviderName.NOVASEND]),
        (" novasend , MOBILEPAY ", [ProviderName.NOVASEND, ProviderName.MOBILEPAY]),
        ('["mobilepay", "caurisflux"]', [ProviderName.MOBILEPAY, ProviderName.CAURISFLUX]),
    ],
)
def test_providers_are_comma_separated_as_documented_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[ProviderName]
) -> None:
    settings = from_environment(monkeypatch, MOMOFLOW_PROVIDERS=value)

    assert settings.providers == expected


def test_every_providers_value_the_operations_doc_gives_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = OPERATIONS.read_text()
    examples = re.findall(r"`MOMOFLOW_PROVIDERS`[^`]*?(?:e\.g\.|for example) `([^`]+)`", text)
    (row,) = [line for line in text.splitlines() if line.startswith("| `MOMOFLOW_PROVIDERS`")]

    assert "comma-separated" in row
    assert "caurisflux,novasend" in examples
    for example in examples:
        expected = [ProviderName(name) for name in example.split(",")]
        assert from_environment(monkeypatch, MOMOFLOW_PROVIDERS=example).providers == expected


def test_an_unknown_provider_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as info:
        from_environment(monkeypatch, MOMOFLOW_PROVIDERS="caurisflux,paypal")

    (error,) = info.value.errors()
    assert error["loc"] == ("providers", 1)
    assert "'caurisflux', 'novasend' or 'mobilepay'" in error["msg"]


def test_without_the_variable_every_provider_is_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert from_environment(monkeypatch).providers == list(ProviderName)


def test_only_the_enabled_providers_secrets_are_required_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The comma-separated list is what production deployments set: with one provider,
    only that provider's development secrets are refused."""
    with pytest.raises(ValidationError) as info:
        from_environment(monkeypatch, MOMOFLOW_ENV="production", MOMOFLOW_PROVIDERS="novasend")

    refused = str(info.value)
    assert "novasend.api_client" in refused
    assert "caurisflux" not in refused and "mobilepay" not in refused


def test_the_json_settings_of_the_docs_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other structured setting is JSON, as docs/operations.md and docs/campaigns.md
    show it."""
    digest = hash_api_key("k1")
    settings = from_environment(
        monkeypatch,
        MOMOFLOW_API_KEYS=f'[{{"merchant": "acme", "key_sha256": "{digest}"}}]',
        MOMOFLOW_NOTIFICATION_SECRETS='{"acme": "s1", "globex": "s2"}',
        MOMOFLOW_MOBILEPAY__POLL_SCHEDULE_S="[60, 300, 900, 1800]",
        MOMOFLOW_CAMPAIGNS__ROUTES='{"CI/orange_money": "novasend", "SN": "caurisflux"}',
        MOMOFLOW_CODEC__UI_ORIGINS='["http://127.0.0.1:8233", "http://localhost:8233"]',
    )

    assert settings.merchant_for_key("k1") == "acme"
    assert settings.notification_secret("globex") == "s2"
    assert settings.mobilepay.poll_schedule_s == [60, 300, 900, 1800]
    assert settings.campaigns.routes == {
        "CI/orange_money": ProviderName.NOVASEND,
        "SN": ProviderName.CAURISFLUX,
    }
    assert settings.codec.ui_origins == ["http://127.0.0.1:8233", "http://localhost:8233"]


def test_the_documented_defaults_of_list_settings_are_the_real_ones() -> None:
    text = OPERATIONS.read_text()
    schedule = re.search(
        r"`MOMOFLOW_MOBILEPAY__RATE_LIMIT_PER_HOUR`.*?\| `100` / `(\[[^`]*\])`", text
    )
    origins = re.search(r"`MOMOFLOW_CODEC__UI_ORIGINS` \| `(\[[^`]*\])`", text)

    assert schedule and origins
    defaults = Settings(_env_file=None)
    assert schedule.group(1) == str(defaults.mobilepay.poll_schedule_s)
    assert origins.group(1) == str(defaults.codec.ui_origins).replace("'", '"')


def production_environment(**more: str) -> dict[str, str]:
    """A production deployment of NovaSend with fresh secrets everywhere."""
    return {
        "MOMOFLOW_ENV": "production",
        "MOMOFLOW_PROVIDERS": "novasend",
        "MOMOFLOW_API_KEYS": json.dumps(
            [{"merchant": "acme", "key_sha256": hash_api_key(secrets.token_hex(16))}]
        ),
        "MOMOFLOW_FINGERPRINT_SECRET": secrets.token_hex(16),
        "MOMOFLOW_DEFAULT_NOTIFICATION_SECRET": secrets.token_hex(16),
        "MOMOFLOW_CODEC__KEYS": json.dumps({"2026-12": generate_key()}),
        "MOMOFLOW_CODEC__ACTIVE_KEY_ID": "2026-12",
        "MOMOFLOW_CODEC__OPERATOR_TOKENS": json.dumps(
            [{"operator": "awa", "token_sha256": hash_api_key(secrets.token_hex(16))}]
        ),
        "MOMOFLOW_NOVASEND__API_CLIENT": secrets.token_hex(16),
        "MOMOFLOW_NOVASEND__WEBHOOK_SECRET": secrets.token_hex(16),
        "MOMOFLOW_DATABASE__URL": f"postgresql://momoflow:{secrets.token_hex(16)}@db:5432/momoflow",
        **more,
    }


def test_production_wants_the_temporal_ui_origins_set_and_https(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="set MOMOFLOW_CODEC__UI_ORIGINS"):
        from_environment(monkeypatch, **production_environment())
    with pytest.raises(ValidationError, match="must use https.*http://temporal.example.com"):
        from_environment(
            monkeypatch,
            **production_environment(MOMOFLOW_CODEC__UI_ORIGINS='["http://temporal.example.com"]'),
        )
    for origins in ('["https://temporal.example.com"]', '["http://localhost:8080"]', "[]"):
        settings = from_environment(
            monkeypatch, **production_environment(MOMOFLOW_CODEC__UI_ORIGINS=origins)
        )
        assert settings.codec.ui_origins == json.loads(origins)


def test_gateway_metrics_are_served_only_where_asked_outside_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    origins = '["https://temporal.example.com"]'
    production = production_environment(MOMOFLOW_CODEC__UI_ORIGINS=origins)
    assert not from_environment(monkeypatch, **production).serves_gateway_metrics()
    asked = {**production, "MOMOFLOW_TELEMETRY__GATEWAY_METRICS": "true"}
    assert from_environment(monkeypatch, **asked).serves_gateway_metrics()
    local = {**production, "MOMOFLOW_ENV": "local"}
    assert from_environment(monkeypatch, **local).serves_gateway_metrics()


@pytest.mark.parametrize("env", ["staging", "production"])
@pytest.mark.parametrize("url", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_staging_and_production_refuse_to_run_without_a_record_store(
    monkeypatch: pytest.MonkeyPatch, env: str, url: str | None
) -> None:
    """The record store is the system of record: outside local and test it is never
    optional, and the refusal says which variable to set and what goes in it."""
    production = production_environment(
        MOMOFLOW_ENV=env, MOMOFLOW_CODEC__UI_ORIGINS='["https://temporal.example.com"]'
    )
    del production["MOMOFLOW_DATABASE__URL"]
    if url is not None:
        # An empty variable counts as unset (env_ignore_empty); a blank one is refused too.
        production["MOMOFLOW_DATABASE__URL"] = url
    with pytest.raises(ValidationError) as info:
        from_environment(monkeypatch, **production)

    refused = str(info.value)
    assert "MOMOFLOW_DATABASE__URL" in refused
    assert f"env={env}" in refused
    assert "postgresql://momoflow:<password>@<host>:5432/momoflow" in refused
    assert "momoflow db upgrade" in refused


def test_the_record_store_url_is_accepted_in_production_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = secrets.token_hex(16)
    url = f"postgresql://momoflow:{password}@postgresql:5432/momoflow"
    production = production_environment(
        MOMOFLOW_CODEC__UI_ORIGINS='["https://temporal.example.com"]',
        MOMOFLOW_DATABASE__URL=url,
    )
    settings = from_environment(monkeypatch, **production)
    assert settings.database.url is not None
    assert settings.database.url.get_secret_value() == url
    assert password not in repr(settings.database)
    # Refused for another reason, the error does not print the URL beside it.
    with pytest.raises(ValidationError) as info:
        from_environment(monkeypatch, **{**production, "MOMOFLOW_CODEC__UI_ORIGINS": ""})
    assert password not in str(info.value)


@pytest.mark.parametrize("env", ["local", "test"])
def test_local_and_test_run_without_a_record_store_url(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    """`momoflow dev` and the tests start an embedded PostgreSQL and set the URL themselves;
    a bare local configuration is still valid (the worker says what is missing)."""
    settings = from_environment(monkeypatch, MOMOFLOW_ENV=env)
    assert settings.env == env
    assert settings.database.url is None
