"""JSON shapes of the NovaSend simulator: the transfer object (create, status, webhook) in
the newer version [DOC N4-N7] or, for wallet sessions of the older payin API, the older
one [DOC N3, seed 004], and the refund object. Integer francs at the top level,
two-decimal strings inside ``transaction`` [DOC N3, N13]."""

from __future__ import annotations

from typing import Any

from ..shared import iso_timestamp
from .catalog import Language, decimal_string, message
from .transfers import Refund, Transfer

__all__ = ["older_payin_body", "refund_body", "transfer_body"]


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else iso_timestamp(epoch)


def _core_transaction(
    *,
    reference: str,
    status: str,
    customer_name: str | None,
    processed_at: float | None,
    phone: str,
    amount: int,
    fee: int,
    currency: str,
) -> dict[str, Any]:
    """The ``transaction`` object of the core system [DOC N3, seed 004]."""
    return {
        "reference": reference,
        "status": status,
        "customerName": customer_name,
        "processedAt": _iso(processed_at),
        "phoneNumber": phone,
        "amount": decimal_string(amount),
        "fees": decimal_string(fee),
        "chargedAmount": decimal_string(amount + fee),
        "currency": currency,
    }


def _failure(tx: Transfer, language: Language) -> dict[str, Any] | None:
    if tx.failure_code is None:
        return None
    return {
        "code": tx.failure_code,
        "message": tx.failure_message or message(tx.failure_code, language),
    }


def _core_of(tx: Transfer) -> dict[str, Any] | None:
    if tx.settlement is None or tx.tx_reference is None:
        return None
    return _core_transaction(
        reference=tx.tx_reference,
        status=tx.settlement,
        customer_name=tx.customer_name,
        processed_at=tx.processed_at,
        phone=tx.msisdn,
        amount=tx.amount,
        fee=tx.fee,
        currency=tx.currency,
    )


def older_payin_body(tx: Transfer, language: Language, *, created: bool = False) -> dict[str, Any]:
    """A wallet session as the older payin page shows it [DOC N3, seed 004]: no ``id``,
    ``reference`` is the system reference (``tr_…``), ``customerReference`` ours, the payer
    at the top level. The 201 has ``paymentUrl``; the GET adds ``customerName``,
    ``transaction`` and ``failure``, in the seed's order."""
    head: dict[str, Any] = {
        "type": tx.kind,
        "fee": tx.fee,
        "reference": tx.system_reference,
        "phoneNumber": tx.msisdn,
    }
    tail: dict[str, Any] = {
        "amount": tx.amount,
        "chargedAmount": tx.charged_amount,
        "status": tx.status,
        "currency": tx.currency,
        "customerReference": tx.reference,
        "confirmationRequired": True,
        "confirmationStatus": tx.confirmation_status,
    }
    if created:
        return {
            **head,
            **tail,
            "paymentUrl": tx.payment_url,
            "createdAt": iso_timestamp(tx.created_at),
        }
    return {
        **head,
        "customerName": tx.customer_name,
        **tail,
        "createdAt": iso_timestamp(tx.created_at),
        "transaction": _core_of(tx),
        "failure": _failure(tx, language),
    }


def transfer_body(tx: Transfer, language: Language, *, created: bool = False) -> dict[str, Any]:
    """The payin/payout object [DOC N4–N7]; ``created`` omits ``transaction`` (201 bodies).
    A wallet session of the older API has the older shape (:func:`older_payin_body`)."""
    if tx.older:
        return older_payin_body(tx, language, created=created)
    body: dict[str, Any] = {
        "id": tx.id,
        "type": tx.kind,
        "reference": tx.reference,
        "status": tx.status,
        "confirmationRequired": tx.kind == "payin",
        "confirmationStatus": tx.confirmation_status,
        "paymentUrl": tx.payment_url,
        "customer": {"name": tx.customer_name, "phoneNumber": tx.msisdn},
        "isDirect": tx.direct,
        "payFee": False,
        "createdAt": iso_timestamp(tx.created_at),
        "amount": tx.amount,
        "fee": tx.fee,
        "chargedAmount": tx.charged_amount,
        "currency": tx.currency,
    }
    if tx.direct:
        body["mobileMoney"] = {"provider": {"name": f"{tx.provider}_{tx.country}"}}
    body["failure"] = _failure(tx, language)
    if not created:
        body["transaction"] = _core_of(tx)
    return body


def refund_body(refund: Refund, language: Language) -> dict[str, Any]:
    """The refund object [DOC N8]; ``transaction`` appears once the core system has it."""
    payin = refund.payin
    body: dict[str, Any] = {
        "type": "refund",
        "reference": refund.id,
        "originalReference": payin.tx_reference,
        "amount": refund.amount,
        "fee": refund.fee,
        "currency": refund.currency,
        "status": refund.state,
        "reason": refund.reason,
        "refundType": refund.refund_type,
        "customerMsisdn": payin.msisdn,
        "customerName": payin.customer_name,
        "createdAt": iso_timestamp(refund.created_at),
        "transaction": None,
    }
    if refund.tx_reference is not None:
        settlement = {"processing": "pending", "pending": "pending"}.get(refund.state, refund.state)
        body["transaction"] = _core_transaction(
            reference=refund.tx_reference,
            status=settlement,
            customer_name=payin.customer_name,
            processed_at=refund.processed_at,
            phone=payin.msisdn,
            amount=refund.amount,
            fee=refund.fee,
            currency=refund.currency,
        )
    if refund.failure_code is not None:
        body["failure"] = {
            "code": refund.failure_code,
            "message": message(refund.failure_code, language),
        }
    return body
