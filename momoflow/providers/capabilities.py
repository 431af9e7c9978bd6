"""What each provider accepts: countries, operators per country, amount limits.

This is the static table momoflow validates requests against *before* any provider call.
Documented values carry their source key from ``docs/providers.md``; the rest are
assumptions listed there. Live availability (an operator down today) is checked at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from momoflow.models import Direction, Operator, ProviderName
from momoflow.money import Country, Currency


@dataclass(frozen=True)
class AmountLimits:
    """Inclusive bounds, in the currency's minor unit."""

    minimum: int
    maximum: int

    def contains(self, amount: int) -> bool:
        """True when ``amount`` is within the bounds."""
        return self.minimum <= amount <= self.maximum


@dataclass(frozen=True)
class ProviderCapabilities:
    """One provider's static capabilities."""

    provider: ProviderName
    directions: frozenset[Direction]
    operators: dict[Country, frozenset[Operator]]
    limits: dict[tuple[Direction, Currency], AmountLimits] = field(default_factory=dict)

    def countries(self) -> frozenset[Country]:
        """Countries the provider serves."""
        return frozenset(self.operators)

    def limits_for(self, direction: Direction, currency: Currency) -> AmountLimits | None:
        """Amount limits for a direction and currency, or None when unsupported."""
        return self.limits.get((direction, currency))


_W, _OM, _MTN, _MOOV, _FREE = (
    Operator.WAVE,
    Operator.ORANGE_MONEY,
    Operator.MTN_MOMO,
    Operator.MOOV_MONEY,
    Operator.FREE_MONEY,
)

CAURISFLUX = ProviderCapabilities(
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
)

CAPABILITIES: dict[ProviderName, ProviderCapabilities] = {
    ProviderName.CAURISFLUX: CAURISFLUX,
}
