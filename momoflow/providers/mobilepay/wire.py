"""MOBILE-PAY wire models: request bodies and the answers momoflow reads.

MOBILE-PAY documents its parameters but no response body at all (providers.md 3.3), so every
answer model here is an assumption (3.4.2) and is deliberately tolerant: unknown fields are
ignored and ids are read under the names the list and the webhooks use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------- requests


class MobilePayMetadata(_Wire):
    """``metadata`` sent with every create call: our reference (assumed field, 3.4.5)."""

    reference: str


class MobilePayLocalTransferRequest(_Wire):
    """``POST /transfers/local`` body [M1], plus the assumed ``metadata``."""

    recipient_phone: str
    amount: int
    description: str
    metadata: MobilePayMetadata


class MobilePayInternationalTransferRequest(_Wire):
    """``POST /transfers/international`` body [M1]; ``description`` and ``metadata`` assumed."""

    recipient_country: str
    recipient_phone: str
    amount: int
    description: str
    metadata: MobilePayMetadata


MobilePayTransferRequest = MobilePayLocalTransferRequest | MobilePayInternationalTransferRequest


class MobilePayQrPaymentRequest(_Wire):
    """``POST /payments/qr`` body [M1], plus the assumed ``metadata``."""

    amount: int
    description: str
    merchant_id: str
    metadata: MobilePayMetadata


class MobilePayLoginRequest(_Wire):
    """``POST /auth/login`` body [M1]. ``repr`` never shows the password."""

    email: str
    password: str = Field(repr=False)


# --------------------------------------------------------------------------- answers


class MobilePayLoginResponse(_Wire):
    """``/auth/login`` answer (assumed, 3.3): the token under either name."""

    token: str = Field(validation_alias=AliasChoices("access_token", "token"), min_length=1)
    expires_in: int | None = None


class MobilePayTransfer(_Wire):
    """Transfer create answer (assumed 201 shape, 3.4.2)."""

    transfer_id: str = Field(validation_alias=AliasChoices("transfer_id", "id"), min_length=1)
    status: str = ""
    amount: int | None = None
    currency: str | None = None
    created_at: datetime | None = None


class MobilePayQrPayment(_Wire):
    """QR payment create answer (assumed 201 shape, 3.4.2)."""

    payment_id: str = Field(validation_alias=AliasChoices("payment_id", "id"), min_length=1)
    qr_code: str | None = None
    status: str = ""
    amount: int | None = None
    currency: str | None = None
    expires_at: datetime | None = None


class MobilePayTransactionItem(_Wire):
    """One item of ``GET /transactions`` (assumed ``{id, type, status, amount, currency,
    created_at}``, 3.4.2). The other fields are read when present: they are what lets a
    retry recognise a transfer it already made."""

    id: str | None = None
    transfer_id: str | None = None
    payment_id: str | None = None
    transaction_id: str | None = None
    type: str | None = None
    status: str = ""
    amount: int | None = None
    currency: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    recipient_phone: str | None = None
    description: str | None = None
    reference: str | None = None
    metadata: dict[str, Any] | None = None
    qr_code: str | None = None
    expires_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None

    def ids(self) -> list[str]:
        """Every id the item carries, the primary one first."""
        found = [self.id, self.transfer_id, self.payment_id, self.transaction_id]
        return [value for value in found if value]


class MobilePayTransactionPage(_Wire):
    """``GET /transactions`` answer (assumed ``{data, total, limit, offset}``, 3.4.2)."""

    data: list[MobilePayTransactionItem] = Field(
        validation_alias=AliasChoices("data", "transactions")
    )
    total: int | None = None
    limit: int | None = None
    offset: int | None = None


class MobilePayBalance(_Wire):
    """``GET /balance`` answer (assumed ``{balance, currency}``, 3.4.2)."""

    balance: int
    currency: str | None = None


class MobilePayWebhookData(_Wire):
    """``data`` of a webhook [M1]. ``payer`` (a phone number) is deliberately not read."""

    transfer_id: str | None = None
    payment_id: str | None = None
    transaction_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    status: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class MobilePayWebhook(_Wire):
    """Webhook envelope ``{event, timestamp, data}`` [M1]."""

    event: str = Field(min_length=1)
    timestamp: str | None = None
    data: MobilePayWebhookData
