"""Links to the Temporal UI's workflow list, filtered on momoflow's search attributes.

In the Temporal UI a payout is a workflow, and a workflow's execution status says nothing
about the money: a declined payout is a workflow that *completed*, a ``reconciling`` one is
still *running*, and the list counts 0 failures. The business status and the amount are
search attributes (:mod:`momoflow.search_attributes`). This module builds links to the list
filtered on them (the UI's ``?query=`` parameter), for the ``momoflow dev`` banner and for
docs/operations.md: one click, nothing stored in the browser.

The columns that show each payment's status and amount (:data:`COLUMNS`) are a setting of
the operator's browser: no link can set them. docs/operations.md ("Finding payments in the
Temporal UI") has the steps. So does keeping a filter as a saved view (the UI's "Save as
New"; :attr:`PaymentView.name` is the name to give it): UI 2.54's ``savedQuery`` link
parameter, which its "Share" button copies, saves the view on some page loads only, so no
link here relies on it.

Example::

    from momoflow import temporal_ui

    for view in temporal_ui.standard_views():
        print(view.name, view.url("http://127.0.0.1:8233"))

Checked against Temporal UI 2.54 (the ``temporal`` CLI's dev server) by
``tests/test_temporal_ui.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from momoflow import search_attributes as sa
from momoflow.models import ProviderName, TransactionStatus

#: Statuses whose outcome is unknown: money may or may not have moved.
IN_DOUBT: tuple[str, ...] = (TransactionStatus.RECONCILING.value,)
#: Statuses of a payment that did not happen. A payout the provider refuses (for example an
#: unknown wallet) ends ``failed``; ``declined`` is a payin the customer refused.
NOT_PAID: tuple[str, ...] = (TransactionStatus.DECLINED.value, TransactionStatus.FAILED.value)
#: Everything an operator may have to look at: :data:`NOT_PAID` and :data:`IN_DOUBT`.
NEEDS_ATTENTION: tuple[str, ...] = NOT_PAID + IN_DOUBT

#: The custom search attributes to add as columns of the workflow list ("Configure
#: Columns"), in this order: the status, and the amount in its currency's minor unit. With
#: the default columns "Run ID", "Type" and "End" removed, they fit a 1536-pixel-wide
#: window; add ``PaymentProvider`` or ``MerchantReference`` on a wider one.
COLUMNS: tuple[str, ...] = (sa.STATUS.name, sa.AMOUNT.name, sa.CURRENCY.name)


def _literal(value: str) -> str:
    """``value`` as a double-quoted string of the visibility query language."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _condition(attribute: str, values: Iterable[str]) -> str:
    values = list(values)
    if not values:
        raise ValueError(f"{attribute}: at least one value is needed")
    if len(values) == 1:
        return f"{attribute} = {_literal(values[0])}"
    return f"{attribute} IN ({', '.join(_literal(v) for v in values)})"


def payment_query(
    *,
    statuses: Iterable[str] = (),
    provider: str | None = None,
    direction: str | None = None,
    merchant: str | None = None,
) -> str:
    """A visibility query on momoflow's search attributes; the conditions given are ANDed.

    ``payment_query(statuses=["failed", "reconciling"], provider="caurisflux")`` is
    ``PaymentProvider = "caurisflux" AND PaymentStatus IN ("failed", "reconciling")``.
    ``direction`` is ``payout`` or ``payin`` (a refund counts as ``payin``). No condition:
    the empty query (every workflow).
    """
    conditions = []
    if direction is not None:
        conditions.append(_condition(sa.DIRECTION.name, [direction]))
    if merchant is not None:
        conditions.append(_condition(sa.MERCHANT.name, [merchant]))
    if provider is not None:
        conditions.append(_condition(sa.PROVIDER.name, [provider]))
    statuses = list(statuses)
    if statuses:
        conditions.append(_condition(sa.STATUS.name, statuses))
    return " AND ".join(conditions)


def workflows_url(ui_base: str, query: str = "", *, namespace: str = "default") -> str:
    """The Temporal UI's workflow list of ``namespace``, filtered by the visibility
    ``query`` (no query: every workflow).

    ``ui_base`` is the UI's address, with its path prefix if it is served under one
    (``http://127.0.0.1:8233``, ``https://ops.example.com/temporal``). Everything is
    percent-encoded (spaces as ``%20``), so terminals and chat clients keep the whole link.
    """
    url = f"{ui_base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows"
    if not query:
        return url
    return f"{url}?{urlencode({'query': query}, quote_via=quote, safe='')}"


@dataclass(frozen=True)
class PaymentView:
    """A filtered workflow list: the name to save it under ("Save as New" in the UI) and
    its visibility query."""

    name: str
    query: str

    def url(self, ui_base: str, *, namespace: str = "default") -> str:
        """The one-click link: the UI's list filtered by :attr:`query`."""
        return workflows_url(ui_base, self.query, namespace=namespace)


#: ``reconciling`` payouts, payins and refunds: the outcome at the provider is unknown.
MONEY_IN_DOUBT = PaymentView("Money in doubt", payment_query(statuses=IN_DOUBT))
#: Payments that did not happen: failed (a refused payout too) or declined.
NOT_PAID_VIEW = PaymentView("Failed or declined", payment_query(statuses=NOT_PAID))
#: Both of the above in one list.
NEEDS_ATTENTION_VIEW = PaymentView("Needs attention", payment_query(statuses=NEEDS_ATTENTION))


def provider_view(provider: str) -> PaymentView:
    """:data:`NEEDS_ATTENTION_VIEW` for one provider (``caurisflux``, ``novasend``,
    ``mobilepay``): where to look first when a provider misbehaves."""
    return PaymentView(
        f"Needs attention: {provider}",
        payment_query(statuses=NEEDS_ATTENTION, provider=provider),
    )


def standard_views(providers: Iterable[str] = tuple(ProviderName)) -> tuple[PaymentView, ...]:
    """The views worth a link: needs attention, money in doubt, failed or declined, then
    needs attention per provider of ``providers`` (default: all three)."""
    return (
        NEEDS_ATTENTION_VIEW,
        MONEY_IN_DOUBT,
        NOT_PAID_VIEW,
        *(provider_view(str(p)) for p in providers),
    )


def view_links(
    ui_base: str,
    *,
    namespace: str = "default",
    providers: Iterable[str] = tuple(ProviderName),
) -> dict[str, str]:
    """Name → one-click link of every :func:`standard_views` view (for a banner)."""
    return {view.name: view.url(ui_base, namespace=namespace) for view in standard_views(providers)}
