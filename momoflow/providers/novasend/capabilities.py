"""What NovaSend accepts (providers.md section 2; sources N1..N14)."""

from __future__ import annotations

from momoflow.models import Direction, Operator, PayinMode, ProviderName
from momoflow.money import Country, Currency
from momoflow.providers.capabilities import AmountLimits, ProviderCapabilities

_W, _OM, _MTN, _MOOV = (
    Operator.WAVE,
    Operator.ORANGE_MONEY,
    Operator.MTN_MOMO,
    Operator.MOOV_MONEY,
)

CAPABILITIES = ProviderCapabilities(
    provider=ProviderName.NOVASEND,
    directions=frozenset({Direction.PAYIN, Direction.PAYOUT}),
    # CI and CM in the current docs [N4-N7]; the CM operator list is assumed.
    operators={
        Country.CI: frozenset({_W, _OM, _MTN, _MOOV}),
        Country.CM: frozenset({_OM, _MTN}),
    },
    # Payin 100..2,000,000 and payout 200..1,500,000 FCFA [N1]; CM 200..500,000 XAF [N14].
    limits={
        (Direction.PAYIN, Currency.XOF): AmountLimits(100, 2_000_000),
        (Direction.PAYOUT, Currency.XOF): AmountLimits(200, 1_500_000),
        (Direction.PAYIN, Currency.XAF): AmountLimits(200, 500_000),
        (Direction.PAYOUT, Currency.XAF): AmountLimits(200, 500_000),
    },
    refunds=True,
    status_by_reference=True,
    late_reversals=True,
    payin_modes=frozenset({PayinMode.DIRECT, PayinMode.CHECKOUT}),
)
