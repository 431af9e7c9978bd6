"""MOBILE-PAY (mobile-pay.ci) adapter.

MOBILE-PAY publishes one thin page (providers.md 3.1, source M1): parameters but no response
bodies, no error format, no idempotency, no merchant reference, no status endpoint and no
webhook signature. Everything beyond M1 is an assumption from providers.md 3.4, named where
it is used. The package follows the two-layer split of the other adapters:

* :mod:`.wire` - request bodies and the (assumed) answers;
* :mod:`.mapping` - pure functions: request building, answer parsing, history matching,
  error classification, webhook token check and normalisation;
* :mod:`.attempts` - whether an earlier attempt of a transfer may have reached MOBILE-PAY,
  and how that proof survives from one Temporal attempt to the next;
* :mod:`.client` - :class:`MobilePayClient`, the thin async client, whose docstring states
  the rule that replaces idempotency: a transfer is re-sent only on proof that nothing
  executed; otherwise it is searched for by the marker that opens its description, for a
  consistency window, and the payout is reconciled if it does not appear.
"""

from __future__ import annotations

from momoflow.providers.mobilepay.client import MobilePayClient, MobilePayCredentials

__all__ = ["MobilePayClient", "MobilePayCredentials"]
