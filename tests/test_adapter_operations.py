"""Every provider operation through the one ``PaymentProvider`` protocol, against the
provider's sandbox over real HTTP: payins in each mode the provider offers, status reads,
refunds, balances, availability."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from momoflow.ids import idempotency_key
from momoflow.models import (
    InitiatePayinInput,
    Operator,
    PayinMode,
    PaymentStatus,
    ProviderName,
    ProviderTransaction,
    RefundInput,
    StatusLookup,
)
from momoflow.money import Country, Currency
from momoflow.providers import errors
from momoflow.providers.base import PaymentProvider
from momoflow.providers.capabilities import CAPABILITIES
from momoflow.providers.registry import open_providers
from momoflow.settings import Settings
from tests.stack import Stack


@pytest_asyncio.fixture(loop_scope="session")
async def providers(stack: Stack) -> AsyncIterator[dict[ProviderName, PaymentProvider]]:
    settings = Settings.model_validate(
        {
            "env": "test",
            "caurisflux": {"base_url": f"{stack.sandbox_urls['caurisflux']}/api/v1"},
            "novasend": {"base_url": stack.sandbox_urls["novasend"]},
            "mobilepay": {"base_url": f"{stack.sandbox_urls['mobilepay']}/api/v1"},
        }
    )
    async with open_providers(settings) as opened:
        yield opened


def _payin(
    provider: ProviderName, mode: PayinMode, suffix: str, **extra: object
) -> InitiatePayinInput:
    reference = f"payin-acme-AD-{uuid.uuid4().hex[:12]}"
    country, phone, operator = {
        ProviderName.CAURISFLUX: (Country.SN, "+22177123" + suffix, Operator.WAVE),
        ProviderName.NOVASEND: (Country.CI, "+225070123" + suffix, Operator.WAVE),
        ProviderName.MOBILEPAY: (Country.CI, "+225070123" + suffix, None),
    }[provider]
    fields: dict[str, object] = {
        "provider": provider,
        "mode": mode,
        "external_reference": reference,
        "idempotency_key": idempotency_key(reference, "initiate_payin"),
        "amount": 10_000,
        "currency": Currency.XOF,
        "country": country,
        "operator": operator,
        "customer_phone": phone,
        "customer_name": "Aya Kone",
        "description": "adapter test",
        "return_url": "https://merchant.example/paid",
        "cancel_url": "https://merchant.example/cancelled",
        "requested_at": datetime.now(UTC),
    }
    fields.update(extra)
    return InitiatePayinInput.model_validate(fields)


async def _wait_final(provider: PaymentProvider, lookup: StatusLookup) -> ProviderTransaction:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        try:
            tx = await provider.payin_status(lookup)
            if tx.status.is_final:
                return tx
        except errors.ProviderUnavailable:
            pass  # not visible yet
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{lookup.external_reference} never became final")
        await asyncio.sleep(0.3)


PAYIN_MODES = [
    (name, mode) for name, caps in CAPABILITIES.items() for mode in sorted(caps.payin_modes)
]


@pytest.mark.parametrize(("name", "mode"), PAYIN_MODES, ids=lambda v: str(getattr(v, "value", v)))
async def test_payin_in_every_offered_mode_is_created_and_succeeds(
    providers: dict[ProviderName, PaymentProvider],
    stack: Stack,
    name: ProviderName,
    mode: PayinMode,
) -> None:
    provider = providers[name]
    request = _payin(name, mode, "1001")
    created = await provider.initiate_payin(request)

    assert created.transaction.status is PaymentStatus.PENDING
    assert created.payment_url or created.qr_code or mode is PayinMode.DIRECT
    again = await provider.initiate_payin(request.model_copy(update={"attempt": 2}))
    assert again.transaction.provider_transaction_id == created.transaction.provider_transaction_id

    if name is ProviderName.MOBILEPAY:
        # A QR payment is paid by the customer scanning it: the sandbox plays the customer.
        with stack.sandbox("mobilepay") as http:
            http.post(
                f"/_sandbox/payments/{created.transaction.provider_transaction_id}/pay",
                json={"payer": "+2250701231001"},
            ).raise_for_status()
    final = await _wait_final(
        provider,
        StatusLookup(
            provider=name,
            provider_transaction_id=created.transaction.provider_transaction_id,
            external_reference=request.external_reference,
            since=request.requested_at,
        ),
    )
    assert final.status is PaymentStatus.SUCCEEDED
    assert final.amount == 10_000


@pytest.mark.parametrize(
    "name", [p for p, c in CAPABILITIES.items() if PayinMode.QR not in c.payin_modes]
)
async def test_qr_payin_is_refused_where_not_offered(
    providers: dict[ProviderName, PaymentProvider], name: ProviderName
) -> None:
    with pytest.raises(errors.UnsupportedOperation):
        await providers[name].initiate_payin(_payin(name, PayinMode.QR, "1001"))


async def test_novasend_orange_direct_payin_needs_the_customers_otp(
    providers: dict[ProviderName, PaymentProvider],
) -> None:
    provider = providers[ProviderName.NOVASEND]
    request = _payin(
        ProviderName.NOVASEND, PayinMode.DIRECT, "1001", operator=Operator.ORANGE_MONEY
    )
    with pytest.raises(errors.OtpRequired):
        await provider.initiate_payin(request)
    created = await provider.initiate_payin(request.model_copy(update={"otp": "123456"}))
    assert created.transaction.status is PaymentStatus.PENDING


@pytest.mark.parametrize("name", list(ProviderName))
async def test_refunds_where_the_provider_offers_them_and_a_clear_no_elsewhere(
    providers: dict[ProviderName, PaymentProvider], stack: Stack, name: ProviderName
) -> None:
    provider = providers[name]
    if not CAPABILITIES[name].refunds:
        with pytest.raises(errors.UnsupportedOperation) as info:
            await provider.refund_payin(
                RefundInput(
                    provider=name,
                    payin_reference="payin-acme-X",
                    external_reference="refund-acme-X",
                    idempotency_key=str(uuid.uuid4()),
                    reason="customer returned the goods",
                )
            )
        assert str(info.value)
        return
    request = _payin(name, PayinMode.DIRECT, "1001")
    created = await provider.initiate_payin(request)
    await _wait_final(
        provider,
        StatusLookup(
            provider=name,
            provider_transaction_id=created.transaction.provider_transaction_id,
            external_reference=request.external_reference,
        ),
    )
    refund = RefundInput(
        provider=name,
        payin_reference=request.external_reference,
        provider_transaction_id=created.transaction.provider_transaction_id,
        external_reference=f"refund-{request.external_reference}",
        idempotency_key=idempotency_key(request.external_reference, "refund"),
        reason="customer returned the goods",
    )
    result = await provider.refund_payin(refund)
    assert result.status in (PaymentStatus.PENDING, PaymentStatus.SUCCEEDED)
    replay = await provider.refund_payin(refund)
    assert replay.provider_transaction_id == result.provider_transaction_id


@pytest.mark.parametrize("name", list(ProviderName))
async def test_balances_and_availability_are_read(
    providers: dict[ProviderName, PaymentProvider], name: ProviderName
) -> None:
    balances = await providers[name].balances()
    assert balances and all(b.provider is name and b.available <= b.balance for b in balances)
    assert any(b.currency is Currency.XOF and b.available > 0 for b in balances)

    availability = await providers[name].availability()
    assert availability.available, availability.detail


async def test_unreachable_provider_reports_unavailable_without_raising() -> None:
    settings = Settings.model_validate(
        {
            "env": "test",
            "caurisflux": {"base_url": "http://127.0.0.1:9/api/v1"},
            "novasend": {"base_url": "http://127.0.0.1:9"},
            "mobilepay": {"base_url": "http://127.0.0.1:9/api/v1"},
        }
    )
    async with open_providers(settings) as opened:
        for provider in opened.values():
            availability = await provider.availability()
            assert not availability.available
            assert availability.detail


async def test_caurisflux_availability_lists_active_operators(
    providers: dict[ProviderName, PaymentProvider],
) -> None:
    availability = await providers[ProviderName.CAURISFLUX].availability()
    assert availability.operators is not None
    assert Operator.WAVE in availability.operators[Country.SN]


def test_adapters_satisfy_the_protocol() -> None:
    async def build() -> list[bool]:
        async with open_providers(Settings(env="test")) as opened:
            return [isinstance(p, PaymentProvider) for p in opened.values()]

    assert asyncio.run(build()) == [True, True, True]
