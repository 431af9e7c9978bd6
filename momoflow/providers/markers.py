"""Fingerprints of our references that a provider keeps when it keeps no more of them.

MOBILE-PAY has no field for our reference and may store only the start of a description,
so every transfer's description opens with a marker derived from its reference
(:func:`momoflow.providers.mobilepay.mapping.marker`, its spec's ``reference_marker``). The
daily report matches a listed item to its transaction by that marker when nothing else
names it (:func:`momoflow.reconciliation.compare_lists`).
"""

from __future__ import annotations

from momoflow.models import ProviderName
from momoflow.providers.catalog import spec_for


def reference_marker(provider: ProviderName, reference: str) -> str | None:
    """The fingerprint ``provider`` keeps of ``reference``, or None for providers that
    keep our reference itself."""
    marker = spec_for(provider).reference_marker
    return None if marker is None else marker(reference)
