"""NovaSend wire models: request bodies and answers exactly as the API spells them.

Answers ignore unknown fields (the docs drift between versions, 2.11.1). Amounts are read
as exact :class:`~decimal.Decimal` values: top-level amounts are integers, amounts inside
``transaction`` are decimal strings such as ``"300.00"`` [N3, N13]; turning them into
integer minor units (and refusing fractions) is the mapping's job, which knows the currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from momoflow.models import ProviderName

PROVIDER = ProviderName.NOVASEND.value


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------- requests


class NovaSendAction(_Wire):
    """Where the customer's browser goes after the hosted confirmation [N4, N5]."""

    success_url: str = Field(alias="successUrl")
    failure_url: str = Field(alias="failureUrl")


class NovaSendDirectPayoutDetails(_Wire):
    """``payout{}`` of ``POST /v1/direct/payout`` [N6]."""

    amount: int
    msisdn: str
    provider: str
    country: str


class NovaSendDirectPayoutRequest(_Wire):
    """``POST /v1/direct/payout`` body [N6]."""

    reference: str
    customer_name: str | None = Field(default=None, alias="customerName")
    payout: NovaSendDirectPayoutDetails


class NovaSendSessionRequest(_Wire):
    """``POST /v1/payin/sessions`` body that both documented versions accept (2.11.1).

    The older page (seed 004, N3) requires ``accountId`` and ``customerName``; the newer one
    [N4] requires ``action{}`` and has no ``accountId``. Each version is assumed to ignore
    the other's extra field (``docs/providers.md``).
    """

    reference: str
    account_id: str | None = Field(default=None, alias="accountId")
    amount: int
    msisdn: str
    customer_name: str | None = Field(default=None, alias="customerName")
    country: str
    action: NovaSendAction


class NovaSendDirectPayinDetails(_Wire):
    """``payin{}`` of ``POST /v1/direct/payin`` [N5]."""

    amount: int
    msisdn: str
    provider: str
    country: str
    otp: str | None = None


class NovaSendDirectPayinRequest(_Wire):
    """``POST /v1/direct/payin`` body [N5]."""

    reference: str
    customer_name: str | None = Field(default=None, alias="customerName")
    payin: NovaSendDirectPayinDetails
    action: NovaSendAction


class NovaSendRefundRequest(_Wire):
    """``POST /v1/payin/{reference}/refund`` body; there is no amount field [N8]."""

    reason: str
    external_reference: str = Field(alias="externalReference")


# --------------------------------------------------------------------------- answers


class NovaSendFailure(_Wire):
    """``failure``: null, or ``{code, message}`` [N3, N4]."""

    code: str | None = None
    message: str | None = None


class NovaSendCustomer(_Wire):
    """``customer{name, phoneNumber}`` [N4, N9]."""

    name: str | None = None
    phone_number: str | None = Field(default=None, alias="phoneNumber")


class NovaSendCoreTransaction(_Wire):
    """``transaction{}``: the core system's settlement, the final source of truth [N3]."""

    reference: str | None = None
    status: str | None = None
    customer_name: str | None = Field(default=None, alias="customerName")
    processed_at: str | None = Field(default=None, alias="processedAt")
    phone_number: str | None = Field(default=None, alias="phoneNumber")
    amount: Decimal | None = None
    fees: Decimal | None = None
    charged_amount: Decimal | None = Field(default=None, alias="chargedAmount")
    currency: str | None = None


class NovaSendTransaction(_Wire):
    """A payin session, a payout or a refund: as created, read back, or sent as a webhook.

    One shape serves them all [N3, N4, N6-N9]; the webhook spells the fee ``fees`` and may
    carry ``eventId`` [N9, N10]; a refund has no ``id``, its ``reference`` is ``rf_…`` [N8].

    Two versions of the payin answer are documented (2.3, 2.11.1): the newer one [N4] has
    ``id`` (``pr_…``) and echoes our ``reference``; the older one (seed 004, N3) has no
    ``id``, puts NovaSend's system id (``tr_…``) in ``reference`` and ours in
    ``customerReference``, and names the payer ``phoneNumber``/``customerName`` at the top.
    """

    id: str | None = None
    type: str | None = None
    reference: str | None = None
    #: The older payin page puts the merchant reference here and a ``tr_`` in ``reference``.
    customer_reference: str | None = Field(default=None, alias="customerReference")
    #: The older payin page's payer, at the top level (seed 004).
    phone_number: str | None = Field(default=None, alias="phoneNumber")
    customer_name: str | None = Field(default=None, alias="customerName")
    external_reference: str | None = Field(default=None, alias="externalReference")
    status: str | None = None
    confirmation_required: bool | None = Field(default=None, alias="confirmationRequired")
    confirmation_status: str | None = Field(default=None, alias="confirmationStatus")
    payment_url: str | None = Field(default=None, alias="paymentUrl")
    customer: NovaSendCustomer | None = None
    msisdn: str | None = None
    amount: Decimal | None = None
    fee: Decimal | None = None
    fees: Decimal | None = None
    charged_amount: Decimal | None = Field(default=None, alias="chargedAmount")
    currency: str | None = None
    failure: NovaSendFailure | None = None
    #: ``null`` or ``{}`` until the customer confirms [N3].
    transaction: NovaSendCoreTransaction | None = None
    original_reference: str | None = Field(default=None, alias="originalReference")
    created_at: str | None = Field(default=None, alias="createdAt")
    event_id: str | None = Field(default=None, alias="eventId")
    event: str | None = None


class NovaSendBalance(_Wire):
    """One entry of ``GET /v1/balance`` [N12]."""

    balance: Decimal
    available_balance: Decimal = Field(alias="availableBalance")
    reference: str | None = None
    currency: str


class NovaSendErrorBody(_Wire):
    """Error body ``{code, message, statusCode}`` [N1, N11]."""

    code: str | None = None
    message: str | list[str] | None = None
    status_code: int | None = Field(default=None, alias="statusCode")

    def text(self) -> str:
        """The message as one string."""
        if isinstance(self.message, list):
            return "; ".join(self.message)
        return self.message or ""


def dump(model: BaseModel) -> dict[str, Any]:
    """A request model as the JSON object NovaSend expects (aliases, no nulls)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
