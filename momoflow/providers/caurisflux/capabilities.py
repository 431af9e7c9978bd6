"""What CaurisFlux accepts (providers.md section 1; sources S1..S7)."""

from __future__ import annotations

from momoflow.models import Direction, Operator, PayinMode, ProviderName
from momoflow.money import Country, Currency
from momoflow.providers.capabilities import AmountLimits, ProviderCapabilities

_W, _OM, _MTN, _MOOV, _FREE = (
    Operator.WAVE,
    Operator.ORANGE_MONEY,
    Operator.MTN_MOMO,
    Operator.MOOV_MONEY,
    Operator.FREE_MONEY,
)

CAPABILITIES = ProviderCapabilities(
    provider=ProviderName.CAURISFLUX,
    directions=frozenset({Direction.PAYIN, Direction.PAYOUT}),
    # Countries SN, CI, ML are documented [S1]; BF, TG, BJ and the operator matrix are
    # assumed until /countries/active and /payments/providers are read from a live account.
    operators={
        Country.SN: frozenset({_W, _OM, _FREE}),
        Country.CI: frozenset({_W, _OM, _MTN, _MOOV}),
        Country.ML: frozenset({_W, _OM, _MOOV}),
        Country.BF: frozenset({_W, _OM, _MOOV}),
        Country.TG: frozenset({_MOOV}),
        Country.BJ: frozenset({_MTN, _MOOV}),
    },
    # Global limits 100..5,000,000 [S5]; per-operator limits are not published.
    limits={
        (Direction.PAYOUT, Currency.XOF): AmountLimits(100, 5_000_000),
        (Direction.PAYIN, Currency.XOF): AmountLimits(100, 5_000_000),
    },
    quotes_payouts=True,
    per_request_callback=True,
    payin_modes=frozenset({PayinMode.DIRECT, PayinMode.CHECKOUT}),
)
