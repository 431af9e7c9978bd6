"""What each provider accepts: countries, operators per country, amount limits.

This is the static table momoflow validates requests against *before* any provider call.
Documented values carry their source key from ``docs/providers.md``; the rest are
assumptions listed there. Live availability (an operator down today) is checked at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from momoflow.models import Direction, Operator, PayinMode, ProviderName
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
    #: A payout is priced by a quote call before it is created.
    quotes_payouts: bool = False
    #: The provider replays a write sent again with the same idempotency key.
    idempotent_writes: bool = True
    #: Webhooks carry a verifiable signature (else only a secret URL token).
    signed_webhooks: bool = True
    #: Payins can be refunded through the API.
    refunds: bool = False
    #: A status can be read by our reference (so a lost create answer can be found).
    status_by_reference: bool = False
    #: Each request names its webhook URL (else it is set once in the provider's dashboard).
    per_request_callback: bool = False
    #: A failed payin may later turn successful (NovaSend, within 48 h, N8).
    late_reversals: bool = False
    #: The provider lists its transactions by date (the daily reconciliation report reads
    #: the list; without one it reads each transaction's status).
    lists_transactions: bool = False
    payin_modes: frozenset[PayinMode] = frozenset()
    #: Payin limits per (country, currency) where they differ from ``limits``.
    country_limits: dict[tuple[Direction, Country], AmountLimits] = field(default_factory=dict)

    def countries(self) -> frozenset[Country]:
        """Countries the provider serves."""
        return frozenset(self.operators)

    def limits_for(
        self, direction: Direction, currency: Currency, country: Country | None = None
    ) -> AmountLimits | None:
        """Amount limits for a direction and currency (and country, where they differ),
        or None when unsupported."""
        if country is not None and (direction, country) in self.country_limits:
            return self.country_limits[(direction, country)]
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
    quotes_payouts=True,
    per_request_callback=True,
    payin_modes=frozenset({PayinMode.DIRECT, PayinMode.CHECKOUT}),
)

NOVASEND = ProviderCapabilities(
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

_ALL_OPERATORS = frozenset({_W, _OM, _MTN, _MOOV})

MOBILEPAY = ProviderCapabilities(
    provider=ProviderName.MOBILEPAY,
    directions=frozenset({Direction.PAYIN, Direction.PAYOUT}),
    # Local transfers to +225 and international ones (SN example) [M1]; the API names no
    # operator, so any wallet of the country is accepted (assumed).
    operators={
        Country.CI: _ALL_OPERATORS,
        Country.SN: frozenset({_W, _OM, _FREE}),
        Country.ML: frozenset({_W, _OM, _MOOV}),
        Country.BF: frozenset({_W, _OM, _MOOV}),
        Country.TG: frozenset({_MOOV}),
        Country.BJ: frozenset({_MTN, _MOOV}),
    },
    # No documented limits: 100..1,500,000 XOF assumed, in line with the others.
    limits={
        (Direction.PAYOUT, Currency.XOF): AmountLimits(100, 1_500_000),
        (Direction.PAYIN, Currency.XOF): AmountLimits(100, 1_500_000),
    },
    idempotent_writes=False,
    signed_webhooks=False,
    status_by_reference=True,
    # GET /transactions with start_date/end_date [M1].
    lists_transactions=True,
    payin_modes=frozenset({PayinMode.QR}),
)

CAPABILITIES: dict[ProviderName, ProviderCapabilities] = {
    ProviderName.CAURISFLUX: CAURISFLUX,
    ProviderName.NOVASEND: NOVASEND,
    ProviderName.MOBILEPAY: MOBILEPAY,
}
