"""NovaSend adapter: wire models, pure mapping functions, and a thin async client.

* :mod:`.wire` - request and answer models, as NovaSend spells them;
* :mod:`.mapping` - pure ``build_*``/``parse_*``, ``map_status``, ``classify_error`` and
  webhook verification;
* :mod:`.client` - :class:`NovaSendCredentials` and :class:`NovaSendClient`.

Sources are the keys of the team's provider reference (section 2 of ``providers.md``):

* N1 introduction (base URL, Basic auth, error format, limits, operator table);
* N2 the other introduction (idempotency replay, ``/health``, security);
* N3 older payin page, also seed 004 (three status layers, ``transaction`` with decimal
  strings; the older session API: ``accountId`` and ``customerName`` required, an answer
  without ``id``, status by NovaSend's id);
* N4 Wallet payment (``POST /v1/payin/sessions``, newer schema); both session versions are
  spoken (2.11.1);
* N5 Direct payment (``POST /v1/direct/payin``, operator codes, Orange OTP);
* N6 Direct transfer (``POST /v1/direct/payout``);
* N7 Wallet transfer (``POST /v1/payout``, not used: momoflow always names the operator);
* N8 refund (``POST /v1/payin/{reference}/refund``, reversal rules);
* N9, N10 webhooks (``X-Signature-Value``, flat body, ``eventId``);
* N11 error codes; N12 balance (develop copy only); N13 older payout page;
* N14 third-party gateway code (payout status path, 409 read-back, both signature forms).

Where NovaSend's documentation is silent, the assumption is named where it is used (with
its section of the "gaps and recommended assumptions" list, 2.11.x) and listed in
``docs/providers.md``.
"""

from __future__ import annotations

from momoflow.providers.novasend.client import NovaSendClient, NovaSendCredentials

__all__ = ["NovaSendClient", "NovaSendCredentials"]
