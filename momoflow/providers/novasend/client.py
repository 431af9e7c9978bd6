"""The thin NovaSend client: HTTP calls around the pure functions of ``mapping``."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
from pydantic import BaseModel

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
from momoflow.providers.http import map_httpx_errors
from momoflow.providers.novasend.mapping import (
    build_payin_request,
    build_payout_request,
    build_refund_request,
    classify_error,
    ensure_about,
    matches_request,
    parse_balances_response,
    parse_refund_response,
    parse_transaction_response,
    parse_transaction_wire,
    parse_webhook_event,
    payin_status_keys,
    to_payin_created,
    to_transaction,
    verify_webhook_signature,
)
from momoflow.providers.novasend.wire import (
    PROVIDER,
    NovaSendSessionRequest,
    NovaSendTransaction,
    dump,
)


@dataclass(frozen=True)
class NovaSendCredentials:
    """The API token pair and the webhook secret. ``repr`` never shows the secrets."""

    api_key: str
    api_client: str = field(repr=False)
    webhook_secret: str = field(repr=False)

    def basic_auth_header(self) -> str:
        """``Authorization`` value: ``Basic base64(api_key:api_client)`` [N1]."""
        token = base64.b64encode(f"{self.api_key}:{self.api_client}".encode()).decode("ascii")
        return f"Basic {token}"


def _segment(reference: str) -> str:
    return quote(reference, safe="")


class NovaSendClient:
    """NovaSend's Direct payouts, Wallet and Direct payins, refunds, balances, health.

    Implements :class:`~momoflow.providers.base.PaymentProvider`. Payouts are read back by
    *our* reference, so a status read works even when a create answer was lost. Payins speak
    both documented versions of the session API (2.11.1): see :meth:`initiate_payin` and
    :meth:`payin_status`.

    **Parameters:**

    * **http** - a shared ``httpx.AsyncClient``; this class never builds one.
    * **base_url** - the host without ``/v1``, e.g. ``https://business.novasend.app`` [N1].
    * **credentials** - token pair and webhook secret.
    * **language** - ``Accept-Language`` of error messages, ``en`` or ``fr`` [N1].
    * **account_id** - ``accountId`` of payin sessions, which the older payin API requires
      (seed 004); sent only when given (``MOMOFLOW_NOVASEND__ACCOUNT_ID``).
    * **clock** - seconds since the epoch, for ``Retry-After`` dates.
    """

    name = ProviderName.NOVASEND

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        credentials: NovaSendCredentials,
        language: str = "en",
        account_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._language = language
        self._account_id = account_id or None
        self._clock = clock

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: BaseModel | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {
            "Authorization": self._credentials.basic_auth_header(),
            "Accept": "application/json",
            "Accept-Language": self._language,
        }
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(dump(body)).encode()
        if idempotency_key is not None:
            headers["X-Idempotency-Key"] = idempotency_key
        with map_httpx_errors(PROVIDER, operation):
            response = await self._http.request(
                method, f"{self._base_url}{path}", headers=headers, content=content
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

    async def _read(self, path: str, *, operation: str) -> NovaSendTransaction:
        response = await self._call("GET", path, operation=operation)
        return parse_transaction_wire(response.status_code, response.content, operation=operation)

    async def quote_payout(self, request: PayoutQuoteInput) -> PayoutQuote:
        """NovaSend has no quote step: momoflow skips it (``quote_first=False``)."""
        raise errors.UnsupportedOperation(
            "NovaSend does not quote payouts", provider=PROVIDER, operation="quote_payout"
        )

    async def initiate_payout(self, request: InitiatePayoutInput) -> ProviderTransaction:
        """``POST /v1/direct/payout`` with ``X-Idempotency-Key`` [N6].

        A 409 ``transaction_is_already_processed`` means our reference exists already
        (2.6): it is read back and returned when amount and number match, never re-created.
        """
        body = build_payout_request(request)
        try:
            response = await self._call(
                "POST",
                "/v1/direct/payout",
                operation="initiate_payout",
                body=body,
                idempotency_key=request.idempotency_key,
            )
        except errors.DuplicateReference as exc:
            wire = await self._read(
                f"/v1/direct/payout/{_segment(request.external_reference)}",
                operation="payout_status",
            )
            if matches_request(
                wire,
                kind="payout",
                amount=request.amount,
                msisdn=request.recipient_phone,
                operation="initiate_payout",
            ):
                return to_transaction(wire, operation="initiate_payout")
            raise _other_transaction(exc) from exc
        return parse_transaction_response(
            response.status_code, response.content, operation="initiate_payout"
        )

    async def payout_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """``GET /v1/direct/payout/{reference}`` by our reference (2.11.7, [N14])."""
        wire = await self._read(
            f"/v1/direct/payout/{_segment(lookup.external_reference)}", operation="payout_status"
        )
        return to_transaction(wire, operation="payout_status")

    async def initiate_payin(self, request: InitiatePayinInput) -> PayinCreated:
        """``POST /v1/payin/sessions`` (checkout) or ``POST /v1/direct/payin`` (direct).

        A session carries the fields of both documented versions, and the answer is read in
        either shape (2.11.1; :func:`~.mapping.to_transaction`). Orange Money direct payins
        without an OTP are refused before any call [N5]. A 409 on our reference is read back
        as for payouts; at an account on the older API that read finds nothing by our
        reference, which is retried (never a decline) until the payin goes to reconciling.
        """
        body = build_payin_request(request, account_id=self._account_id)
        session = isinstance(body, NovaSendSessionRequest)
        path = "/v1/payin/sessions" if session else "/v1/direct/payin"
        try:
            response = await self._call(
                "POST",
                path,
                operation="initiate_payin",
                body=body,
                idempotency_key=request.idempotency_key,
            )
        except errors.InvalidRequest as exc:
            if session and self._account_id is None and exc.http_status in (400, 422):
                raise _without_account_id(exc) from exc
            raise
        except errors.DuplicateReference as exc:
            wire = await self._read(
                f"/v1/payin/{_segment(request.external_reference)}", operation="payin_status"
            )
            if matches_request(
                wire,
                kind="payin",
                amount=request.amount,
                msisdn=request.customer_phone or "",
                operation="initiate_payin",
            ):
                return to_payin_created(wire)
            raise _other_transaction(exc) from exc
        wire = parse_transaction_wire(
            response.status_code, response.content, operation="initiate_payin"
        )
        return to_payin_created(wire)

    async def payin_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """``GET /v1/payin/{reference}`` by the reference the create answer designates.

        That is NovaSend's id after an older-shaped answer (seed 004), ours after a newer
        one [N3, N4, N14]; the other is tried when the first is not found
        (:func:`~.mapping.payin_status_keys`). When the create answer was lost only ours can
        be tried. Not found under any of them is **not** proof that nothing was created (an
        account on the older API cannot be read by our reference): it is raised as
        :class:`~momoflow.providers.errors.ProviderUnavailable`, retried, and leaves the
        payin as it was. The answer must be about this payin
        (:func:`~.mapping.ensure_about`).
        """
        operation = "payin_status"
        keys = payin_status_keys(lookup)
        missing: errors.ProviderError | None = None
        for key in keys:
            try:
                wire = await self._read(f"/v1/payin/{_segment(key)}", operation=operation)
            except errors.ProviderUnavailable as exc:
                if exc.http_status != 404:
                    raise
                missing = exc
                continue
            tx = to_transaction(wire, operation=operation)
            ensure_about(tx, lookup, operation=operation)
            return tx
        assert missing is not None
        raise errors.ProviderUnavailable(
            f"no payin found under {' nor '.join(keys)}: not visible yet, or known to NovaSend "
            "only by an id we did not receive; this is not proof that nothing was created",
            provider=PROVIDER,
            operation=operation,
            http_status=missing.http_status,
            provider_code=missing.provider_code,
        )

    async def refund_payin(self, request: RefundInput) -> ProviderTransaction:
        """``POST /v1/payin/{reference}/refund``: a full refund, with the idempotency key [N8]."""
        response = await self._call(
            "POST",
            f"/v1/payin/{_segment(request.payin_reference)}/refund",
            operation="refund_payin",
            body=build_refund_request(request),
            idempotency_key=request.idempotency_key,
        )
        return parse_refund_response(response.status_code, response.content, request=request)

    async def list_transactions(self, request: ListTransactionsInput) -> TransactionListPage:
        """NovaSend documents no transaction list endpoint: the reconciliation report reads
        each transaction's status instead."""
        raise errors.UnsupportedOperation(
            "NovaSend documents no transaction list endpoint",
            provider=PROVIDER,
            operation="list_transactions",
        )

    async def balances(self) -> list[ProviderBalance]:
        """``GET /v1/balance`` [N12]."""
        response = await self._call("GET", "/v1/balance", operation="balances")
        return parse_balances_response(response.status_code, response.content)

    async def availability(self) -> ProviderAvailability:
        """``GET /health``, unauthenticated [N2]; a provider that is down is reported,
        never raised."""
        try:
            response = await self._http.get(
                f"{self._base_url}/health", headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            return ProviderAvailability(
                provider=ProviderName.NOVASEND,
                available=False,
                detail=f"no answer ({type(exc).__name__})",
            )
        ok = 200 <= response.status_code < 300
        return ProviderAvailability(
            provider=ProviderName.NOVASEND,
            available=ok,
            detail="" if ok else f"/health answered HTTP {response.status_code}",
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verify ``X-Signature-Value``, then normalise the flat transaction body [N9]."""
        verify_webhook_signature(headers, body, secret=self._credentials.webhook_secret)
        return parse_webhook_event(body)


def _without_account_id(exc: errors.InvalidRequest) -> errors.InvalidRequest:
    return errors.InvalidRequest(
        f"{exc.message} (no accountId was sent: an account on NovaSend's older payin API "
        "requires it; set MOMOFLOW_NOVASEND__ACCOUNT_ID)",
        provider=PROVIDER,
        operation=exc.operation,
        http_status=exc.http_status,
        provider_code=exc.provider_code,
    )


def _other_transaction(exc: errors.DuplicateReference) -> errors.DuplicateReference:
    return errors.DuplicateReference(
        "another transaction already holds this reference (amount or number differ)",
        provider=PROVIDER,
        operation=exc.operation,
        http_status=exc.http_status,
        provider_code=exc.provider_code,
    )
