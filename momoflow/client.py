"""Typed client of momoflow's business API: start and follow payouts, payins, refunds and
campaigns.

Two clients with the same methods: :class:`MomoflowClient` (async, ``httpx.AsyncClient``)
and :class:`SyncMomoflowClient` (blocking, ``httpx.Client``, for scripts and the
``momoflow campaign`` CLI). Both drive the same request plans (:class:`_Api`), so retries,
error mapping and waiting behave the same. ``wait_for_*`` long-polls the gateway
(``?wait_s=…&while_status=…``) rather than reading once a second; the ``*_result`` twins
of the writes say whether the gateway created the transaction or replayed it
(:class:`CreateResult`); campaign files and reports stream in chunks.

Every call that writes (``create_payout``, ``create_payin``, ``refund_payin``) is
idempotent on the business reference: sending it again returns the existing transaction
instead of starting a second one. That is why the clients retry writes too, on ``503``,
``429`` (after its ``Retry-After``) and on connection errors, and why **a caller must
reuse the same reference when it retries a business operation**, never make up a new one.
See ``docs/client.md``.

:func:`construct_event` verifies a merchant notification and returns the typed event, and
the request and state models are importable from here too, so one import serves a service.

:func:`start_payout_on_temporal` starts a payout directly on Temporal, for services that
hold a Temporal client rather than an API key; it shares its start logic with the gateway
(:mod:`momoflow.operations`).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import tempfile
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, Self, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
import pydantic
from temporalio.client import Client as TemporalClient

import momoflow
from momoflow.business_requests import FieldProblem, PayinRequest, PayoutRequest
from momoflow.campaigns.models import (
    ApproveRequest,
    CampaignPhase,
    CampaignProblems,
    CampaignProgress,
    CancelRequest,
    FileFormat,
    PauseRequest,
    RetryRequest,
)
from momoflow.contract import REQUEST_ID_HEADER
from momoflow.ids import REFERENCE_PATTERN, is_valid_reference
from momoflow.models import (
    PayinState,
    PayoutState,
    ProviderName,
    RefundState,
    TransactionState,
    TransactionStatus,
)
from momoflow.money import Country, Currency
from momoflow.notifications import (
    InvalidNotification,
    NotificationEvent,
    NotificationSignatureError,
    construct_event,
)
from momoflow.operations import ReferenceInUse, RequestProblems, UnencryptedClient, start_payout
from momoflow.records.store import RecordStore
from momoflow.settings import Settings

__all__ = [
    "AccountBalance",
    "CampaignPhase",
    "CampaignProblems",
    "CampaignProgress",
    "CampaignStateConflict",
    "CampaignSubmission",
    "CreateResult",
    "CampaignFile",
    "FileFormat",
    "InvalidNotification",
    "NotificationEvent",
    "NotificationSignatureError",
    "PayinRequest",
    "PayinState",
    "PayoutRequest",
    "PayoutState",
    "RefundState",
    "TransactionState",
    "TransactionStatus",
    "UnencryptedClient",
    "construct_event",
    "MomoflowClient",
    "MomoflowError",
    "MomoflowTimeout",
    "NotFound",
    "NotRefundable",
    "Problem",
    "ReferenceConflict",
    "RefundNotSupported",
    "RateLimited",
    "ReportDestination",
    "ServiceUnavailable",
    "SyncMomoflowClient",
    "Unauthenticated",
    "ValidationFailed",
    "is_campaign_settled",
    "is_settled",
    "start_payout_on_temporal",
]

#: Attempts per call, the first included (only ``503``, ``429`` and connection errors are
#: retried).
DEFAULT_MAX_ATTEMPTS = 3
#: A ``Retry-After`` longer than this is cut to this (seconds).
MAX_RETRY_DELAY_S = 30.0
#: ``POST /v1/payins`` waits up to 20 s for the provider's payment link before answering,
#: so that call gets at least this timeout (seconds).
PAYIN_CREATE_TIMEOUT_S = 30.0
#: ``POST /v1/campaigns`` uploads and checks the whole file before answering (up to
#: ``MOMOFLOW_CAMPAIGNS__MAX_UPLOAD_BYTES``), so that call gets at least this timeout.
CAMPAIGN_SUBMIT_TIMEOUT_S = 120.0
#: The gateway reads every line's outcome before the report's first byte, so reading the
#: report may wait this long (seconds).
CAMPAIGN_REPORT_TIMEOUT_S = 600.0
#: A read inside ``wait_for_*`` gets at least this timeout, even right at the deadline.
MIN_READ_TIMEOUT_S = 1.0
#: ``wait_for_*`` asks the gateway to hold each read up to this long (seconds): under the
#: idle timeouts of common proxies and load balancers (30 s and more).
LONG_POLL_S = 25.0
#: With less time than this left, a read is not held (seconds).
MIN_LONG_POLL_S = 0.05
#: A gateway that does not hold reads gets pauses between them growing up to this (or to
#: ``poll_interval``, when that is longer), in seconds.
MAX_POLL_INTERVAL_S = 5.0
#: Items per page the list iterators ask for by default (``page_size``): the gateway's
#: largest page.
LIST_PAGE_SIZE = 100
#: The transactions export streams rows as the gateway reads them; a pause between two
#: chunks may last this long (seconds).
EXPORT_READ_TIMEOUT_S = 120.0

StateT = TypeVar("StateT", bound=TransactionState)
T = TypeVar("T")
#: A campaign file: its bytes, a path (sent in chunks, opened again for a retry) or a
#: binary stream (sent in chunks from its current position; retried only if seekable).
CampaignFile: TypeAlias = bytes | os.PathLike[str] | IO[bytes]
#: Where a report is written: a path (written whole or not at all) or a binary stream.
ReportDestination: TypeAlias = str | os.PathLike[str] | IO[bytes]
ResultT = TypeVar("ResultT", bound=pydantic.BaseModel)

# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One broken rule of a refused request: which field, which rule, a sentence."""

    field: str
    rule: str
    message: str


class MomoflowError(Exception):
    """Base of every error of this client.

    ``status`` is the HTTP status (None when no answer came), ``code`` the server's
    machine-readable ``error`` (e.g. ``reference_conflict``) and ``message`` its sentence.
    ``request_id`` is the gateway's ``X-Request-Id`` of the answer (quote it to the
    operator), and ``response`` the answer itself; both None when no answer came.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        response: httpx.Response | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.response = response


class ValidationFailed(MomoflowError):
    """``422``: the request breaks rules; ``problems`` lists every one. Nothing started."""

    def __init__(
        self,
        message: str,
        *,
        problems: Sequence[Problem] = (),
        status: int | None = 422,
        code: str | None = "validation_failed",
    ):
        details = "; ".join(f"{p.field}: {p.message}" for p in problems)
        super().__init__(f"{message}: {details}" if details else message, status=status, code=code)
        # str() lists the problems; ``message`` stays the server's sentence, as documented.
        self.message = message
        self.problems = list(problems)


class ReferenceConflict(MomoflowError):
    """``409``: the reference was already used for a different request."""


class NotFound(MomoflowError):
    """``404``: no transaction (or refund) with this reference for this API key."""


class Unauthenticated(MomoflowError):
    """``401``: the API key is missing or unknown."""


class NotRefundable(MomoflowError):
    """The payin cannot be refunded (``payin_not_refundable``: e.g. it did not succeed)."""


class RefundNotSupported(MomoflowError):
    """The payin's provider offers no refunds through its API (``refund_not_supported``)."""


class CampaignStateConflict(MomoflowError):
    """``409 campaign_state``: the campaign cannot do that now (approve a campaign still in
    pre-flight, retry one that is not blocked, …); the message says why."""


class ServiceUnavailable(MomoflowError):
    """``503`` (or no answer at all) after every retry. Retry later with the same reference:
    a write may have been accepted. ``retry_after`` is the server's hint, in seconds."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 503,
        code: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class RateLimited(ServiceUnavailable):
    """``429`` after every retry: the merchant sent more requests than its limit allows
    (``rate_limited``), or has as many campaigns in pre-flight as it may
    (``too_many_preflights``). Nothing was started; retried like a ``503``, after
    ``retry_after`` seconds."""


class MomoflowTimeout(MomoflowError):
    """``wait_for_*`` reached its deadline; ``last_state`` is the last state read (None when
    no read succeeded; ``wait_for_campaign`` sets ``last_progress`` instead). The
    transaction goes on: this is not a failure of the payment."""

    def __init__(
        self,
        message: str,
        *,
        last_state: TransactionState | None,
        last_progress: CampaignProgress | None = None,
    ):
        super().__init__(message)
        self.last_state = last_state
        self.last_progress = last_progress


_ERRORS_BY_CODE: dict[str, type[MomoflowError]] = {
    "validation_failed": ValidationFailed,
    "reference_conflict": ReferenceConflict,
    "not_found": NotFound,
    "unauthenticated": Unauthenticated,
    "payin_not_refundable": NotRefundable,
    "refund_not_supported": RefundNotSupported,
    "rate_limited": RateLimited,
    "too_many_preflights": RateLimited,
    "campaign_state": CampaignStateConflict,
}
_ERRORS_BY_STATUS: dict[int, type[MomoflowError]] = {
    401: Unauthenticated,
    404: NotFound,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def _problems(raw: object) -> list[Problem]:
    if not isinstance(raw, list):
        return []
    return [
        Problem(str(p.get("field", "")), str(p.get("rule", "")), str(p.get("message", "")))
        for p in raw
        if isinstance(p, dict)
    ]


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP date), None when absent or bad."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _error_for(response: httpx.Response) -> MomoflowError:
    """The error an unsuccessful answer stands for (by the body's ``error``, else the
    status). Its message is the server's ``message``; nothing of the request is echoed."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = body.get("error") if isinstance(body.get("error"), str) else None
    server_message = body.get("message")
    message = (
        server_message
        if isinstance(server_message, str) and server_message
        else f"HTTP {response.status_code} {response.reason_phrase}".strip()
    )
    status = response.status_code
    cls = _ERRORS_BY_CODE.get(code or "") or _ERRORS_BY_STATUS.get(status, MomoflowError)
    error: MomoflowError
    if cls is ValidationFailed:
        error = ValidationFailed(
            message, problems=_problems(body.get("problems")), status=status, code=code
        )
    elif issubclass(cls, ServiceUnavailable):
        error = cls(message, status=status, code=code, retry_after=_retry_after(response))
    else:
        error = cls(message, status=status, code=code)
    error.request_id = response.headers.get(REQUEST_ID_HEADER)
    error.response = response
    return error


@dataclass(frozen=True)
class CreateResult(Generic[ResultT]):
    """What a write answered: the ``state``, and whether this request ``created`` it.

    ``created`` is True when the gateway answered ``201`` (a new payout, payin, refund or
    campaign) and False when it answered ``200``: the same reference and request were seen
    before, and ``state`` is that transaction's current state (a replay; nothing new was
    started). After a retry of an answer lost on the way (a timeout, a dropped
    connection), the gateway may have created it on the lost attempt and answer the retry
    ``200``: ``created`` then says False for a transaction this very call started.
    ``request_id`` is the answer's ``X-Request-Id``, to quote to momoflow's operator.
    """

    state: ResultT
    created: bool
    request_id: str | None = None

    @property
    def replayed(self) -> bool:
        """True when the gateway answered with an existing transaction (``200``)."""
        return not self.created


def is_settled(state: TransactionState) -> bool:
    """The default end of ``wait_for_*``: a final status, or ``reconciling`` (the outcome
    is unknown and needs an operator or the reconciliation sweep; it may take days)."""
    return state.status.is_final or state.status is TransactionStatus.RECONCILING


def is_campaign_settled(progress: CampaignProgress) -> bool:
    """The default end of ``wait_for_campaign``: a final phase (``completed``,
    ``cancelled``, ``rejected``), or ``blocked`` (it waits for a person to fix the cause
    and retry, which may take any time)."""
    return progress.phase.is_final or progress.phase is CampaignPhase.BLOCKED


# --------------------------------------------------------------------------- request plans
#
# A plan is a generator that yields what to do (send a request, or sleep) and receives what
# happened (the response, or the httpx error). The async and sync clients only execute
# those steps, so everything else (retries, errors, polling deadlines) exists once.


@dataclass(frozen=True)
class _Upload:
    """A request body sent in chunks from a file or a binary stream, never whole in memory.

    A file is opened again for each attempt, and a seekable stream rewound to where it
    was, so the upload can be retried; a stream that cannot seek is sent once."""

    path: Path | None = None
    stream: IO[bytes] | None = None
    start: int | None = None

    @classmethod
    def of(cls, source: os.PathLike[str] | IO[bytes]) -> _Upload:
        """The upload of a path or of a binary stream (from its current position)."""
        if isinstance(source, os.PathLike):
            return cls(path=Path(source))
        start = source.tell() if source.seekable() else None
        return cls(stream=source, start=start)

    @property
    def retryable(self) -> bool:
        """True when the body can be sent again from its beginning."""
        return self.path is not None or self.start is not None

    @contextmanager
    def opened(self) -> Iterator[IO[bytes]]:
        """The body, at its beginning; a file opened here is closed after the send."""
        if self.path is not None:
            with self.path.open("rb") as body:
                yield body
            return
        assert self.stream is not None
        if self.start is not None:
            self.stream.seek(self.start)
        yield self.stream


@dataclass(frozen=True)
class _Send:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    timeout: float | httpx.Timeout
    json: Any = None
    content: bytes | None = field(default=None, repr=False)
    params: dict[str, str] | None = None
    upload: _Upload | None = field(default=None, repr=False)
    #: Answer with the body unread (a success's body is then the caller's to read and
    #: close; an error's is read here, to be mapped).
    stream: bool = False


@dataclass(frozen=True)
class _Sleep:
    seconds: float


_Step: TypeAlias = _Send | _Sleep
_Outcome: TypeAlias = httpx.Response | httpx.HTTPError | None
_Plan: TypeAlias = Generator[_Step, _Outcome, T]

#: Connection-level failures worth a retry (the request may or may not have arrived; every
#: call here is idempotent, so sending it again is safe).
_RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class _Kind(Generic[StateT]):
    """What differs between payouts, payins and refunds on the wire."""

    name: str
    prefix: str
    state: type[StateT]
    suffix: str = ""

    def path(self, reference: str) -> str:
        """The resource of ``reference`` (checked, so that it cannot change the path)."""
        if not is_valid_reference(reference):
            raise ValueError(f"invalid reference {reference!r}: must match {REFERENCE_PATTERN}")
        return f"{self.prefix}/{quote(reference, safe='')}{self.suffix}"


_PAYOUTS = _Kind("payout", "/v1/payouts", PayoutState)
_PAYINS = _Kind("payin", "/v1/payins", PayinState)
_REFUNDS = _Kind("refund", "/v1/payins", RefundState, suffix="/refund")


ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


def _parse(model: type[ModelT]) -> Callable[[httpx.Response], ModelT]:
    def parse(response: httpx.Response) -> ModelT:
        # Unknown fields are ignored, so that a newer server does not break this client.
        return model.model_validate_json(response.content, extra="ignore")

    return parse


def _written(model: type[ResultT]) -> Callable[[httpx.Response], CreateResult[ResultT]]:
    parse = _parse(model)

    def written(response: httpx.Response) -> CreateResult[ResultT]:
        return CreateResult(
            state=parse(response),
            created=response.status_code == httpx.codes.CREATED,
            request_id=response.headers.get(REQUEST_ID_HEADER),
        )

    return written


def _state_of(plan: _Plan[CreateResult[ResultT]]) -> _Plan[ResultT]:
    """The plan of a write whose caller wants the state only (the original methods)."""
    result = yield from plan
    return result.state


def _campaign_path(reference: str, what: str = "") -> str:
    if not is_valid_reference(reference):
        raise ValueError(f"invalid reference {reference!r}: must match {REFERENCE_PATTERN}")
    return f"/v1/campaigns/{quote(reference, safe='')}{what}"


_CAMPAIGN_TYPES = {FileFormat.CSV: "text/csv", FileFormat.JSONL: "application/x-ndjson"}


@dataclass(frozen=True)
class CampaignSubmission:
    """How a campaign file is submitted (``POST /v1/campaigns``'s options).

    ``max_in_flight_per_provider`` None sizes each provider's window from its rate limit;
    ``outage_error_threshold`` (provider errors in a row that pause a provider) and
    ``outage_probe_interval_s`` (seconds between checks of a paused provider) None keep
    the gateway's defaults (5 and 60).
    """

    file_format: FileFormat = FileFormat.CSV
    name: str = ""
    auto_approve: bool = False
    max_in_flight_per_provider: int | None = None
    outage_error_threshold: int | None = None
    outage_probe_interval_s: int | None = None

    def params(self) -> dict[str, str]:
        """The query parameters of the submission."""
        params = {"name": self.name, "auto_approve": "true" if self.auto_approve else "false"}
        optional = {
            "max_in_flight_per_provider": self.max_in_flight_per_provider,
            "outage_error_threshold": self.outage_error_threshold,
            "outage_probe_interval_s": self.outage_probe_interval_s,
        }
        params.update({key: str(value) for key, value in optional.items() if value is not None})
        return params


def _request_body(model: type[pydantic.BaseModel], request: object) -> dict[str, Any]:
    """The JSON body of a request given as a model or a mapping, validated here first (a
    bad mapping raises ``pydantic.ValidationError`` before anything is sent)."""
    if not isinstance(request, model):
        request = model.model_validate(request)
    assert isinstance(request, pydantic.BaseModel)
    return request.model_dump(mode="json", exclude_unset=True)


def _until(
    until: Callable[[ResultT], bool] | Collection[str], marker: Callable[[ResultT], str]
) -> Callable[[ResultT], bool]:
    if callable(until):
        return until
    values = {until} if isinstance(until, str) else {str(s) for s in until}
    return lambda state: marker(state) in values


class _Api:
    """The plans of every call; holds the address, the key and the retry policy."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float, max_attempts: int):
        if not api_key or api_key.strip() != api_key:
            raise ValueError("api_key must be a non-empty key without surrounding spaces")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"momoflow-client/{momoflow.__version__}",
        }
        self.timeout = timeout
        self.max_attempts = max_attempts

    def __repr__(self) -> str:
        return f"_Api(base_url={self.base_url!r})"

    def call(
        self,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        *,
        json: Any = None,
        content: bytes | None = None,
        upload: _Upload | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        params: dict[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        attempts: int | None = None,
        stream: bool = False,
    ) -> _Plan[T]:
        """One call, retried on 503, 429 and connection errors only (never on another
        status), and only when its body can be sent again."""
        limit = attempts or self.max_attempts
        if upload is not None and not upload.retryable:
            limit = 1
        headers = dict(self._headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        send = _Send(
            method,
            f"{self.base_url}{path}",
            headers,
            timeout=timeout or self.timeout,
            json=json,
            content=content,
            params=params,
            upload=upload,
            stream=stream,
        )
        for attempt in range(1, limit + 1):
            outcome = yield send
            if isinstance(outcome, httpx.Response):
                if outcome.is_success:
                    try:
                        return parse(outcome)
                    except pydantic.ValidationError as exc:
                        raise MomoflowError(
                            f"the answer to {method} {path} does not match this client's "
                            f"version of momoflow ({exc.error_count()} difference(s), first: "
                            f"{exc.errors()[0]['msg']})",
                            status=outcome.status_code,
                            code="unexpected_answer",
                            request_id=outcome.headers.get(REQUEST_ID_HEADER),
                            response=outcome,
                        ) from exc
                    except ValueError as exc:
                        raise MomoflowError(
                            f"unexpected answer to {method} {path}: {exc}",
                            status=outcome.status_code,
                            code="unexpected_answer",
                            request_id=outcome.headers.get(REQUEST_ID_HEADER),
                            response=outcome,
                        ) from exc
                error = _error_for(outcome)
                if not isinstance(error, ServiceUnavailable) or attempt == limit:
                    raise error
                delay = error.retry_after
            elif isinstance(outcome, _RETRYABLE):
                if attempt == limit:
                    raise ServiceUnavailable(
                        f"no answer from momoflow ({type(outcome).__name__}) after "
                        f"{limit} attempt{'s' if limit > 1 else ''}",
                        status=None,
                    ) from outcome
                delay = None
            elif isinstance(outcome, httpx.HTTPError):
                raise MomoflowError(f"{method} {path} failed: {outcome}") from outcome
            else:  # pragma: no cover - the clients always answer a send
                raise RuntimeError("a send step got no outcome")
            if delay is None:
                delay = 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            yield _Sleep(min(delay, MAX_RETRY_DELAY_S))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ transactions

    def create(
        self, kind: _Kind[StateT], model: type[pydantic.BaseModel], request: object
    ) -> _Plan[CreateResult[StateT]]:
        body = _request_body(model, request)
        timeout = max(self.timeout, PAYIN_CREATE_TIMEOUT_S) if kind is _PAYINS else None
        return self.call("POST", kind.prefix, _written(kind.state), json=body, timeout=timeout)

    def refund(
        self, reference: str, reason: str, notify_url: str | None
    ) -> _Plan[CreateResult[RefundState]]:
        body = (
            {"reason": reason}
            if notify_url is None
            else {"reason": reason, "notify_url": notify_url}
        )
        return self.call("POST", _REFUNDS.path(reference), _written(RefundState), json=body)

    def get(self, kind: _Kind[StateT], reference: str) -> _Plan[StateT]:
        return self.call("GET", kind.path(reference), _parse(kind.state))

    # ------------------------------------------------------------ records

    def list_page(self, kind: _Kind[StateT], params: dict[str, str]) -> _Plan[_Listed[StateT]]:
        """One page of ``GET /v1/payouts`` (payins, refunds)."""
        return self.call("GET", _LIST_PATHS[kind.name], _listed(kind.state), params=params)

    def export_stream(self, params: dict[str, str]) -> _Plan[httpx.Response]:
        """The statement's answer, its body unread (the caller reads and closes it)."""
        return self.call(
            "GET",
            "/v1/transactions/export.csv",
            lambda r: r,
            accept="text/csv",
            params=params,
            timeout=httpx.Timeout(self.timeout, read=max(self.timeout, EXPORT_READ_TIMEOUT_S)),
            stream=True,
        )

    def balances(self) -> _Plan[list[AccountBalance]]:
        return self.call("GET", "/v1/balances", _balance_rows)

    # ------------------------------------------------------------ campaigns

    def submit_campaign(
        self, reference: str, data: CampaignFile, options: CampaignSubmission
    ) -> _Plan[CreateResult[CampaignProgress]]:
        _campaign_path(reference)  # checked before anything is sent
        params = {"reference": reference, **options.params()}
        if isinstance(data, bytes):
            content, upload = data, None
        else:
            content, upload = None, _Upload.of(data)
        return self.call(
            "POST",
            "/v1/campaigns",
            _written(CampaignProgress),
            content=content,
            upload=upload,
            content_type=_CAMPAIGN_TYPES[options.file_format],
            params=params,
            timeout=max(self.timeout, CAMPAIGN_SUBMIT_TIMEOUT_S),
        )

    def campaign(self, reference: str, what: str = "") -> _Plan[CampaignProgress]:
        return self.call("GET", _campaign_path(reference, what), _parse(CampaignProgress))

    def campaign_problems(self, reference: str) -> _Plan[CampaignProblems]:
        return self.call("GET", _campaign_path(reference, "/problems"), _parse(CampaignProblems))

    def campaign_report(self, reference: str) -> _Plan[str]:
        return self.call(
            "GET",
            _campaign_path(reference, "/report"),
            lambda r: r.text,
            accept="text/csv",
            timeout=self._report_timeout(),
        )

    def campaign_report_stream(self, reference: str) -> _Plan[httpx.Response]:
        """The report's answer, its body unread (the caller reads and closes it)."""
        return self.call(
            "GET",
            _campaign_path(reference, "/report"),
            lambda r: r,
            accept="text/csv",
            timeout=self._report_timeout(),
            stream=True,
        )

    def _report_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=max(self.timeout, CAMPAIGN_REPORT_TIMEOUT_S))

    def control_campaign(
        self, reference: str, action: str, body: pydantic.BaseModel
    ) -> _Plan[CampaignProgress]:
        return self.call(
            "POST",
            _campaign_path(reference, f"/{action}"),
            _parse(CampaignProgress),
            json=body.model_dump(mode="json", exclude_none=True),
        )

    def wait(
        self,
        kind: _Kind[StateT],
        reference: str,
        *,
        timeout: float,
        poll_interval: float,
        until: Callable[[StateT], bool] | Collection[str],
    ) -> _Plan[StateT]:
        """Read the state until ``until`` holds, long-polling the gateway, until
        ``timeout``."""
        watched = _Watched(
            kind.name,
            reference,
            kind.path(reference),
            _parse(kind.state),
            "while_status",
            _status,
        )
        return self._wait(watched, timeout, poll_interval, _until(until, _status))

    def wait_campaign(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float,
        until: Callable[[CampaignProgress], bool] | Collection[str],
    ) -> _Plan[CampaignProgress]:
        """Read the campaign's progress until ``until`` holds, like :meth:`wait`."""
        watched = _Watched(
            "campaign",
            reference,
            _campaign_path(reference),
            _parse(CampaignProgress),
            "while_phase",
            _phase,
        )
        return self._wait(watched, timeout, poll_interval, _until(until, _phase))

    def _wait(
        self,
        watched: _Watched[ResultT],
        timeout: float,
        poll_interval: float,
        done: Callable[[ResultT], bool],
    ) -> _Plan[ResultT]:
        """The first read answers at once; each next one asks the gateway to hold it (up to
        ``LONG_POLL_S``) while the status is the one last seen. A gateway that answers early
        with nothing new (an older one, which ignores ``wait_s``, or a closed transaction
        that cannot change) gets pauses instead, from ``poll_interval`` doubling up to
        ``MAX_POLL_INTERVAL_S``. A ``503`` or a connection error is not fatal: the next read
        is tried, at the latest at the deadline. 4xx errors end the wait at once."""
        if timeout < 0 or poll_interval <= 0:
            raise ValueError("timeout must be >= 0 and poll_interval > 0")
        deadline = time.monotonic() + timeout
        last: ResultT | None = None
        unavailable: ServiceUnavailable | None = None
        pause = poll_interval
        while True:
            remaining = deadline - time.monotonic()
            hold = round(min(remaining, LONG_POLL_S), 3)
            params: dict[str, str] | None = None
            if last is not None and hold >= MIN_LONG_POLL_S:
                params = {"wait_s": f"{hold:g}", watched.param: watched.marker(last)}
            read_timeout = max(min(self.timeout, remaining), MIN_READ_TIMEOUT_S)
            asked = time.monotonic()
            nothing_new = False
            try:
                state = yield from self.call(
                    "GET",
                    watched.path,
                    watched.parse,
                    params=params,
                    timeout=read_timeout + (hold if params else 0.0),
                    attempts=1,
                )
            except ServiceUnavailable as exc:
                unavailable = exc
                nothing_new = True
                wait = max(pause, exc.retry_after or 0.0)
            else:
                if done(state):
                    return state
                # Not held (too little time left to ask) counts as answered early.
                answered_early = params is None or time.monotonic() - asked < hold
                unchanged = last is not None and watched.marker(state) == watched.marker(last)
                nothing_new = answered_early and unchanged
                wait = pause
                last = state
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = f"still {watched.marker(last)}" if last is not None else "never read"
                raise MomoflowTimeout(
                    f"{watched.name} {watched.reference!r} {seen} after {timeout:g}s",
                    last_state=last if isinstance(last, TransactionState) else None,
                    last_progress=last if isinstance(last, CampaignProgress) else None,
                ) from unavailable
            if nothing_new:
                yield _Sleep(min(wait, remaining))
                pause = min(pause * 2, max(poll_interval, MAX_POLL_INTERVAL_S))


@dataclass(frozen=True)
class _Watched(Generic[ResultT]):
    """What a wait reads: the resource, how to parse it, and the long-poll's parameter."""

    name: str
    reference: str
    path: str
    parse: Callable[[httpx.Response], ResultT]
    #: The long-poll's query parameter, and what it is given: the status (or phase) the
    #: wait last saw.
    param: str
    marker: Callable[[ResultT], str]


def _status(state: TransactionState) -> str:
    return state.status.value


def _phase(progress: CampaignProgress) -> str:
    return progress.phase.value


def _result(stop: StopIteration) -> Any:
    return stop.value


#: Bytes read from a file or stream per chunk of an upload.
UPLOAD_CHUNK_BYTES = 64 * 1024


async def _chunks(body: IO[bytes]) -> AsyncIterator[bytes]:
    """An async client's upload body: the stream read in a thread, chunk by chunk."""
    while chunk := await asyncio.to_thread(body.read, UPLOAD_CHUNK_BYTES):
        yield chunk


def _download_cut(url: httpx.URL, exc: httpx.HTTPError) -> ServiceUnavailable:
    """The error of a report whose download stopped half-way."""
    reason = str(exc) or type(exc).__name__
    return ServiceUnavailable(f"the report download from {url} stopped: {reason}", status=None)


@contextmanager
def _report_file(destination: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A file beside ``destination`` that becomes it only once written whole: a failed
    download never leaves half a report."""
    target = Path(destination).resolve()
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as sink:
            yield sink
        os.replace(temp_name, target)
    except BaseException:
        os.unlink(temp_name)
        raise


# --------------------------------------------------------------------------- records


class AccountBalance(pydantic.BaseModel):
    """momoflow's account at one provider, in one currency (``GET /v1/balances``). These
    are the deployment's provider accounts, shared by every merchant it serves.

    ``expected`` is what momoflow's journal says the account holds, ``reported`` what the
    provider last reported (``reported_at``, ``source``; None until it reported one) and
    ``difference`` is ``reported - expected``. Amounts in the currency's minor unit. Money
    put in or taken out outside momoflow (top-ups, withdrawals) is not in the journal, so
    a steady difference is normal."""

    model_config = pydantic.ConfigDict(frozen=True)

    provider: ProviderName
    currency: Currency
    expected: int
    reported: int | None = None
    reported_at: datetime | None = None
    source: str | None = None
    difference: int | None = None


class _BalanceList(pydantic.BaseModel):
    data: list[AccountBalance]


class _RawPage(pydantic.BaseModel):
    data: list[dict[str, Any]]
    has_more: bool


@dataclass(frozen=True)
class _Listed(Generic[StateT]):
    """One page of a list: its states, newest first, and whether more follow."""

    data: list[StateT]
    has_more: bool


#: Where each kind is listed.
_LIST_PATHS = {"payout": "/v1/payouts", "payin": "/v1/payins", "refund": "/v1/refunds"}


def _listed(state: type[StateT]) -> Callable[[httpx.Response], _Listed[StateT]]:
    def parse(response: httpx.Response) -> _Listed[StateT]:
        # Unknown fields are ignored, as in every answer (a newer server may add some).
        page = _RawPage.model_validate_json(response.content, extra="ignore")
        states = [state.model_validate(item, extra="ignore") for item in page.data]
        return _Listed(states, page.has_more)

    return parse


def _balance_rows(response: httpx.Response) -> list[AccountBalance]:
    return _BalanceList.model_validate_json(response.content, extra="ignore").data


def _period_params(created_gte: datetime | None, created_lte: datetime | None) -> dict[str, str]:
    """``created_gte`` and ``created_lte`` as query parameters (ISO 8601); a time without a
    timezone is a ``ValueError``, before anything is sent."""
    params: dict[str, str] = {}
    for name, moment in (("created_gte", created_gte), ("created_lte", created_lte)):
        if moment is None:
            continue
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must have a timezone (datetime.now(UTC), not now())")
        params[name] = moment.isoformat()
    return params


def _list_params(
    *,
    status: TransactionStatus | str | None,
    provider: ProviderName | str | None,
    country: Country | str | None,
    campaign: str | None,
    created_gte: datetime | None,
    created_lte: datetime | None,
    page_size: int,
) -> dict[str, str]:
    """The query of a list's first page; ``ValueError`` for a bad ``page_size`` or a time
    without a timezone (the gateway checks the other filters: ``ValidationFailed``)."""
    if not 1 <= page_size <= LIST_PAGE_SIZE:
        raise ValueError(f"page_size must be 1 to {LIST_PAGE_SIZE}, not {page_size}")
    params = {"limit": str(page_size)}
    filters = {"status": status, "provider": provider, "country": country, "campaign": campaign}
    params.update({name: str(value) for name, value in filters.items() if value is not None})
    params.update(_period_params(created_gte, created_lte))
    return params


# --------------------------------------------------------------------------- async client


class MomoflowClient:
    """Async client of the momoflow gateway.

    ``http`` injects an ``httpx.AsyncClient`` (tests, custom transports); it is then the
    caller's to close. ``timeout`` (seconds) applies to each request, whatever the client.
    Writes are idempotent on the reference, so every call is retried on ``503`` and
    ``429`` (honouring ``Retry-After``, at most ``max_attempts`` attempts in all) and on
    connection errors; never on another status. Use as
    ``async with MomoflowClient(...) as momoflow:``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._api = _Api(base_url, api_key, timeout=timeout, max_attempts=max_attempts)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:
        return f"MomoflowClient(base_url={self._api.base_url!r})"

    @property
    def base_url(self) -> str:
        """The gateway's address, as given (without a trailing ``/``)."""
        return self._api.base_url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was injected."""
        if self._owns_http:
            await self._http.aclose()

    async def _run(self, plan: _Plan[T]) -> T:
        outcome: _Outcome = None
        try:
            while True:
                try:
                    step = plan.send(outcome)
                except StopIteration as stop:
                    result: T = _result(stop)
                    return result
                if isinstance(step, _Sleep):
                    await asyncio.sleep(step.seconds)
                    outcome = None
                    continue
                try:
                    outcome = await self._send(step)
                except httpx.HTTPError as exc:
                    outcome = exc
        finally:
            plan.close()

    async def _send(self, step: _Send) -> httpx.Response:
        if step.upload is None:
            return await self._send_body(step, step.content)
        with step.upload.opened() as body:
            return await self._send_body(step, _chunks(body))

    async def _send_body(
        self, step: _Send, content: bytes | AsyncIterator[bytes] | None
    ) -> httpx.Response:
        request = self._http.build_request(
            step.method,
            step.url,
            headers=step.headers,
            json=step.json,
            content=content,
            params=step.params,
            timeout=step.timeout,
        )
        response = await self._http.send(request, stream=step.stream)
        if step.stream and not response.is_success:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def create_payout(self, request: PayoutRequest | Mapping[str, Any]) -> PayoutState:
        """Pay a recipient; returns the payout's state (``created`` for a new one).

        A mapping is validated into :class:`PayoutRequest` first: a malformed one raises
        ``pydantic.ValidationError`` and sends nothing. Sending the same request again
        returns the same payout. Raises :class:`ValidationFailed` (business rules),
        :class:`ReferenceConflict`, :class:`Unauthenticated`, :class:`ServiceUnavailable`.
        :meth:`create_payout_result` says too whether this request created the payout.
        """
        return await self._run(_state_of(self._api.create(_PAYOUTS, PayoutRequest, request)))

    async def create_payout_result(
        self, request: PayoutRequest | Mapping[str, Any]
    ) -> CreateResult[PayoutState]:
        """:meth:`create_payout`, and whether the gateway created the payout now (``201``)
        or answered with the existing one (``200``, a replay): see :class:`CreateResult`."""
        return await self._run(self._api.create(_PAYOUTS, PayoutRequest, request))

    async def get_payout(self, reference: str) -> PayoutState:
        """The payout's live state; :class:`NotFound` when there is none."""
        return await self._run(self._api.get(_PAYOUTS, reference))

    async def wait_for_payout(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float = 1.0,
        until: Callable[[PayoutState], bool] | Collection[str] = is_settled,
    ) -> PayoutState:
        """Wait until ``until`` holds (a predicate, or a set of statuses; by default a
        final status or ``reconciling``). Raises :class:`MomoflowTimeout`, with the last
        state, when ``timeout`` seconds pass first.

        Each read after the first asks the gateway to hold it while the status is the one
        last seen (``?wait_s=…&while_status=…``, up to ``LONG_POLL_S``), so a payout
        that takes minutes costs a request per change of status, or per 25 s. A predicate
        about another field is checked on each answer. A gateway that does not hold reads
        (an older one) is read after ``poll_interval`` seconds, then twice as long each
        time, up to ``MAX_POLL_INTERVAL_S``."""
        plan = self._api.wait(
            _PAYOUTS, reference, timeout=timeout, poll_interval=poll_interval, until=until
        )
        return await self._run(plan)

    async def create_payin(self, request: PayinRequest | Mapping[str, Any]) -> PayinState:
        """Collect from a customer; returns the payin's state, which carries what the
        customer needs (``payment_url``, ``deep_links``, ``qr_code``, ``expires_at``) once
        the provider has answered. Same validation, idempotency and errors as
        :meth:`create_payout`."""
        return await self._run(_state_of(self._api.create(_PAYINS, PayinRequest, request)))

    async def create_payin_result(
        self, request: PayinRequest | Mapping[str, Any]
    ) -> CreateResult[PayinState]:
        """:meth:`create_payin`, and whether this request created the payin (see
        :class:`CreateResult`)."""
        return await self._run(self._api.create(_PAYINS, PayinRequest, request))

    async def get_payin(self, reference: str) -> PayinState:
        """The payin's live state; :class:`NotFound` when there is none."""
        return await self._run(self._api.get(_PAYINS, reference))

    async def wait_for_payin(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float = 1.0,
        until: Callable[[PayinState], bool] | Collection[str] = is_settled,
    ) -> PayinState:
        """Wait for the payin like :meth:`wait_for_payout` waits for a payout."""
        plan = self._api.wait(
            _PAYINS, reference, timeout=timeout, poll_interval=poll_interval, until=until
        )
        return await self._run(plan)

    async def refund_payin(
        self, reference: str, reason: str, *, notify_url: str | None = None
    ) -> RefundState:
        """Refund a succeeded payin in full. A payin has at most one refund: asking again
        returns it, whatever the reason. ``notify_url`` defaults to the payin's. Raises
        :class:`NotRefundable` (the payin has not succeeded), :class:`RefundNotSupported`
        (the provider has no refund API; the message says what to do), :class:`NotFound`."""
        return await self._run(_state_of(self._api.refund(reference, reason, notify_url)))

    async def refund_payin_result(
        self, reference: str, reason: str, *, notify_url: str | None = None
    ) -> CreateResult[RefundState]:
        """:meth:`refund_payin`, and whether this request started the refund or the payin's
        existing refund was returned (see :class:`CreateResult`)."""
        return await self._run(self._api.refund(reference, reason, notify_url))

    async def get_refund(self, reference: str) -> RefundState:
        """The refund of payin ``reference``; :class:`NotFound` when it has none."""
        return await self._run(self._api.get(_REFUNDS, reference))

    async def wait_for_refund(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float = 1.0,
        until: Callable[[RefundState], bool] | Collection[str] = is_settled,
    ) -> RefundState:
        """Wait for payin ``reference``'s refund like :meth:`wait_for_payout` waits for a
        payout."""
        plan = self._api.wait(
            _REFUNDS, reference, timeout=timeout, poll_interval=poll_interval, until=until
        )
        return await self._run(plan)

    # ------------------------------------------------------------ records

    def list_payouts(
        self,
        *,
        status: TransactionStatus | str | None = None,
        provider: ProviderName | str | None = None,
        country: Country | str | None = None,
        campaign: str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> AsyncGenerator[PayoutState, None]:
        """Your payouts, newest first, as the record store holds them: ``async for payout
        in momoflow.list_payouts(status="succeeded"):``. Pages of ``page_size`` (1 to 100)
        are read as the iteration needs them, following ``has_more`` and
        ``starting_after``; each page is one request, retried like any read. Filters (all
        optional, combined): ``status``, ``provider``, ``country``, ``campaign`` (its
        reference), ``created_gte`` and ``created_lte`` (timezone-aware datetimes,
        inclusive). A time without a timezone or a bad ``page_size`` raises ``ValueError``
        at once; a filter the gateway refuses raises :class:`ValidationFailed` when the
        iteration starts. Close the iterator (``aclose``) if you stop early."""
        params = _list_params(
            status=status,
            provider=provider,
            country=country,
            campaign=campaign,
            created_gte=created_gte,
            created_lte=created_lte,
            page_size=page_size,
        )
        return self._iterate(_PAYOUTS, params)

    def list_payins(
        self,
        *,
        status: TransactionStatus | str | None = None,
        provider: ProviderName | str | None = None,
        country: Country | str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> AsyncGenerator[PayinState, None]:
        """Your payins, newest first, page by page, like :meth:`list_payouts`."""
        params = _list_params(
            status=status,
            provider=provider,
            country=country,
            campaign=None,
            created_gte=created_gte,
            created_lte=created_lte,
            page_size=page_size,
        )
        return self._iterate(_PAYINS, params)

    def list_refunds(
        self,
        *,
        status: TransactionStatus | str | None = None,
        provider: ProviderName | str | None = None,
        country: Country | str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> AsyncGenerator[RefundState, None]:
        """Your refunds, newest first, page by page, like :meth:`list_payouts` (a refund's
        ``reference`` is its payin's)."""
        params = _list_params(
            status=status,
            provider=provider,
            country=country,
            campaign=None,
            created_gte=created_gte,
            created_lte=created_lte,
            page_size=page_size,
        )
        return self._iterate(_REFUNDS, params)

    async def _iterate(
        self, kind: _Kind[StateT], params: dict[str, str]
    ) -> AsyncGenerator[StateT, None]:
        query = dict(params)
        while True:
            page = await self._run(self._api.list_page(kind, query))
            for state in page.data:
                yield state
            if not page.has_more or not page.data:
                return
            query = {**params, "starting_after": page.data[-1].reference}

    async def iter_transactions_export(
        self, created_gte: datetime | None = None, created_lte: datetime | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Your statement (CSV, UTF-8: every payout, payin and refund created in the
        period, both bounds optional and inclusive, oldest first) in chunks as they
        arrive, never whole in memory. The request is sent when iteration starts, so its
        errors are raised there; a download that stops half-way raises
        :class:`ServiceUnavailable` (``status`` None): download it again. Close the
        iterator (``aclose``) if you stop early."""
        plan = self._api.export_stream(_period_params(created_gte, created_lte))
        response = await self._run(plan)
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _download_cut(response.url, exc) from exc
        finally:
            await response.aclose()

    async def export_transactions(
        self,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        *,
        to: ReportDestination,
    ) -> int:
        """Write your statement (CSV, see :meth:`iter_transactions_export`) to ``to``,
        chunk by chunk; the number of bytes written. A path is written whole or not at all
        (a file beside it is renamed once complete); a binary stream gets the chunks as
        they arrive. A time without a timezone raises ``ValueError`` before any request."""
        _period_params(created_gte, created_lte)
        if isinstance(to, str | os.PathLike):
            with _report_file(to) as sink:
                return await self._write_export(created_gte, created_lte, sink)
        return await self._write_export(created_gte, created_lte, to)

    async def _write_export(
        self, created_gte: datetime | None, created_lte: datetime | None, sink: IO[bytes]
    ) -> int:
        written = 0
        chunks = self.iter_transactions_export(created_gte, created_lte)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(sink.write, chunk)
                written += len(chunk)
        finally:
            await chunks.aclose()
        return written

    async def balances(self) -> list[AccountBalance]:
        """momoflow's provider accounts, per provider and currency: what the journal
        expects beside what the provider last reported (:class:`AccountBalance`). They are
        the deployment's accounts, shared by every merchant, not a balance of yours."""
        return await self._run(self._api.balances())

    # ------------------------------------------------------------ campaigns

    async def submit_campaign(
        self,
        reference: str,
        data: CampaignFile,
        options: CampaignSubmission | None = None,
    ) -> CampaignProgress:
        """Submit a campaign file (CSV or JSON lines, ``docs/campaigns.md``); returns its
        progress, in pre-flight. ``data`` is the file's bytes, its path, or a binary stream
        (a path or a stream is sent in chunks, never read whole into memory; a stream that
        cannot seek is sent once, without retries). The same file, name and options again
        under the same
        reference is the same campaign; another is a :class:`ReferenceConflict`. A file that
        cannot be read is a :class:`ValidationFailed` naming each problem; too many campaigns
        in pre-flight is a :class:`RateLimited` (retried after ``Retry-After``)."""
        plan = self._api.submit_campaign(reference, data, options or CampaignSubmission())
        return await self._run(_state_of(plan))

    async def submit_campaign_result(
        self,
        reference: str,
        data: CampaignFile,
        options: CampaignSubmission | None = None,
    ) -> CreateResult[CampaignProgress]:
        """:meth:`submit_campaign`, and whether this request created the campaign or the
        same file was already submitted under this reference (see :class:`CreateResult`)."""
        plan = self._api.submit_campaign(reference, data, options or CampaignSubmission())
        return await self._run(plan)

    async def get_campaign(self, reference: str) -> CampaignProgress:
        """The campaign's progress: phase, counts and amounts by status, rate, ETA."""
        return await self._run(self._api.campaign(reference))

    async def wait_for_campaign(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float = 1.0,
        until: Callable[[CampaignProgress], bool] | Collection[str] = is_campaign_settled,
    ) -> CampaignProgress:
        """Wait until ``until`` holds (a predicate, or a set of phases; by default a final
        phase or ``blocked``), long-polling on the phase like :meth:`wait_for_payout` on the
        status. Raises :class:`MomoflowTimeout`, with ``last_progress``, at ``timeout``."""
        plan = self._api.wait_campaign(
            reference, timeout=timeout, poll_interval=poll_interval, until=until
        )
        return await self._run(plan)

    async def get_campaign_problems(self, reference: str) -> CampaignProblems:
        """Pre-flight's verdict and every problem of every invalid line."""
        return await self._run(self._api.campaign_problems(reference))

    async def get_campaign_report(self, reference: str) -> str:
        """The campaign report (CSV text): every line, its status, provider ids and fees.
        For a large campaign, prefer :meth:`download_campaign_report`."""
        return await self._run(self._api.campaign_report(reference))

    async def iter_campaign_report(self, reference: str) -> AsyncGenerator[bytes, None]:
        """The campaign report (CSV, UTF-8) in chunks as they arrive, never whole in
        memory. The request is sent when iteration starts, so its errors (:class:`NotFound`,
        …) are raised there; a download that stops half-way raises
        :class:`ServiceUnavailable` (``status`` None). Close the iterator (``aclose``) if
        you stop early."""
        response = await self._run(self._api.campaign_report_stream(reference))
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise _download_cut(response.url, exc) from exc
        finally:
            await response.aclose()

    async def download_campaign_report(self, reference: str, destination: ReportDestination) -> int:
        """Write the campaign report (CSV) to ``destination``, chunk by chunk; the number
        of bytes written. A path is written whole or not at all (a file beside it is
        renamed once complete); a binary stream gets the chunks as they arrive. Errors as
        :meth:`iter_campaign_report`."""
        if isinstance(destination, str | os.PathLike):
            with _report_file(destination) as sink:
                return await self._write_report(reference, sink)
        return await self._write_report(reference, destination)

    async def _write_report(self, reference: str, sink: IO[bytes]) -> int:
        written = 0
        chunks = self.iter_campaign_report(reference)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(sink.write, chunk)
                written += len(chunk)
        finally:
            await chunks.aclose()
        return written

    async def approve_campaign(
        self, reference: str, approved_by: str, *, override_blocking: bool = False
    ) -> CampaignProgress:
        """Approve a campaign after pre-flight. ``approved_by`` is recorded;
        ``override_blocking`` approves despite a blocking pre-flight problem (recorded too).
        Raises :class:`CampaignStateConflict` when it is not awaiting approval."""
        body = ApproveRequest(approved_by=approved_by, override_blocking=override_blocking)
        return await self._run(self._api.control_campaign(reference, "approve", body))

    async def pause_campaign(
        self, reference: str, by: str, *, provider: ProviderName | None = None
    ) -> CampaignProgress:
        """Stop starting new lines (of one ``provider``, or all); lines in flight finish."""
        body = PauseRequest(by=by, provider=provider)
        return await self._run(self._api.control_campaign(reference, "pause", body))

    async def resume_campaign(
        self, reference: str, by: str, *, provider: ProviderName | None = None
    ) -> CampaignProgress:
        """Start lines again after a pause."""
        body = PauseRequest(by=by, provider=provider)
        return await self._run(self._api.control_campaign(reference, "resume", body))

    async def cancel_campaign(self, reference: str, by: str, reason: str = "") -> CampaignProgress:
        """Start no more lines; the ones sent are followed to their end and reported."""
        body = CancelRequest(by=by, reason=reason)
        return await self._run(self._api.control_campaign(reference, "cancel", body))

    async def retry_campaign(self, reference: str, by: str) -> CampaignProgress:
        """Run again the step a blocked campaign stopped at, once its cause is fixed."""
        body = RetryRequest(by=by)
        return await self._run(self._api.control_campaign(reference, "retry", body))


class SyncMomoflowClient:
    """Blocking twin of :class:`MomoflowClient` (same methods, same behaviour), on
    ``httpx.Client``. Use as ``with SyncMomoflowClient(...) as momoflow:``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = 15.0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._api = _Api(base_url, api_key, timeout=timeout, max_attempts=max_attempts)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return f"SyncMomoflowClient(base_url={self._api.base_url!r})"

    @property
    def base_url(self) -> str:
        """The gateway's address, as given (without a trailing ``/``)."""
        return self._api.base_url

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client, unless it was injected."""
        if self._owns_http:
            self._http.close()

    def _run(self, plan: _Plan[T]) -> T:
        outcome: _Outcome = None
        try:
            while True:
                try:
                    step = plan.send(outcome)
                except StopIteration as stop:
                    result: T = _result(stop)
                    return result
                if isinstance(step, _Sleep):
                    time.sleep(step.seconds)
                    outcome = None
                    continue
                try:
                    outcome = self._send(step)
                except httpx.HTTPError as exc:
                    outcome = exc
        finally:
            plan.close()

    def _send(self, step: _Send) -> httpx.Response:
        if step.upload is None:
            return self._send_body(step, step.content)
        with step.upload.opened() as body:
            return self._send_body(step, body)

    def _send_body(self, step: _Send, content: bytes | IO[bytes] | None) -> httpx.Response:
        request = self._http.build_request(
            step.method,
            step.url,
            headers=step.headers,
            json=step.json,
            content=content,
            params=step.params,
            timeout=step.timeout,
        )
        response = self._http.send(request, stream=step.stream)
        if step.stream and not response.is_success:
            try:
                response.read()
            finally:
                response.close()
        return response

    def create_payout(self, request: PayoutRequest | Mapping[str, Any]) -> PayoutState:
        """See :meth:`MomoflowClient.create_payout`."""
        return self._run(_state_of(self._api.create(_PAYOUTS, PayoutRequest, request)))

    def create_payout_result(
        self, request: PayoutRequest | Mapping[str, Any]
    ) -> CreateResult[PayoutState]:
        """See :meth:`MomoflowClient.create_payout_result`."""
        return self._run(self._api.create(_PAYOUTS, PayoutRequest, request))

    def get_payout(self, reference: str) -> PayoutState:
        """See :meth:`MomoflowClient.get_payout`."""
        return self._run(self._api.get(_PAYOUTS, reference))

    def wait_for_payout(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float = 1.0,
        until: Callable[[PayoutState], bool] | Collection[str] = is_settled,
    ) -> PayoutState:
        """See :meth:`MomoflowClient.wait_for_payout`."""
        plan = self._api.wait(
            _PAYOUTS, reference, timeout=timeout, poll_interval=poll_interval, until=until
        )
        return self._run(plan)

    def create_payin(self, request: PayinRequest | Mapping[str, Any]) -> PayinState:
        """See :meth:`MomoflowClient.create_payin`."""
        return self._run(_state_of(self._api.create(_PAYINS, PayinRequest, request)))

    def create_payin_result(
        self, request: PayinRequest | Mapping[str, Any]
    ) -> CreateResult[PayinState]:
        """See :meth:`MomoflowClient.create_payin_result`."""
        return self._run(self._api.create(_PAYINS, PayinRequest, request))

    def get_payin(self, reference: str) -> PayinState:
        """See :meth:`MomoflowClient.get_payin`."""
        return self._run(self._api.get(_PAYINS, reference))

    def wait_for_payin(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float = 1.0,
        until: Callable[[PayinState], bool] | Collection[str] = is_settled,
    ) -> PayinState:
        """See :meth:`MomoflowClient.wait_for_payin`."""
        plan = self._api.wait(
            _PAYINS, reference, timeout=timeout, poll_interval=poll_interval, until=until
        )
        return self._run(plan)

    def refund_payin(
        self, reference: str, reason: str, *, notify_url: str | None = None
    ) -> RefundState:
        """See :meth:`MomoflowClient.refund_payin`."""
        return self._run(_state_of(self._api.refund(reference, reason, notify_url)))

    def refund_payin_result(
        self, reference: str, reason: str, *, notify_url: str | None = None
    ) -> CreateResult[RefundState]:
        """See :meth:`MomoflowClient.refund_payin_result`."""
        return self._run(self._api.refund(reference, reason, notify_url))

    def get_refund(self, reference: str) -> RefundState:
        """See :meth:`MomoflowClient.get_refund`."""
        return self._run(self._api.get(_REFUNDS, reference))

    def wait_for_refund(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float = 1.0,
        until: Callable[[RefundState], bool] | Collection[str] = is_settled,
    ) -> RefundState:
        """See :meth:`MomoflowClient.wait_for_refund`."""
        plan = self._api.wait(
            _REFUNDS, reference, timeout=timeout, poll_interval=poll_interval, until=until
        )
        return self._run(plan)

    # ------------------------------------------------------------ records

    def list_payouts(
        self,
        *,
        status: TransactionStatus | str | None = None,
        provider: ProviderName | str | None = None,
        country: Country | str | None = None,
        campaign: str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> Generator[PayoutState, None, None]:
        """See :meth:`MomoflowClient.list_payouts` (``for payout in …``; ``close`` it if
        you stop early)."""
        params = _list_params(
            status=status,
            provider=provider,
            country=country,
            campaign=campaign,
            created_gte=created_gte,
            created_lte=created_lte,
            page_size=page_size,
        )
        return self._iterate(_PAYOUTS, params)

    def list_payins(
        self,
        *,
        status: TransactionStatus | str | None = None,
        provider: ProviderName | str | None = None,
        country: Country | str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> Generator[PayinState, None, None]:
        """See :meth:`MomoflowClient.list_payins`."""
        params = _list_params(
            status=status,
            provider=provider,
            country=country,
            campaign=None,
            created_gte=created_gte,
            created_lte=created_lte,
            page_size=page_size,
        )
        return self._iterate(_PAYINS, params)

    def list_refunds(
        self,
        *,
        status: TransactionStatus | str | None = None,
        provider: ProviderName | str | None = None,
        country: Country | str | None = None,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> Generator[RefundState, None, None]:
        """See :meth:`MomoflowClient.list_refunds`."""
        params = _list_params(
            status=status,
            provider=provider,
            country=country,
            campaign=None,
            created_gte=created_gte,
            created_lte=created_lte,
            page_size=page_size,
        )
        return self._iterate(_REFUNDS, params)

    def _iterate(
        self, kind: _Kind[StateT], params: dict[str, str]
    ) -> Generator[StateT, None, None]:
        query = dict(params)
        while True:
            page = self._run(self._api.list_page(kind, query))
            yield from page.data
            if not page.has_more or not page.data:
                return
            query = {**params, "starting_after": page.data[-1].reference}

    def iter_transactions_export(
        self, created_gte: datetime | None = None, created_lte: datetime | None = None
    ) -> Generator[bytes, None, None]:
        """See :meth:`MomoflowClient.iter_transactions_export` (``close`` it if you stop
        early)."""
        response = self._run(self._api.export_stream(_period_params(created_gte, created_lte)))
        try:
            yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise _download_cut(response.url, exc) from exc
        finally:
            response.close()

    def export_transactions(
        self,
        created_gte: datetime | None = None,
        created_lte: datetime | None = None,
        *,
        to: ReportDestination,
    ) -> int:
        """See :meth:`MomoflowClient.export_transactions`."""
        _period_params(created_gte, created_lte)
        if isinstance(to, str | os.PathLike):
            with _report_file(to) as sink:
                return self._write_export(created_gte, created_lte, sink)
        return self._write_export(created_gte, created_lte, to)

    def _write_export(
        self, created_gte: datetime | None, created_lte: datetime | None, sink: IO[bytes]
    ) -> int:
        written = 0
        with closing(self.iter_transactions_export(created_gte, created_lte)) as chunks:
            for chunk in chunks:
                sink.write(chunk)
                written += len(chunk)
        return written

    def balances(self) -> list[AccountBalance]:
        """See :meth:`MomoflowClient.balances`."""
        return self._run(self._api.balances())

    # ------------------------------------------------------------ campaigns

    def submit_campaign(
        self, reference: str, data: CampaignFile, options: CampaignSubmission | None = None
    ) -> CampaignProgress:
        """See :meth:`MomoflowClient.submit_campaign`."""
        plan = self._api.submit_campaign(reference, data, options or CampaignSubmission())
        return self._run(_state_of(plan))

    def submit_campaign_result(
        self, reference: str, data: CampaignFile, options: CampaignSubmission | None = None
    ) -> CreateResult[CampaignProgress]:
        """See :meth:`MomoflowClient.submit_campaign_result`."""
        plan = self._api.submit_campaign(reference, data, options or CampaignSubmission())
        return self._run(plan)

    def get_campaign(self, reference: str) -> CampaignProgress:
        """See :meth:`MomoflowClient.get_campaign`."""
        return self._run(self._api.campaign(reference))

    def wait_for_campaign(
        self,
        reference: str,
        *,
        timeout: float,
        poll_interval: float = 1.0,
        until: Callable[[CampaignProgress], bool] | Collection[str] = is_campaign_settled,
    ) -> CampaignProgress:
        """See :meth:`MomoflowClient.wait_for_campaign`."""
        plan = self._api.wait_campaign(
            reference, timeout=timeout, poll_interval=poll_interval, until=until
        )
        return self._run(plan)

    def get_campaign_problems(self, reference: str) -> CampaignProblems:
        """See :meth:`MomoflowClient.get_campaign_problems`."""
        return self._run(self._api.campaign_problems(reference))

    def get_campaign_report(self, reference: str) -> str:
        """See :meth:`MomoflowClient.get_campaign_report`."""
        return self._run(self._api.campaign_report(reference))

    def iter_campaign_report(self, reference: str) -> Generator[bytes, None, None]:
        """See :meth:`MomoflowClient.iter_campaign_report` (``close`` it if you stop
        early)."""
        response = self._run(self._api.campaign_report_stream(reference))
        try:
            yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise _download_cut(response.url, exc) from exc
        finally:
            response.close()

    def download_campaign_report(self, reference: str, destination: ReportDestination) -> int:
        """See :meth:`MomoflowClient.download_campaign_report`."""
        if isinstance(destination, str | os.PathLike):
            with _report_file(destination) as sink:
                return self._write_report(reference, sink)
        return self._write_report(reference, destination)

    def _write_report(self, reference: str, sink: IO[bytes]) -> int:
        written = 0
        with closing(self.iter_campaign_report(reference)) as chunks:
            for chunk in chunks:
                sink.write(chunk)
                written += len(chunk)
        return written

    def approve_campaign(
        self, reference: str, approved_by: str, *, override_blocking: bool = False
    ) -> CampaignProgress:
        """See :meth:`MomoflowClient.approve_campaign`."""
        body = ApproveRequest(approved_by=approved_by, override_blocking=override_blocking)
        return self._run(self._api.control_campaign(reference, "approve", body))

    def pause_campaign(
        self, reference: str, by: str, *, provider: ProviderName | None = None
    ) -> CampaignProgress:
        """See :meth:`MomoflowClient.pause_campaign`."""
        body = PauseRequest(by=by, provider=provider)
        return self._run(self._api.control_campaign(reference, "pause", body))

    def resume_campaign(
        self, reference: str, by: str, *, provider: ProviderName | None = None
    ) -> CampaignProgress:
        """See :meth:`MomoflowClient.resume_campaign`."""
        body = PauseRequest(by=by, provider=provider)
        return self._run(self._api.control_campaign(reference, "resume", body))

    def cancel_campaign(self, reference: str, by: str, reason: str = "") -> CampaignProgress:
        """See :meth:`MomoflowClient.cancel_campaign`."""
        body = CancelRequest(by=by, reason=reason)
        return self._run(self._api.control_campaign(reference, "cancel", body))

    def retry_campaign(self, reference: str, by: str) -> CampaignProgress:
        """See :meth:`MomoflowClient.retry_campaign`."""
        return self._run(self._api.control_campaign(reference, "retry", RetryRequest(by=by)))


async def start_payout_on_temporal(
    client: TemporalClient,
    merchant: str,
    request: PayoutRequest | Mapping[str, Any],
    settings: Settings,
) -> str:
    """Start a payout directly on Temporal, exactly as the gateway does; its workflow id.

    Same checks, workflow id, reuse policy, fingerprint memo, search attributes, timings and
    callback URL as ``POST /v1/payouts`` (both use :func:`momoflow.operations.start_payout`):
    the gateway then serves it, and the same request sent to the gateway is recognised as
    the same payout. ``settings`` must be the gateway's (the same ``fingerprint_secret``,
    ``task_queue_prefix`` and ``public_url``). Calling it again with the same request
    returns the same id. Raises :class:`ValidationFailed` (nothing started),
    :class:`ReferenceConflict`, ``pydantic.ValidationError`` for a malformed mapping, or
    :class:`UnencryptedClient` (nothing started) for a client made without momoflow's
    encrypting data converter: use :func:`momoflow.temporal.connect_client`. Like the
    gateway, it claims the payout's record first, in the record store of
    ``settings.database`` (:class:`momoflow.operations.RecordsUnavailable` when it cannot be
    reached: nothing started).
    """
    if not isinstance(request, PayoutRequest):
        request = PayoutRequest.model_validate(request)
    store = RecordStore.from_settings(settings.database)
    try:
        started = await start_payout(client, store, merchant, request, settings)
    except RequestProblems as exc:
        problems = _from_field_problems(exc.problems)
        raise ValidationFailed(str(exc), problems=problems, status=None) from None
    except ReferenceInUse as exc:
        raise ReferenceConflict(str(exc), status=None, code="reference_conflict") from None
    finally:
        await store.close()
    return started.workflow_id


def _from_field_problems(problems: Sequence[FieldProblem]) -> list[Problem]:
    return [Problem(p.field, p.rule, p.message) for p in problems]
