"""Typed search attributes that make every run findable in the Temporal UI and CLI.

Registered by ``momoflow dev`` on the embedded server; on a real cluster run the commands of
``docs/operations.md`` (``temporal operator search-attribute create ...``) once.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from momoflow.models import Direction, PayinInput, PayoutInput, TransactionStatus

DIRECTION = SearchAttributeKey.for_keyword("PaymentDirection")
PROVIDER = SearchAttributeKey.for_keyword("PaymentProvider")
STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
COUNTRY = SearchAttributeKey.for_keyword("PaymentCountry")
OPERATOR = SearchAttributeKey.for_keyword("PaymentOperator")
AMOUNT = SearchAttributeKey.for_int("PaymentAmount")
CURRENCY = SearchAttributeKey.for_keyword("PaymentCurrency")
MERCHANT = SearchAttributeKey.for_keyword("MerchantId")
REFERENCE = SearchAttributeKey.for_keyword("MerchantReference")
CAMPAIGN = SearchAttributeKey.for_keyword("CampaignId")
#: The provider's id of the transaction: routes webhooks that carry no reference of ours.
PROVIDER_TRANSACTION = SearchAttributeKey.for_keyword("ProviderTransactionId")

ALL_KEYS: tuple[SearchAttributeKey[str] | SearchAttributeKey[int], ...] = (
    DIRECTION,
    PROVIDER,
    STATUS,
    COUNTRY,
    OPERATOR,
    AMOUNT,
    CURRENCY,
    MERCHANT,
    REFERENCE,
    CAMPAIGN,
    PROVIDER_TRANSACTION,
)


def cli_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL_KEYS:
        kind = "Int" if key.indexed_value_type.name.endswith("INT") else "Keyword"
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


def transaction_attributes(
    *,
    direction: str,
    provider: str,
    status: str,
    country: str,
    operator: str,
    amount: int,
    currency: str,
    merchant: str,
    reference: str,
) -> TypedSearchAttributes:
    """The attributes a transaction workflow starts with."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(DIRECTION, direction),
            SearchAttributePair(PROVIDER, provider),
            SearchAttributePair(STATUS, status),
            SearchAttributePair(COUNTRY, country),
            SearchAttributePair(OPERATOR, operator),
            SearchAttributePair(AMOUNT, amount),
            SearchAttributePair(CURRENCY, currency),
            SearchAttributePair(MERCHANT, merchant),
            SearchAttributePair(REFERENCE, reference),
        ]
    )


def payout_attributes(input: PayoutInput) -> TypedSearchAttributes:
    """The attributes a payout starts with: the one derivation used by the gateway's start,
    a campaign's child start and the workflow itself."""
    return transaction_attributes(
        direction=Direction.PAYOUT.value,
        provider=input.provider.value,
        status=TransactionStatus.CREATED.value,
        country=input.country.value,
        operator=input.operator.value,
        amount=input.amount,
        currency=input.currency.value,
        merchant=input.merchant,
        reference=input.reference,
    )


def payin_attributes(input: PayinInput) -> TypedSearchAttributes:
    """The attributes a payin starts with (the mode stands for the operator of a checkout
    that lets the customer choose)."""
    return transaction_attributes(
        direction=Direction.PAYIN.value,
        provider=input.provider.value,
        status=TransactionStatus.CREATED.value,
        country=input.country.value,
        operator=input.operator.value if input.operator else input.mode.value,
        amount=input.amount,
        currency=input.currency.value,
        merchant=input.merchant,
        reference=input.reference,
    )


def as_updates(attributes: TypedSearchAttributes) -> list[SearchAttributeUpdate[Any]]:
    """The upserts that set every attribute of ``attributes`` (for workflow code)."""
    return [pair.key.value_set(pair.value) for pair in attributes]
