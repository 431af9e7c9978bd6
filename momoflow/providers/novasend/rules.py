"""What NovaSend asks of a payin request beyond the common rules (N5, N3, seed 004)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from momoflow.models import Operator, PayinMode
from momoflow.problems import FieldProblem

if TYPE_CHECKING:
    from momoflow.business_requests import PayinRequest


def payin_rules(request: PayinRequest) -> list[FieldProblem]:
    """An Orange Money code for direct payins, a return URL, and a customer name for
    checkout payins."""
    problems: list[FieldProblem] = []
    if (
        request.mode is PayinMode.DIRECT
        and request.operator is Operator.ORANGE_MONEY
        and not request.otp
    ):
        problems.append(
            FieldProblem(
                "otp",
                "otp_required",
                "Orange Money needs the customer's one-time code (dial #144*82# in CI)",
            )
        )
    if request.mode in (PayinMode.DIRECT, PayinMode.CHECKOUT) and not (
        request.return_url or request.cancel_url
    ):
        problems.append(
            FieldProblem(
                "return_url",
                "required_by_provider",
                "NovaSend needs a URL to send the customer back to after paying",
            )
        )
    if request.mode is PayinMode.CHECKOUT and not request.customer.name:
        # NovaSend's older payin page (seed 004) requires customerName on every session,
        # and which version an account runs cannot be known in advance (2.11.1).
        problems.append(
            FieldProblem(
                "customer.name",
                "required_by_provider",
                "NovaSend checkout payins need the customer's name",
            )
        )
    return problems
