"""The thin async MOBILE-PAY client: authentication, HTTP calls, history searches.

MOBILE-PAY has no idempotency, no merchant reference and no per-transaction status endpoint
(providers.md 3.3), so three rules hold here:

* **A transfer is re-sent only on proof.** Attempt N of ``initiate_payout`` posts only when
  every earlier attempt provably executed nothing (a refused connection, a 429; see
  :mod:`.attempts`, which carries that proof from one Temporal attempt to the next).
* **After an unknown outcome, search.** Otherwise the attempt never posts: it searches
  ``GET /transactions`` for the transfer an earlier attempt may have made, by the marker
  that opens its description (:func:`~.mapping.marker`, which survives MOBILE-PAY keeping
  only the start of a description), or our reference in ``metadata``, with the same amount
  and number, created since ``requested_at`` (minus a clock margin). Found: it is returned.
  Our marker with another amount or number:
  :class:`~momoflow.providers.errors.DuplicateReference`.
* **Nothing found, reconcile.** The list may lag behind MOBILE-PAY's writes, so a miss is
  retried (:class:`~momoflow.providers.errors.ProviderUnavailable`) for the consistency
  window after the unknown outcome. After that,
  :class:`~momoflow.providers.errors.ProviderConflict` (non-retryable): the payout goes to
  ``reconciling`` and is never sent again by momoflow. A search that cannot finish within
  :data:`MAX_SEARCH_PAGES` pages is a :class:`ProviderUnavailable` too.

QR payments are searched for the same way before a re-send, but a miss creates a new one:
a QR payment moves no money until a customer pays it, and nobody has the code of one whose
answer was lost.

Status comes from the history: ``payout_status``/``payin_status`` find the transaction in
``GET /transactions`` by id or by marker/reference; not found means "not visible yet"
(``ProviderUnavailable``), never FAILED (3.4.4).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel

from momoflow.masking import mask_phone
from momoflow.models import (
    InitiatePayinInput,
    InitiatePayoutInput,
    ListTransactionsInput,
    PayinCreated,
    PayinMode,
    PayoutQuote,
    PayoutQuoteInput,
    ProviderAvailability,
    ProviderBalance,
    ProviderEvent,
    ProviderName,
    ProviderTransaction,
    RefundInput,
    SharedLookup,
    SharedReadOutcome,
    StatusLookup,
    TransactionListPage,
)
from momoflow.providers import errors
from momoflow.providers.http import json_body, map_httpx_errors
from momoflow.providers.mobilepay.attempts import (
    HeartbeatJournal,
    SendJournal,
    SendRecord,
    proves_not_executed,
    record_after,
)
from momoflow.providers.mobilepay.mapping import (
    PROVIDER,
    TransactionKind,
    Verdict,
    as_utc,
    build_list_params,
    build_qr_payment_request,
    build_transfer_request,
    claims,
    classify_error,
    is_kind,
    judge_existing,
    kind_of,
    marker,
    matches_id,
    matches_reference,
    parse_balance,
    parse_qr_created,
    parse_transaction_list,
    parse_transaction_page,
    parse_transfer_created,
    parse_webhook_event,
    search_finished,
    to_transaction,
    transfer_path,
    unwrap_object,
    validate,
    verify_webhook_token,
)
from momoflow.providers.mobilepay.wire import (
    MobilePayLoginRequest,
    MobilePayLoginResponse,
    MobilePayTransactionItem,
)

logger = logging.getLogger(__name__)

#: Items per ``GET /transactions`` page.
PAGE_SIZE = 100
#: Pages one search may read: at most 1,000 items, 10 requests of a 100/hour plan (3.2).
MAX_SEARCH_PAGES = 10
#: Searches start this long before our own timestamps, for clock skew with MOBILE-PAY.
CLOCK_MARGIN = timedelta(minutes=15)
#: How long after an unknown outcome a transfer missing from the list is searched for
#: again before the payout is reconciled (``MOMOFLOW_MOBILEPAY__CONSISTENCY_WINDOW_S``).
DEFAULT_CONSISTENCY_WINDOW_S = 900
#: Session lifetime when ``/auth/login`` does not say (assumed, 3.3).
DEFAULT_SESSION_TTL_S = 600
#: A session token is renewed this long before it expires.
SESSION_RENEW_MARGIN_S = 60

#: HTTP requests sent in the current task, when something counts them (a shared read).
_REQUESTS_SENT: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "mobilepay_requests_sent", default=None
)

_API_VERSION_SUFFIX = re.compile(r"/api/v\d+/?$")
_DOWN_WORDS = frozenset({"down", "error", "unhealthy", "maintenance", "ko"})


@dataclass(frozen=True, kw_only=True)
class MobilePayCredentials:
    """An API token or a login, and the webhook URL token. ``repr`` hides the secrets.

    When both ``login_email`` and ``login_password`` are set, a session token from
    ``POST /auth/login`` is used instead of ``api_token``.
    """

    api_token: str | None = field(default=None, repr=False)
    login_email: str | None = None
    login_password: str | None = field(default=None, repr=False)
    webhook_token: str = field(repr=False)

    @property
    def uses_login(self) -> bool:
        """True when a session token is obtained from ``/auth/login``."""
        return bool(self.login_email and self.login_password)


@dataclass(frozen=True)
class _Session:
    token: str = field(repr=False)
    renew_at: float


class MobilePayClient:
    """MOBILE-PAY as a :class:`~momoflow.providers.base.PaymentProvider`.

    **Parameters:**

    * **http** - a shared ``httpx.AsyncClient``; this class never builds one.
    * **base_url** - e.g. ``https://api.mobile-pay.ci/api/v1``.
    * **credentials** - API token or login, and the webhook URL token.
    * **merchant_id** - ``merchant_id`` of QR payments.
    * **duplicate_search_window_s** - how far back a search looks when the caller gives no
      starting time.
    * **consistency_window_s** - how long after an unknown outcome a transfer that is not in
      the list yet is searched for again, before the payout is reconciled.
    * **journal** - where the proof that earlier attempts executed nothing is kept between
      attempts; the Temporal activity's heartbeat details unless given.
    * **clock** - epoch seconds (injected by tests).

    The only state kept is a cache of the login session token; every worker may hold its own.
    """

    name = ProviderName.MOBILEPAY

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        credentials: MobilePayCredentials,
        merchant_id: str,
        duplicate_search_window_s: int = 172800,
        consistency_window_s: float = DEFAULT_CONSISTENCY_WINDOW_S,
        journal: SendJournal | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        # /health is served at the host root, outside /api/v1 (assumed, 3.3).
        self._root_url = _API_VERSION_SUFFIX.sub("", self._base_url)
        self._credentials = credentials
        self._merchant_id = merchant_id
        self._window = timedelta(seconds=duplicate_search_window_s)
        self._consistency = timedelta(seconds=consistency_window_s)
        self._journal: SendJournal = journal if journal is not None else HeartbeatJournal()
        self._clock = clock
        self._session: _Session | None = None
        self._login_lock = asyncio.Lock()

    # ----------------------------------------------------------------------- auth and HTTP

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _bearer(self, operation: str) -> tuple[str, _Session | None]:
        """The token to send, and the session it came from (None for the API token)."""
        creds = self._credentials
        if creds.uses_login:
            session = self._session
            if session is None or self._clock() >= session.renew_at:
                async with self._login_lock:
                    session = self._session
                    if session is None or self._clock() >= session.renew_at:
                        session = self._session = await self._login(operation)
            return session.token, session
        if creds.api_token:
            return creds.api_token, None
        raise errors.ProviderAuthError(
            "no MOBILE-PAY API token or login configured", provider=PROVIDER, operation=operation
        )

    async def _login(self, operation: str) -> _Session:
        """``POST /auth/login``; the answer's shape is assumed (3.3)."""
        body = MobilePayLoginRequest(
            email=self._credentials.login_email or "",
            password=self._credentials.login_password or "",
        )
        _count_request()
        with map_httpx_errors(PROVIDER, operation):
            response = await self._http.post(
                f"{self._base_url}/auth/login",
                headers={"Accept": "application/json", "Content-Type": "application/json"},
                content=body.model_dump_json().encode(),
            )
        status = response.status_code
        if not 200 <= status < 300:
            error = classify_error(
                operation, status, response.content, response.headers, now=self._clock()
            )
            if isinstance(error, errors.ProviderRejected):
                # A refused login is a settings problem, never a decline of the payment.
                raise errors.ProviderAuthError(
                    f"login refused: {error.message}",
                    provider=PROVIDER,
                    operation=operation,
                    http_status=status,
                    provider_code=error.provider_code,
                ) from error
            raise error
        payload = json_body(
            response.content, provider=PROVIDER, operation=operation, http_status=status
        )
        wire = validate(
            MobilePayLoginResponse, unwrap_object(payload), operation=operation, status=status
        )
        ttl = wire.expires_in if wire.expires_in is not None else DEFAULT_SESSION_TTL_S
        return _Session(token=wire.token, renew_at=self._clock() + ttl - SESSION_RENEW_MARGIN_S)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: BaseModel | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        token, session = await self._bearer(operation)
        return await self._request(
            method,
            path,
            token=token,
            session=session,
            operation=operation,
            body=body,
            params=params,
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        token: str,
        session: _Session | None,
        operation: str,
        body: BaseModel | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = body.model_dump_json(exclude_none=True).encode()
        _count_request()
        with map_httpx_errors(PROVIDER, operation):
            response = await self._http.request(
                method,
                f"{self._base_url}{path}",
                headers=headers,
                content=content,
                params=dict(params) if params is not None else None,
            )
        status = response.status_code
        if status in (401, 403) and session is not None and self._session is session:
            # The next Temporal attempt logs in again.
            self._session = None
        if not 200 <= status < 300:
            raise classify_error(
                operation, status, response.content, response.headers, now=self._clock()
            )
        return response

    # ----------------------------------------------------------------------- history search

    def _since(self, anchor: datetime | None) -> datetime:
        if anchor is None:
            return self._now() - self._window
        return as_utc(anchor) - CLOCK_MARGIN

    async def _search(
        self,
        operation: str,
        *,
        since: datetime,
        accept: Callable[[MobilePayTransactionItem], bool],
    ) -> MobilePayTransactionItem | None:
        """The first history item ``accept`` takes, or None once the window is read.

        Raises :class:`ProviderUnavailable` when the window does not fit in
        :data:`MAX_SEARCH_PAGES` pages.
        """
        window: dict[str, str | int] = {
            "limit": PAGE_SIZE,
            "start_date": since.date().isoformat(),
            # The date bounds' inclusiveness is not documented (3.3): end a day late.
            "end_date": (self._now() + timedelta(days=1)).date().isoformat(),
        }
        seen = 0
        for _ in range(MAX_SEARCH_PAGES):
            response = await self._call(
                "GET", "/transactions", operation=operation, params={**window, "offset": seen}
            )
            page = parse_transaction_page(
                response.status_code, response.content, operation=operation
            )
            for item in page.data:
                if accept(item):
                    return item
            seen += len(page.data)
            if search_finished(page, seen=seen, since=since):
                return None
        raise errors.ProviderUnavailable(
            f"transaction history search did not finish within {MAX_SEARCH_PAGES} pages",
            provider=PROVIDER,
            operation=operation,
        )

    async def _find_existing(
        self,
        operation: str,
        *,
        kind: TransactionKind,
        reference: str,
        amount: int,
        phone: str | None,
        requested_at: datetime | None,
    ) -> tuple[MobilePayTransactionItem | None, int]:
        """What an earlier attempt of this create call made (3.4.5), and how many items
        of the same amount (and number) carry nothing readable that says whose they are.

        Raises :class:`DuplicateReference` for our marker with another amount or number.
        """
        since = self._since(requested_at)
        until = self._now() + CLOCK_MARGIN
        unattributable = 0

        def accept(item: MobilePayTransactionItem) -> bool:
            nonlocal unattributable
            verdict = judge_existing(
                item,
                kind=kind,
                reference=reference,
                amount=amount,
                phone=phone,
                since=since,
                until=until,
            )
            if verdict is Verdict.CONFLICT:
                raise errors.DuplicateReference(
                    f"a {kind.value} marked {marker(reference)} ({reference}) exists with "
                    "another amount or number: reconcile, never send again",
                    provider=PROVIDER,
                    operation=operation,
                )
            if verdict is Verdict.UNATTRIBUTABLE:
                unattributable += 1
            return verdict is Verdict.MATCH

        found = await self._search(operation, since=since, accept=accept)
        return found, unattributable

    async def _lookup(
        self, lookup: StatusLookup, *, kind: TransactionKind, operation: str
    ) -> ProviderTransaction:
        """Find a transaction in the history by id, or by reference without one."""
        tx_id = lookup.provider_transaction_id
        reference = lookup.external_reference

        def accept(item: MobilePayTransactionItem) -> bool:
            if tx_id:
                return matches_id(item, tx_id)
            return is_kind(item, kind) and matches_reference(item, reference)

        item = await self._search(operation, since=self._since(lookup.since), accept=accept)
        if item is None:
            raise errors.ProviderUnavailable(
                f"{kind.value} {tx_id or reference} not visible yet in the history",
                provider=PROVIDER,
                operation=operation,
            )
        return to_transaction(item, kind=kind, external_reference=reference)

    async def read_statuses(self, lookups: Sequence[SharedLookup]) -> SharedReadOutcome:
        """One walk down ``GET /transactions`` (newest first) that answers every lookup it
        can: from the oldest lookup's ``since`` on, at most :data:`MAX_SEARCH_PAGES`
        pages, stopping early once every lookup is found. The status reads of all pending
        MOBILE-PAY transactions share it, so their cost in requests does not grow with
        their number (:mod:`momoflow.status_reads`). A provider error ends the walk; what
        was found before it is kept and the error is said in ``error``."""
        tally = [0]
        token = _REQUESTS_SENT.set(tally)
        found: dict[str, ProviderTransaction] = {}
        open_lookups = {lookup.key: lookup for lookup in lookups}
        anchors = [lookup.lookup.since for lookup in lookups]
        # A lookup without a starting time reads the whole search window.
        oldest = None if not anchors or None in anchors else min(a for a in anchors if a)
        since = self._since(oldest)

        def accept(item: MobilePayTransactionItem) -> bool:
            for key, lookup in list(open_lookups.items()):
                if claims(item, lookup):
                    found[key] = to_transaction(
                        item,
                        kind=kind_of(lookup.direction),
                        external_reference=lookup.lookup.external_reference,
                    )
                    del open_lookups[key]
            # Stop the walk once nothing is left to find.
            return not open_lookups

        error: str | None = None
        try:
            if open_lookups:
                await self._search("read_statuses", since=since, accept=accept)
        except errors.ProviderError as exc:
            error = str(exc)
        finally:
            _REQUESTS_SENT.reset(token)
        return SharedReadOutcome(found=found, requests=tally[0], error=error)

    # ----------------------------------------------------------------------- payouts

    async def quote_payout(self, request: PayoutQuoteInput) -> PayoutQuote:
        """MOBILE-PAY has no quote step."""
        raise errors.UnsupportedOperation(
            "MOBILE-PAY has no payout quote", provider=PROVIDER, operation="quote_payout"
        )

    async def initiate_payout(self, request: InitiatePayoutInput) -> ProviderTransaction:
        """``POST /transfers/local`` (CI) or ``/transfers/international``, only while every
        earlier attempt provably executed nothing; otherwise the transfer an earlier attempt
        may have made is searched for, and never sent again (module docstring)."""
        body = build_transfer_request(request)
        reference = request.external_reference
        record = self._journal.read(reference) if request.attempt > 1 else None
        if request.attempt > 1 and (record is None or not record.allows_send(request.attempt)):
            return await self._recover_transfer(request, record)
        operation = "initiate_payout"
        try:
            token, session = await self._bearer(operation)
        except errors.ProviderError:
            # The login failed: the transfer itself was never sent.
            self._note_attempt(record, request.attempt, reference, executed_nothing=True)
            raise
        try:
            response = await self._request(
                "POST",
                transfer_path(body),
                token=token,
                session=session,
                operation=operation,
                body=body,
            )
            return parse_transfer_created(response.status_code, response.content, request=request)
        except errors.ProviderError as exc:
            self._note_attempt(
                record, request.attempt, reference, executed_nothing=proves_not_executed(exc)
            )
            raise

    def _note_attempt(
        self, record: SendRecord | None, attempt: int, reference: str, *, executed_nothing: bool
    ) -> None:
        self._journal.write(
            record_after(
                record,
                reference=reference,
                attempt=attempt,
                executed_nothing=executed_nothing,
                now=self._now(),
            )
        )

    async def _recover_transfer(
        self, request: InitiatePayoutInput, record: SendRecord | None
    ) -> ProviderTransaction:
        """An earlier attempt may have reached MOBILE-PAY: find its transfer; never post."""
        reference = request.external_reference
        if record is None or record.unknown_since is None:
            # Noticed now, after the attempt that may have sent it: a safe start.
            record = record_after(
                record,
                reference=reference,
                attempt=request.attempt,
                executed_nothing=False,
                now=self._now(),
            )
            self._journal.write(record)
        found, unattributable = await self._find_existing(
            "initiate_payout",
            kind=TransactionKind.TRANSFER,
            reference=reference,
            amount=request.amount,
            phone=request.recipient_phone,
            requested_at=request.requested_at,
        )
        if found is not None:
            logger.info(
                "payout %s to %s found in the history (attempt %d): not sent again",
                reference,
                mask_phone(request.recipient_phone),
                request.attempt,
            )
            return to_transaction(
                found, kind=TransactionKind.TRANSFER, external_reference=reference
            )
        assert record.unknown_since is not None
        deadline = as_utc(record.unknown_since) + self._consistency
        tag = marker(reference)
        if self._now() < deadline:
            raise errors.ProviderUnavailable(
                f"an earlier attempt may have reached MOBILE-PAY and no transfer marked {tag} "
                f"is in its list yet; searching again until {deadline.isoformat()}, "
                "never sending again",
                provider=PROVIDER,
                operation="initiate_payout",
            )
        window = _minutes(self._consistency)
        if unattributable:
            raise errors.DuplicateReference(
                f"an earlier attempt may have reached MOBILE-PAY; no transfer marked {tag} "
                f"appeared within {window}, but {unattributable} transfer(s) of the same "
                "amount to the same number carry no readable marker and one may be ours: "
                "never sent again, check MOBILE-PAY's history",
                provider=PROVIDER,
                operation="initiate_payout",
            )
        raise errors.ProviderConflict(
            "an earlier attempt may have reached MOBILE-PAY (its answer was lost) and no "
            f"transfer marked {tag} appeared in its list within {window}: MOBILE-PAY has no "
            "idempotency, so it is never sent again; check MOBILE-PAY's history",
            provider=PROVIDER,
            operation="initiate_payout",
        )

    async def payout_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """The transfer as ``GET /transactions`` lists it (no per-id endpoint, 3.3)."""
        return await self._lookup(lookup, kind=TransactionKind.TRANSFER, operation="payout_status")

    # ----------------------------------------------------------------------- payins

    async def initiate_payin(self, request: InitiatePayinInput) -> PayinCreated:
        """``POST /payments/qr``: QR payins only (3.4.1); a retry first looks for the
        payment an earlier attempt may have made."""
        if request.mode is not PayinMode.QR:
            raise errors.UnsupportedOperation(
                f"MOBILE-PAY offers QR payins only, not {request.mode.value}",
                provider=PROVIDER,
                operation="initiate_payin",
            )
        body = build_qr_payment_request(request, merchant_id=self._merchant_id)
        if request.attempt > 1:
            # A miss creates a new QR payment (module docstring); same-amount payments
            # without a marker do not block it.
            existing, _ = await self._find_existing(
                "initiate_payin",
                kind=TransactionKind.PAYMENT,
                reference=request.external_reference,
                amount=request.amount,
                phone=None,
                requested_at=request.requested_at,
            )
            if existing is not None:
                transaction = to_transaction(
                    existing,
                    kind=TransactionKind.PAYMENT,
                    external_reference=request.external_reference,
                )
                return PayinCreated(
                    transaction=transaction,
                    qr_code=existing.qr_code,
                    expires_at=existing.expires_at,
                )
        response = await self._call("POST", "/payments/qr", operation="initiate_payin", body=body)
        return parse_qr_created(response.status_code, response.content, request=request)

    async def payin_status(self, lookup: StatusLookup) -> ProviderTransaction:
        """The QR payment as ``GET /transactions`` lists it."""
        return await self._lookup(lookup, kind=TransactionKind.PAYMENT, operation="payin_status")

    async def refund_payin(self, request: RefundInput) -> ProviderTransaction:
        """MOBILE-PAY has no refund API (3.3)."""
        raise errors.UnsupportedOperation(
            "MOBILE-PAY offers no refund API", provider=PROVIDER, operation="refund_payin"
        )

    async def list_transactions(self, request: ListTransactionsInput) -> TransactionListPage:
        """One page of ``GET /transactions`` between two days (the reconciliation report)."""
        response = await self._call(
            "GET",
            "/transactions",
            operation="list_transactions",
            params=build_list_params(request),
        )
        return parse_transaction_list(response.status_code, response.content, request=request)

    # ----------------------------------------------------------------------- account

    async def balances(self) -> list[ProviderBalance]:
        """``GET /balance``: one balance, all of it available (3.4.2)."""
        response = await self._call("GET", "/balance", operation="balances")
        balance, currency = parse_balance(response.status_code, response.content)
        return [
            ProviderBalance(
                provider=ProviderName.MOBILEPAY,
                currency=currency,
                balance=balance,
                available=balance,
            )
        ]

    async def availability(self) -> ProviderAvailability:
        """``GET /health`` at the host root, else ``GET /balance``; never raises."""
        try:
            with map_httpx_errors(PROVIDER, "availability"):
                response = await self._http.get(
                    f"{self._root_url}/health", headers={"Accept": "application/json"}
                )
            if 200 <= response.status_code < 300:
                if _says_down(response.content):
                    return self._availability(False, "/health reports the service down")
                return self._availability(True, f"/health answered {response.status_code}")
            health = f"/health answered {response.status_code}"
        except errors.ProviderError as exc:
            health = f"/health: {exc.message}"
        try:
            await self.balances()
        except errors.ProviderError as exc:
            return self._availability(False, f"{health}; /balance failed: {exc}")
        return self._availability(True, f"{health}; /balance answered")

    def _availability(self, available: bool, detail: str) -> ProviderAvailability:
        return ProviderAvailability(
            provider=ProviderName.MOBILEPAY, available=available, detail=detail
        )

    # ----------------------------------------------------------------------- webhooks

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Check the URL token, then normalise; the event is unverified (3.4.7)."""
        verify_webhook_token(headers, expected=self._credentials.webhook_token)
        return parse_webhook_event(body)


def _minutes(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def _says_down(body: bytes) -> bool:
    try:
        payload: Any = json_body(body, provider=PROVIDER, operation="availability", http_status=200)
    except errors.ProviderProtocolError:
        return False
    status = payload.get("status") if isinstance(payload, dict) else None
    return isinstance(status, str) and status.strip().lower() in _DOWN_WORDS


def _count_request() -> None:
    tally = _REQUESTS_SENT.get()
    if tally is not None:
        tally[0] += 1
