"""CaurisFlux thin async client: HTTP calls around the pure mapping functions."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from momoflow.models import (
    InitiatePayinInput,
    InitiatePayoutInput,
    ListTransactionsInput,
    PayinCreated,
    PayoutQuote,
    PayoutQuoteInput,
    ProviderAvailability,
    ProviderBalance,
    ProviderEvent,
    ProviderName,
    ProviderTransaction,
    RefundInput,
    StatusLookup,
    TransactionListPage,
)
from momoflow.providers import errors
from momoflow.providers.caurisflux.mapping import (
    AUTH_HEADER,
    IDEMPOTENCY_HEADER,
    LIST_PAGE_LIMIT,
    PROVIDER,
    build_payment_request,
    build_payout_request,
    build_quote_request,
    classify_error,
    next_page,
    parse_balance_response,
    parse_list_page,
    parse_operators,
    parse_payment_response,
    parse_quote_response,
    parse_transaction_response,
    parse_webhook_event,
    verify_webhook_signature,
)
from momoflow.providers.http import map_httpx_errors


@dataclass(frozen=True)
class CaurisFluxCredentials:
    """The key pair and webhook secret. ``repr`` never shows the secrets."""

    public_key: str
    secret_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)

    def auth_header(self) -> str:
        """``X-API-Key`` value: ``public:secret`` [S1]."""
        return f"{self.public_key}:{self.secret_key}"


class CaurisFluxClient:
    """Thin async client: HTTP calls plus the pure mapping functions above.

    **Parameters:**

    * **http** - a shared ``httpx.AsyncClient``; this class never builds one.
    * **base_url** - e.g. ``https://sandbox-api.caurisflux.com/api/v1``.
    * **credentials** - key pair and webhook secret.
    * **webhook_tolerance_s** - accepted clock skew of webhook timestamps.
    * **allow_legacy_signatures** - accept webhooks signed without a timestamp (see
      :func:`~.mapping.verify_webhook_signature`).
    * **list_page_limit** - ``limit`` asked of list endpoints (documented maximum: 100).
    * **max_list_pages** - hard cap on the pages read from one list; a longer list raises
      :class:`~momoflow.providers.errors.ListTruncated` instead of being cut silently.
    """

    name = ProviderName.CAURISFLUX

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        credentials: CaurisFluxCredentials,
        webhook_tolerance_s: int = 300,
        allow_legacy_signatures: bool = False,
        clock: Callable[[], float] = time.time,
        list_page_limit: int = LIST_PAGE_LIMIT,
        max_list_pages: int = 20,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._tolerance_s = webhook_tolerance_s
        self._allow_legacy = allow_legacy_signatures
        self._clock = clock
        self._list_page_limit = list_page_limit
        self._max_list_pages = max_list_pages

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: BaseModel | None = None,
        idempotency_key: str | None = None,
        public: bool = False,
        params: Mapping[str, int] | None = None,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if not public:
            headers[AUTH_HEADER] = self._credentials.auth_header()
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = body.model_dump_json(by_alias=True, exclude_none=True).encode()
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        with map_httpx_errors(PROVIDER, operation):
            response = await self._http.request(
                method,
                f"{self._base_url}{path}",
                headers=headers,
                content=content,
                params=dict(params) if params else None,
            )
        if not 200 <= response.status_code < 300:
            raise classify_error(
                operation,
                response.status_code,
                response.content,
                response.headers,
                now=self._clock(),
            )
        return response

    async def read_list(self, path: str, *, operation: str, public: bool = False) -> list[Any]:
        """Every item of a CaurisFlux list, page after page (``page``, ``limit``,
        ``{data, meta}`` [S1]); at most ``max_list_pages`` pages, else
        :class:`~momoflow.providers.errors.ListTruncated`."""
        items: list[Any] = []
        page: int | None = 1
        pages_read = 0
        total: int | None = None
        while page is not None:
            if pages_read >= self._max_list_pages:
                raise errors.ListTruncated(
                    f"{path} has more than {self._max_list_pages} pages of "
                    f"{self._list_page_limit}; {len(items)} items read",
                    pages_read=pages_read,
                    total=total,
                    provider=PROVIDER,
                    operation=operation,
                )
            response = await self._call(
                "GET",
                path,
                operation=operation,
                public=public,
                params={"page": page, "limit": self._list_page_limit},
            )
            listing = parse_list_page(
                response.status_code, response.content, operation=operation, page=page
            )
            pages_read += 1
            items.extend(listing.data)
            total = listing.meta.total if listing.meta else None
            page = next_page(listing)
        return items

    async def quote_payout(self, request: PayoutQuoteInput) -> PayoutQuote:
        """``POST /payouts/quote``."""
        response = await self._call(
            "POST", "/payouts/quote", operation="quote_payout", body=build_quote_request(request)
        )
        return parse_quote_response(
            response.status_code, response.content, request_currency=request.currency
        )

    async def initiate_payout(self, request: InitiatePayoutInput) -> ProviderTransaction:
        """``POST /payouts/initiate`` with ``X-Idempotency-Key``."""
        response = await self._call(
            "POST",
            "/payouts/initiate",
            operation="initiate_payout",
            body=build_payout_request(request),
            idempotency_key=request.idempotency_key,
        )
        return parse_transaction_response(
            response.status_code, response.content, operation="initiate_payout"
        )

    async def payout_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """``GET /payments/status/{id}`` [S3]."""
        if not lookup.provider_transaction_id:
            raise errors.ProviderProtocolError(
                "CaurisFlux reads status by transaction id only",
                provider=PROVIDER,
                operation="payout_status",
            )
        response = await self._call(
            "GET",
            f"/payments/status/{lookup.provider_transaction_id}",
            operation="payout_status",
        )
        return parse_transaction_response(
            response.status_code, response.content, operation="payout_status"
        )

    async def initiate_payin(self, request: InitiatePayinInput) -> PayinCreated:
        """``POST /payments/initiate`` with ``X-Idempotency-Key`` [S2]."""
        response = await self._call(
            "POST",
            "/payments/initiate",
            operation="initiate_payin",
            body=build_payment_request(request),
            idempotency_key=request.idempotency_key,
        )
        return parse_payment_response(response.status_code, response.content)

    async def payin_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """``GET /payments/status/{id}`` (the collection shape is assumed, 1.3)."""
        if not lookup.provider_transaction_id:
            raise errors.ProviderProtocolError(
                "CaurisFlux reads status by transaction id only",
                provider=PROVIDER,
                operation="payin_status",
            )
        response = await self._call(
            "GET",
            f"/payments/status/{lookup.provider_transaction_id}",
            operation="payin_status",
        )
        return parse_transaction_response(
            response.status_code, response.content, operation="payin_status"
        )

    async def refund_payin(self, request: RefundInput) -> ProviderTransaction:
        """CaurisFlux has no refund API yet [S6]."""
        raise errors.UnsupportedOperation(
            "CaurisFlux refunds are manual for now: e-mail support@cauris-pay.com with the "
            "transaction id, amount and reason (refund API announced, S6)",
            provider=PROVIDER,
            operation="refund_payin",
        )

    async def list_transactions(self, request: ListTransactionsInput) -> TransactionListPage:
        """CaurisFlux documents no transaction list endpoint: the reconciliation report reads
        each transaction's status instead. (Its lists, when one is documented, follow
        :meth:`read_list`.)"""
        raise errors.UnsupportedOperation(
            "CaurisFlux documents no transaction list endpoint",
            provider=PROVIDER,
            operation="list_transactions",
        )

    async def balances(self) -> list[ProviderBalance]:
        """``GET /payments/balance`` [S1]."""
        response = await self._call("GET", "/payments/balance", operation="balances")
        return parse_balance_response(response.status_code, response.content)

    async def availability(self) -> ProviderAvailability:
        """Public ``/payments/providers`` and ``/countries/active`` [S1], every page of
        each; never raises. A list longer than the page cap leaves ``operators`` unknown
        (None) and says so in ``detail``: a partial list would hide operators."""
        try:
            providers = await self.read_list(
                "/payments/providers", operation="availability", public=True
            )
            countries = await self.read_list(
                "/countries/active", operation="availability", public=True
            )
            operators = parse_operators(providers, countries)
        except errors.ListTruncated as exc:
            return ProviderAvailability(
                provider=ProviderName.CAURISFLUX,
                available=True,
                detail=f"operator list not read in full: {exc.message}",
            )
        except errors.ProviderError as exc:
            return ProviderAvailability(
                provider=ProviderName.CAURISFLUX, available=False, detail=str(exc)
            )
        except (ValueError, ValidationError) as exc:
            return ProviderAvailability(
                provider=ProviderName.CAURISFLUX,
                available=False,
                detail=f"unreadable provider list ({type(exc).__name__})",
            )
        return ProviderAvailability(
            provider=ProviderName.CAURISFLUX, available=True, operators=operators
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verify the signature, then normalise the event."""
        verify_webhook_signature(
            headers,
            body,
            secret=self._credentials.webhook_secret,
            tolerance_s=self._tolerance_s,
            now=self._clock(),
            allow_legacy=self._allow_legacy,
        )
        return parse_webhook_event(headers, body)
