"""Providers are plug-ins: each package exports one ``ProviderSpec``, and settings, request
validation and the registry work from specs alone (pure, no stack)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from pydantic import Field, SecretStr, ValidationError, create_model

from momoflow.business_requests import (
    PayinRequest,
    PayoutRequest,
    check_payin_request,
    check_payout_request,
)
from momoflow.models import Direction, Operator, PayinMode, ProviderName
from momoflow.money import Country, Currency
from momoflow.operations.refunds import MANUAL_REFUNDS, RefundNotSupported
from momoflow.problems import FieldProblem
from momoflow.providers.base import PaymentProvider
from momoflow.providers.capabilities import CAPABILITIES, AmountLimits, ProviderCapabilities
from momoflow.providers.catalog import (
    SHARED_READ_PROVIDERS,
    all_specs,
    discover,
    ordered,
    spec_for,
)
from momoflow.providers.markers import reference_marker
from momoflow.providers.registry import build_provider, open_providers
from momoflow.providers.spec import (
    ProviderSettingsBase,
    ProviderSpec,
    SandboxEntry,
    SandboxLaunch,
)
from momoflow.sandbox.__main__ import build_parser
from momoflow.settings import Settings, provider_fields
from momoflow.status_reads import ReadBudget
from tests.test_settings import production_environment


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets: none inherited from the shell or a test stack."""
    for name in list(os.environ):
        if name.startswith("MOMOFLOW_"):
            monkeypatch.delenv(name)


# The discovered providers ------------------------------------------------------------------


def test_every_provider_name_has_exactly_one_spec_and_every_spec_a_name() -> None:
    """``ProviderName`` is the one line outside its package a new provider needs; this is
    what catches a member without a package, or a package without a member."""
    names = [spec.name for spec in all_specs()]

    assert names == list(ProviderName)
    for spec in all_specs():
        assert spec.capabilities.provider is spec.name
        assert spec_for(spec.name) is spec
        assert CAPABILITIES[spec.name] is spec.capabilities
        assert spec.sandbox.command == spec.name.value


def test_two_specs_of_one_provider_are_refused() -> None:
    spec = spec_for(ProviderName.NOVASEND)
    with pytest.raises(ValueError, match="two provider specs are named novasend"):
        ordered([spec, spec])


def _package(root: Path, name: str, files: dict[str, str]) -> None:
    for path, text in {"__init__.py": "", **files}.items():
        target = root / name / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_discovery_takes_every_subpackage_with_a_spec_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(
        tmp_path,
        "plugins_ok",
        {
            "zeta/__init__.py": "",
            "zeta/spec.py": "from momoflow.providers.caurisflux.spec import SPEC\n",
            "alpha/__init__.py": "",
            "alpha/spec.py": "from momoflow.providers.mobilepay.spec import SPEC\n",
            "no_spec/__init__.py": "",
            "plain_module.py": "",
        },
    )
    _package(
        tmp_path,
        "plugins_bad",
        {"broken/__init__.py": "", "broken/spec.py": "SPEC = 'not a spec'\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = discover("plugins_ok")
        # Ordered as ProviderName declares them, whatever the package names.
        assert [spec.name for spec in found] == [ProviderName.CAURISFLUX, ProviderName.MOBILEPAY]
        with pytest.raises(TypeError, match=r"plugins_bad\.broken\.spec\.SPEC"):
            discover("plugins_bad")
    finally:
        for module in [m for m in sys.modules if m.startswith(("plugins_ok", "plugins_bad"))]:
            del sys.modules[module]


@pytest.mark.parametrize("spec", all_specs(), ids=lambda spec: spec.name.value)
def test_every_spec_settings_model_loads_from_its_env_prefix(
    monkeypatch: pytest.MonkeyPatch, spec: ProviderSpec[Any]
) -> None:
    prefix = f"MOMOFLOW_{spec.name.value.upper()}__"
    monkeypatch.setenv(f"{prefix}BASE_URL", f"https://{spec.name.value}.example/api")
    monkeypatch.setenv(f"{prefix}TIMEOUT_S", "7.5")

    settings = Settings(_env_file=None)

    account = settings.for_provider(spec.name)
    assert isinstance(account, spec.settings_model)
    assert spec.settings_in(settings) is account
    assert account.base_url == f"https://{spec.name.value}.example/api"
    assert account.timeout_s == 7.5
    assert Settings.model_fields[spec.name.value].annotation is spec.settings_model


@pytest.mark.parametrize("spec", all_specs(), ids=lambda spec: spec.name.value)
async def test_the_registry_builds_each_adapter_from_its_spec(spec: ProviderSpec[Any]) -> None:
    settings = Settings(_env_file=None, env="test")
    async with httpx.AsyncClient() as http:
        adapter = build_provider(spec.name, settings, http)
    assert isinstance(adapter, PaymentProvider)
    assert adapter.name is spec.name
    assert type(adapter) is type(spec.build_adapter(spec.settings_in(settings), http))


def test_the_sandbox_command_line_has_one_subcommand_per_spec() -> None:
    parser = build_parser()
    for spec in all_specs():
        args = parser.parse_args([spec.sandbox.command, "--port", "0"])
        assert args.provider == spec.sandbox.command


def test_provider_knowledge_read_elsewhere_comes_from_the_specs() -> None:
    assert SHARED_READ_PROVIDERS == {
        spec.name for spec in all_specs() if spec.capabilities.shared_status_reads
    }
    assert MANUAL_REFUNDS == {
        spec.name: spec.refund_guidance for spec in all_specs() if spec.refund_guidance
    }
    for spec in all_specs():
        expected = spec.reference_marker("payout-acme-1") if spec.reference_marker else None
        assert reference_marker(spec.name, "payout-acme-1") == expected


# A fourth provider, defined here --------------------------------------------------------------
#
# ProviderName is closed (its one line is the documented edit a new provider makes), so the
# fake spec borrows a member's name. Everything else it gets (settings group, secrets
# checks, request rules, adapter) comes from the spec alone.

STAND_IN = ProviderName.MOBILEPAY


class FourthSettings(ProviderSettingsBase):
    """A provider with one secret, a webhook path token and its own poll schedule."""

    base_url: str = "http://127.0.0.1:8199"
    timeout_s: float = Field(default=5.0, gt=0)
    api_secret: SecretStr = SecretStr("fourth_dev_secret")
    path_token: SecretStr = SecretStr("fourth_dev_path_token")
    requests_per_minute: int = Field(default=120, ge=1)

    def secrets(self) -> dict[str, SecretStr | None]:
        return {"api_secret": self.api_secret, "path_token": self.path_token}

    def rate_limit_per_second(self) -> float:
        return self.requests_per_minute / 60.0

    def sandbox_launch(self, webhook_url: str) -> SandboxLaunch:
        return SandboxLaunch(args=["--webhook-url", webhook_url])

    def confirms_payout_webhooks(self) -> bool:
        return False

    def status_read_budget(self) -> ReadBudget:
        return ReadBudget(per_hour=30, min_interval_s=5)

    def poll_schedule_override(self) -> list[int]:
        return [7, 70]

    def webhook_path(self) -> str:
        return f"/{self.path_token.get_secret_value()}"


class FourthAdapter:
    """Stands for an adapter: what the factory was given."""

    def __init__(self, settings: FourthSettings, http: httpx.AsyncClient) -> None:
        self.name = STAND_IN
        self.settings = settings
        self.http = http


def _build_fourth(settings: FourthSettings, http: httpx.AsyncClient) -> PaymentProvider:
    return cast(PaymentProvider, FourthAdapter(settings, http))


def _payout_rules(request: PayoutRequest) -> list[FieldProblem]:
    if request.amount % 5:
        return [FieldProblem("amount", "multiple_of_5", "the fourth pays multiples of 5")]
    return []


def _payin_rules(request: PayinRequest) -> list[FieldProblem]:
    if not request.customer.name:
        return [FieldProblem("customer.name", "required_by_provider", "the fourth wants it")]
    return []


FOURTH = ProviderSpec(
    name=STAND_IN,
    title="Fourth",
    capabilities=ProviderCapabilities(
        provider=STAND_IN,
        directions=frozenset({Direction.PAYIN, Direction.PAYOUT}),
        operators={Country.CI: frozenset({Operator.WAVE})},
        limits={
            (Direction.PAYOUT, Currency.XOF): AmountLimits(500, 10_000),
            (Direction.PAYIN, Currency.XOF): AmountLimits(500, 10_000),
        },
        payin_modes=frozenset({PayinMode.DIRECT}),
    ),
    settings_model=FourthSettings,
    build_adapter=_build_fourth,
    sandbox=SandboxEntry(command="fourth", add_parser="fourth.cli:add_parser", default_port=8199),
    payin_rules=_payin_rules,
    payout_rules=_payout_rules,
)
SPECS = [spec_for(ProviderName.CAURISFLUX), spec_for(ProviderName.NOVASEND), FOURTH]

#: Settings with the fourth provider's group, made as momoflow.settings makes its own.
FourthDeployment: type[Settings] = create_model(
    "FourthDeployment", __base__=Settings, **provider_fields([FOURTH])
)


def test_the_fourth_provider_gets_its_settings_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMOFLOW_MOBILEPAY__API_SECRET", "s3cret-from-env")
    monkeypatch.setenv("MOMOFLOW_MOBILEPAY__REQUESTS_PER_MINUTE", "600")
    settings = FourthDeployment(_env_file=None, public_url="https://pay.example")

    account = settings.for_provider(STAND_IN)
    assert isinstance(account, FourthSettings)
    assert account.api_secret.get_secret_value() == "s3cret-from-env"
    assert settings.rate_limit_per_second(STAND_IN) == 10.0
    assert not settings.confirms_payout_webhooks(STAND_IN)
    assert settings.status_read_budget(STAND_IN) == ReadBudget(per_hour=30, min_interval_s=5)
    assert settings.timings_for(STAND_IN).poll_schedule_s == [7, 70]
    assert settings.payin_timings_for(STAND_IN).poll_schedule_s == [7, 70]
    assert settings.webhook_url(STAND_IN) == (
        "https://pay.example/webhooks/mobilepay/fourth_dev_path_token"
    )
    with pytest.raises(ValidationError, match="requests_per_minute"):
        FourthDeployment(_env_file=None, mobilepay={"requests_per_minute": 0})


def test_the_fourth_provider_gets_production_secret_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in production_environment(MOMOFLOW_PROVIDERS="mobilepay").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MOMOFLOW_CODEC__UI_ORIGINS", '["https://temporal.example.com"]')

    with pytest.raises(ValidationError) as refused:
        FourthDeployment(_env_file=None)
    assert "mobilepay.api_secret" in str(refused.value)
    assert "mobilepay.path_token" in str(refused.value)

    monkeypatch.setenv("MOMOFLOW_MOBILEPAY__API_SECRET", "real-secret")
    monkeypatch.setenv("MOMOFLOW_MOBILEPAY__PATH_TOKEN", "real-token")
    assert FourthDeployment(_env_file=None).providers == [STAND_IN]


def _payout(**overrides: object) -> PayoutRequest:
    body: dict[str, object] = {
        "reference": "INV-4",
        "provider": STAND_IN.value,
        "country": "CI",
        "operator": "wave",
        "recipient": {"phone": "+2250701020304", "name": "Aya"},
        "amount": 5_000,
        "currency": "XOF",
    }
    return PayoutRequest.model_validate({**body, **overrides})


def _payin(**overrides: object) -> PayinRequest:
    body: dict[str, object] = {
        "reference": "ORDER-4",
        "provider": STAND_IN.value,
        "mode": "direct",
        "country": "CI",
        "operator": "wave",
        "customer": {"phone": "+2250701020304", "name": "Aya"},
        "amount": 5_000,
        "currency": "XOF",
        "description": "Commande 4",
    }
    return PayinRequest.model_validate({**body, **overrides})


def test_the_fourth_provider_gets_its_request_rules_and_capabilities() -> None:
    assert check_payout_request(_payout(), SPECS) == []
    rules = {(p.field, p.rule) for p in check_payout_request(_payout(amount=5_001), SPECS)}
    assert rules == {("amount", "multiple_of_5")}
    limits = {(p.field, p.rule) for p in check_payout_request(_payout(amount=20_000), SPECS)}
    assert limits == {("amount", "provider_limits")}
    orange = {(p.field, p.rule) for p in check_payout_request(_payout(operator="mtn_momo"), SPECS)}
    assert orange == {("operator", "operator_in_country")}

    assert check_payin_request(_payin(), SPECS) == []
    anonymous = _payin(customer={"phone": "+2250701020304"})
    named = {(p.field, p.rule) for p in check_payin_request(anonymous, SPECS)}
    assert named == {("customer.name", "required_by_provider")}
    checkout = {(p.field, p.rule) for p in check_payin_request(_payin(mode="checkout"), SPECS)}
    assert checkout == {("mode", "mode_offered")}

    # The same requests against the real MOBILE-PAY spec meet its rules, not the fourth's.
    assert ("amount", "multiple_of_5") not in {
        (p.field, p.rule) for p in check_payout_request(_payout(amount=5_001))
    }


def test_a_provider_without_a_spec_is_not_enabled() -> None:
    (problem,) = check_payout_request(_payout(), SPECS[:2])
    assert (problem.field, problem.rule) == ("provider", "provider_available")
    (problem,) = check_payin_request(_payin(), SPECS[:2])
    assert (problem.field, problem.rule) == ("provider", "provider_available")


async def test_the_registry_builds_the_fourth_adapter_from_its_spec() -> None:
    settings = FourthDeployment(_env_file=None, providers=[STAND_IN])
    async with open_providers(settings, SPECS) as opened:
        adapter = opened[STAND_IN]
        assert isinstance(adapter, FourthAdapter)
        assert adapter.settings is settings.for_provider(STAND_IN)
        assert adapter.http.timeout.read == 5.0


def test_a_provider_without_refund_guidance_gets_the_generic_sentence() -> None:
    for spec in all_specs():
        if spec.capabilities.refunds:
            continue
        assert str(RefundNotSupported(spec.name)) == (
            spec.refund_guidance or f"{spec.name.value} offers no refund API"
        )
