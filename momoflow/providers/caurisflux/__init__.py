"""CaurisFlux adapter (providers.md section 1; sources S1..S7 in docs/providers.md).

* :mod:`.wire`: the JSON bodies, as pydantic models named ``CaurisFlux*``.
* :mod:`.mapping`: pure functions (request building, parsing, status and error
  classification, webhook verification).
* :mod:`.client`: :class:`CaurisFluxClient`, the thin async client.
"""

from momoflow.providers.caurisflux.client import CaurisFluxClient, CaurisFluxCredentials
from momoflow.providers.caurisflux.mapping import (
    OPERATOR_CODES,
    PROVIDER,
    build_payment_request,
    build_payout_request,
    build_quote_request,
    classify_error,
    map_status,
    parse_balance_response,
    parse_operators,
    parse_payment_response,
    parse_quote_response,
    parse_transaction_response,
    parse_webhook_event,
    split_name,
    to_transaction,
    unwrap_envelope,
    verify_webhook_signature,
)

__all__ = [
    "OPERATOR_CODES",
    "PROVIDER",
    "CaurisFluxClient",
    "CaurisFluxCredentials",
    "build_payment_request",
    "build_payout_request",
    "build_quote_request",
    "classify_error",
    "map_status",
    "parse_balance_response",
    "parse_operators",
    "parse_payment_response",
    "parse_quote_response",
    "parse_transaction_response",
    "parse_webhook_event",
    "split_name",
    "to_transaction",
    "unwrap_envelope",
    "verify_webhook_signature",
]
