"""CaurisFlux wire models: the JSON bodies as the API documents them (S1..S7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CaurisFluxQuoteRequest(_Wire):
    """``POST /payouts/quote`` body (schema assumed, providers.md 1.12.6)."""

    amount: int
    currency: str
    country: str
    method: str = "mobile_money"
    provider: str


class CaurisFluxQuoteResponse(_Wire):
    """``POST /payouts/quote`` answer (schema assumed)."""

    quote_id: str = Field(alias="quoteId")
    amount: int
    fees: int
    net_amount: int = Field(alias="netAmount")
    currency: str
    expires_at: datetime | None = Field(default=None, alias="expiresAt")


class CaurisFluxRecipient(_Wire):
    """Payout recipient [S4]."""

    phone: str
    first_name: str = Field(alias="firstName")
    last_name: str = Field(alias="lastName")


class CaurisFluxPayoutRequest(_Wire):
    """``POST /payouts/initiate`` body, quote variant [S4]."""

    quote_id: str = Field(alias="quoteId")
    external_reference: str = Field(alias="externalReference")
    recipient: CaurisFluxRecipient
    description: str
    callback_url: str | None = Field(default=None, alias="callbackUrl")


class CaurisFluxTransaction(_Wire):
    """A payout as returned by ``POST /payouts/initiate`` [S4] or the status endpoint [S3]."""

    transaction_id: str = Field(alias="transactionId")
    external_reference: str | None = Field(default=None, alias="externalReference")
    status: str
    amount: int | None = None
    currency: str | None = None
    fees: int | None = None
    net_amount: int | None = Field(default=None, alias="netAmount")
    provider_reference: str | None = Field(default=None, alias="providerReference")
    error_code: str | None = Field(default=None, alias="errorCode")
    error_message: str | None = Field(default=None, alias="errorMessage")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class CaurisFluxPaymentRequest(_Wire):
    """``POST /payments/initiate`` body [S2]."""

    type: str
    amount: int
    currency: str
    external_reference: str = Field(alias="externalReference")
    provider: str | None = None
    country: str | None = None
    customer_phone: str | None = Field(default=None, alias="customerPhone")
    customer_name: str | None = Field(default=None, alias="customerName")
    customer_email: str | None = Field(default=None, alias="customerEmail")
    description: str | None = None
    callback_url: str | None = Field(default=None, alias="callbackUrl")
    return_url: str | None = Field(default=None, alias="returnUrl")
    cancel_url: str | None = Field(default=None, alias="cancelUrl")
    metadata: dict[str, Any] | None = None


class CaurisFluxPayment(CaurisFluxTransaction):
    """``POST /payments/initiate`` answer ``data`` [S2]."""

    redirect_url: str | None = Field(default=None, alias="redirectUrl")
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    deep_links: dict[str, str] | None = Field(default=None, alias="deepLinks")
    qr_code: str | None = Field(default=None, alias="qrCode")


class CaurisFluxBalance(_Wire):
    """``GET /payments/balance`` ``data`` (shape assumed, providers.md 1.12.9)."""

    balance: int
    available_balance: int | None = Field(default=None, alias="availableBalance")
    currency: str = "XOF"


class CaurisFluxProviderEntry(_Wire):
    """One entry of ``GET /payments/providers`` (shape assumed, providers.md 1.12.9)."""

    code: str
    country: str | None = None
    active: bool = True


class CaurisFluxCountry(_Wire):
    """One entry of ``GET /countries/active`` (shape assumed)."""

    code: str


class CaurisFluxPageMeta(_Wire):
    """``meta`` of a paginated list [S1 "Pagination"]."""

    total: int | None = None
    page: int
    limit: int | None = None
    total_pages: int = Field(alias="totalPages")


class CaurisFluxPage(_Wire):
    """A paginated list ``{data: [...], meta: {total, page, limit, totalPages}}`` [S1].

    ``meta`` is None for a list answered whole (a bare array, or ``{success, data}``)."""

    data: list[Any]
    meta: CaurisFluxPageMeta | None = None


class CaurisFluxErrorBody(_Wire):
    """NestJS error envelope [S1]; ``code`` is assumed for business errors (1.12.8)."""

    status_code: int | None = Field(default=None, alias="statusCode")
    message: str | list[str] = ""
    error: str | None = None
    code: str | None = None

    def text(self) -> str:
        """The message as one string (class-validator sends a list)."""
        return "; ".join(self.message) if isinstance(self.message, list) else self.message


class CaurisFluxWebhookData(_Wire):
    """``data`` of a webhook, as the vendor plugin reads it [S7]."""

    transaction_id: str | None = Field(default=None, alias="transactionId")
    external_reference: str | None = Field(default=None, alias="externalReference")
    provider_transaction_id: str | None = Field(default=None, alias="providerTransactionId")
    status: str | None = None
    amount: int | None = None
    currency: str | None = None
    fees: int | None = None
    failure_reason: str | None = Field(default=None, alias="failureReason")
    failure_message: str | None = Field(default=None, alias="failureMessage")
    error_code: str | None = Field(default=None, alias="errorCode")
    error_message: str | None = Field(default=None, alias="errorMessage")


class CaurisFluxWebhook(_Wire):
    """Webhook envelope ``{event, data}`` [S7]."""

    event: str
    data: CaurisFluxWebhookData
