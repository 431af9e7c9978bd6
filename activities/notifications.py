"""The activity that POSTs a signed notification to a merchant's URL.

One call is one delivery attempt; Temporal owns the retries and the workflow's retry policy
bounds them (``notification_horizon_s``). Every attempt sends the same body and event id
with a fresh signature timestamp, and reads the merchant's secret again, so a rotated
secret applies to the next attempt without touching the workflow's history.

Outcomes:

* any 2xx: a :class:`~momoflow.models.DeliveryReport`;
* any other status, a timeout or a connection error: a retryable ``ApplicationError`` of
  type ``MerchantEndpointUnavailable``, whose next retry delay is the merchant's
  ``Retry-After`` (at most one hour) when it sent one;
* 410 Gone: non-retryable ``MerchantEndpointGone`` (the merchant retired the endpoint);
* a host that is, or resolves to, an address momoflow must not reach (loopback, private,
  link-local, a cloud's metadata service; :mod:`momoflow.outbound`): non-retryable
  ``NotificationDestinationRefused``, and nothing is sent;
* a URL that is not an absolute http(s) URL: non-retryable ``InvalidNotificationUrl``;
* no secret for the merchant (``secret_for`` raises ``KeyError``): non-retryable
  ``NotificationSecretMissing``.

Messages name only the HTTP status or the error's class: never the secret, the body or the
URL (which may carry a token). Errors are raised ``from None`` so no cause chain reaches the
workflow history.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from momoflow.contract import (
    DELIVER_NOTIFICATION_ACTIVITY,
    INVALID_NOTIFICATION_URL,
    MERCHANT_ENDPOINT_GONE,
    MERCHANT_ENDPOINT_UNAVAILABLE,
    NOTIFICATION_DESTINATION_REFUSED,
    NOTIFICATION_SECRET_MISSING,
)
from momoflow.models import DeliveryReport, MerchantNotification
from momoflow.notifications import notification_body, notification_headers, retry_after_s, sign
from momoflow.outbound import DestinationRefused

#: The one status that tells us to stop delivering to an endpoint.
GONE = 410

_HOST = re.compile(r"[A-Za-z0-9._:-]+")


class DeliveryErrorDetails(BaseModel):
    """What a failed delivery's ``ApplicationError`` carries as its details (no secrets)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    #: The merchant's answer, or None when there was none (timeout, connection error).
    http_status: int | None
    #: ``HTTP <status>`` or the transport error's class name, e.g. ``ConnectError``.
    error: str


class NotificationActivities:
    """Merchant notification delivery, with its HTTP client and secrets injected by
    ``worker.py``.

    ``secret_for(merchant)`` returns the secret that signs that merchant's notifications
    (``Settings.notification_secret``) and raises ``KeyError`` when there is none.
    ``clock`` returns unix seconds; it stamps signatures and ``delivered_at``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        secret_for: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._secret_for = secret_for
        self._clock = clock

    @activity.defn(name=DELIVER_NOTIFICATION_ACTIVITY)
    async def deliver_notification(self, n: MerchantNotification) -> DeliveryReport:
        """POST ``n``, signed, to ``n.url``; a 2xx answer is a delivery (see the module)."""
        url = _checked_url(n.url)
        secret = self._secret(n.merchant)
        body = notification_body(n)
        headers = notification_headers(n, signature=sign(secret, body, int(self._clock())))
        try:
            # A redirect is not a delivery, and following one would send the signed body to
            # a host the merchant did not register. The answer's body is never read.
            request = self._http.build_request("POST", url, content=body, headers=headers)
            response = await self._http.send(request, follow_redirects=False, stream=True)
            await response.aclose()
        except DestinationRefused as exc:
            self._log_failure(n, "DestinationRefused")
            raise ApplicationError(
                f"notification not sent: {exc}",
                _details(n, http_status=None, error="DestinationRefused"),
                type=NOTIFICATION_DESTINATION_REFUSED,
                non_retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            error = type(exc).__name__
            self._log_failure(n, error)
            raise _unavailable(n, error=error, http_status=None, retry_after=None) from None

        status = response.status_code
        if 200 <= status < 300:
            activity.logger.info(
                "notification %s (%s) delivered: HTTP %d", n.event_id, n.event_type, status
            )
            return DeliveryReport(
                attempt=activity.info().attempt,
                http_status=status,
                delivered_at=datetime.fromtimestamp(self._clock(), UTC),
            )
        error = f"HTTP {status}"
        self._log_failure(n, error)
        if status == GONE:
            raise ApplicationError(
                "merchant endpoint answered HTTP 410 Gone: this notification is not retried",
                _details(n, http_status=status, error=error),
                type=MERCHANT_ENDPOINT_GONE,
                non_retryable=True,
            ) from None
        retry_after = retry_after_s(response.headers.get("Retry-After"), now=self._clock())
        raise _unavailable(n, error=error, http_status=status, retry_after=retry_after) from None

    def _secret(self, merchant: str) -> str:
        try:
            return self._secret_for(merchant)
        except KeyError:
            raise ApplicationError(
                f"no notification secret is configured for merchant {merchant}",
                type=NOTIFICATION_SECRET_MISSING,
                non_retryable=True,
            ) from None

    @staticmethod
    def _log_failure(n: MerchantNotification, error: str) -> None:
        activity.logger.warning(
            "notification %s (%s) not delivered: %s", n.event_id, n.event_type, error
        )


def _checked_url(url: str) -> httpx.URL:
    """``url`` parsed, or a non-retryable ``InvalidNotificationUrl`` (URL not quoted)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    # A host with characters no DNS name or IP literal has (httpx percent-encodes a space)
    # can never resolve: refusing it now beats retrying it until the horizon.
    if (
        parsed is None
        or parsed.scheme not in ("http", "https")
        or _HOST.fullmatch(parsed.raw_host.decode("ascii", "replace")) is None
    ):
        raise ApplicationError(
            "notification URL is not an absolute http(s) URL",
            type=INVALID_NOTIFICATION_URL,
            non_retryable=True,
        )
    return parsed


def _unavailable(
    n: MerchantNotification, *, error: str, http_status: int | None, retry_after: float | None
) -> ApplicationError:
    message = (
        f"merchant endpoint answered {error}"
        if http_status is not None
        else f"merchant endpoint unreachable ({error})"
    )
    return ApplicationError(
        message,
        _details(n, http_status=http_status, error=error),
        type=MERCHANT_ENDPOINT_UNAVAILABLE,
        # The SDK drops a zero delay (the policy's back-off applies); 1 s honours "retry now".
        next_retry_delay=None if retry_after is None else timedelta(seconds=max(1.0, retry_after)),
    )


def _details(n: MerchantNotification, *, http_status: int | None, error: str) -> object:
    details = DeliveryErrorDetails(event_id=n.event_id, http_status=http_status, error=error)
    return details.model_dump(mode="json")
