"""Currencies, countries and exact money arithmetic.

Amounts are always integers in the currency's minor unit. The CFA francs (XOF, XAF) have no
minor unit, so one unit is one franc. Nothing in momoflow represents money as a float.
"""

from __future__ import annotations

from enum import StrEnum


class Currency(StrEnum):
    """ISO 4217 currencies momoflow moves."""

    XOF = "XOF"
    XAF = "XAF"


class Country(StrEnum):
    """ISO 3166-1 alpha-2 countries momoflow can route to."""

    SN = "SN"
    CI = "CI"
    ML = "ML"
    BF = "BF"
    TG = "TG"
    BJ = "BJ"
    NE = "NE"
    GW = "GW"
    CM = "CM"


#: Each country's English short name, for messages.
COUNTRY_NAMES: dict[Country, str] = {
    Country.SN: "Senegal",
    Country.CI: "Côte d'Ivoire",
    Country.ML: "Mali",
    Country.BF: "Burkina Faso",
    Country.TG: "Togo",
    Country.BJ: "Benin",
    Country.NE: "Niger",
    Country.GW: "Guinea-Bissau",
    Country.CM: "Cameroon",
}

#: Digits after the decimal point for each currency (ISO 4217 exponent).
MINOR_UNIT_EXPONENT: dict[Currency, int] = {Currency.XOF: 0, Currency.XAF: 0}

#: The legal tender of each country; a payment in another currency is refused.
COUNTRY_CURRENCY: dict[Country, Currency] = {
    Country.SN: Currency.XOF,
    Country.CI: Currency.XOF,
    Country.ML: Currency.XOF,
    Country.BF: Currency.XOF,
    Country.TG: Currency.XOF,
    Country.BJ: Currency.XOF,
    Country.NE: Currency.XOF,
    Country.GW: Currency.XOF,
    Country.CM: Currency.XAF,
}


def format_amount(amount: int, currency: Currency | str) -> str:
    """Render an integer minor-unit amount for humans: ``format_amount(1500000, "XOF")``
    gives ``"1,500,000 XOF"``."""
    cur = Currency(currency)
    exponent = MINOR_UNIT_EXPONENT[cur]
    if exponent == 0:
        return f"{amount:,} {cur.value}"
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**exponent)
    return f"{sign}{major:,}.{minor:0{exponent}d} {cur.value}"
