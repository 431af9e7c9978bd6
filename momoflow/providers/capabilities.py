"""What a provider accepts: countries, operators per country, amount limits.

Each provider states its own capabilities in its package (``momoflow/providers/<name>/
capabilities.py``, part of its :class:`~momoflow.providers.spec.ProviderSpec`); momoflow
validates requests against them *before* any provider call. Documented values carry their
source key from ``docs/providers.md``; the rest are assumptions listed there. Live
availability (an operator down today) is checked at run time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache

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
    #: A status is read by walking the transaction list, so the reads of every pending
    #: transaction are batched into one walk (:mod:`momoflow.status_reads`).
    shared_status_reads: bool = False
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


@cache
def _table() -> dict[ProviderName, ProviderCapabilities]:
    # Imported on first use: the provider packages import this module's dataclasses, and
    # the catalog imports the provider packages.
    from momoflow.providers.catalog import all_specs

    return {spec.name: spec.capabilities for spec in all_specs()}


class _CapabilitiesOfSpecs(Mapping[ProviderName, ProviderCapabilities]):
    """Each discovered provider's capabilities, as its spec states them."""

    def __getitem__(self, name: ProviderName) -> ProviderCapabilities:
        return _table()[name]

    def __iter__(self) -> Iterator[ProviderName]:
        return iter(_table())

    def __len__(self) -> int:
        return len(_table())


#: Provider -> capabilities, read from the provider specs
#: (:func:`momoflow.providers.catalog.capabilities_of` is the same lookup).
CAPABILITIES: Mapping[ProviderName, ProviderCapabilities] = _CapabilitiesOfSpecs()
