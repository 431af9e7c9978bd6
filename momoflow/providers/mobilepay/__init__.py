"""MOBILE-PAY (mobile-pay.ci) adapter.

MOBILE-PAY publishes one thin page (providers.md 3.1, source M1): parameters but no response
bodies, no error format, no idempotency, no merchant reference, no status endpoint and no
webhook signature. Everything beyond M1 is an assumption from providers.md 3.4, named where
it is used. The package follows the two-layer split of the other adapters:

* :mod:`.wire` - request bodies and the (assumed) answers;
* :mod:`.mapping` - pure functions: request building, answer parsing, history matching,
  error classification, webhook token check and normalisation;
* :mod:`.client` - :class:`MobilePayClient`, the thin async client, whose docstring states
  the "never create twice" rule: a retried create call searches ``GET /transactions`` for
  what an earlier attempt made before posting anything, and gives up with
  ``ProviderUnavailable`` (never a blind re-send) when that search cannot finish.
"""

from __future__ import annotations

from momoflow.providers.mobilepay.client import MobilePayClient, MobilePayCredentials

__all__ = ["MobilePayClient", "MobilePayCredentials"]
