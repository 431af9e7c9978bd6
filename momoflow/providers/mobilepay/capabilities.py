"""What MOBILE-PAY accepts (providers.md section 3; source M1, assumptions 3.4)."""

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

_ALL_OPERATORS = frozenset({_W, _OM, _MTN, _MOOV})

CAPABILITIES = ProviderCapabilities(
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
    # No status endpoint: a status is read by walking GET /transactions (providers.md 3.3).
    shared_status_reads=True,
    payin_modes=frozenset({PayinMode.QR}),
)
