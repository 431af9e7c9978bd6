"""CaurisFlux adapter (providers.md section 1; sources S1..S7 in docs/providers.md).

* :mod:`.wire`: the JSON bodies, as pydantic models named ``CaurisFlux*``.
* :mod:`.mapping`: pure functions (request building, parsing, status and error
  classification, webhook verification).
* :mod:`.client`: :class:`CaurisFluxClient`, the thin async client.
"""

from momoflow.providers.caurisflux.client import CaurisFluxClient, CaurisFluxCredentials
from momoflow.providers.caurisflux.mapping import (
    ASSUMED_ERROR_CODES,
    AUTH_HEADER,
    DOCUMENTED_ERROR_CODES,
    IDEMPOTENCY_HEADER,
    LIST_PAGE_LIMIT,
    OPERATOR_CODES,
    PROVIDER,
    build_payment_request,
    build_payout_request,
    build_quote_request,
    classify_error,
    error_type_for_code,
    map_status,
    next_page,
    parse_balance_response,
    parse_list_page,
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
    "ASSUMED_ERROR_CODES",
    "AUTH_HEADER",
    "DOCUMENTED_ERROR_CODES",
    "IDEMPOTENCY_HEADER",
    "LIST_PAGE_LIMIT",
    "OPERATOR_CODES",
    "PROVIDER",
    "CaurisFluxClient",
    "CaurisFluxCredentials",
    "build_payment_request",
    "build_payout_request",
    "build_quote_request",
    "classify_error",
    "error_type_for_code",
    "map_status",
    "next_page",
    "parse_balance_response",
    "parse_list_page",
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
