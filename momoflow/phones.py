"""Phone numbers as people write them, read for one country. Pure, no I/O.

Callers write numbers in many ways: ``+221 77 123 45 67``, ``00221771234567``,
``77 123 45 67`` (a national number) or ``0701020304`` in Côte d'Ivoire. The API and
campaign files accept all of them for the request's country and keep the E.164 form
(``+221771234567``), so that everything derived from a request (its fingerprint, the
provider call, the masked number) sees one form only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType, geocoder

from momoflow.money import COUNTRY_NAMES, Country

__all__ = ["PhoneProblem", "expected_form", "normalize_phone", "phone_problem"]

#: Characters people put between digits; none of them changes the number.
_SEPARATORS = re.compile(r"[ \u00a0\u202f\-.()/]")


@dataclass(frozen=True)
class PhoneProblem:
    """Why a number cannot be used for a country: a rule name and a sentence for humans."""

    rule: str
    message: str


def normalize_phone(raw: object, country: Country | None) -> str:
    """The E.164 form of ``raw`` when it can be read; national numbers are read as numbers
    of ``country``. Otherwise the text without separators, so that validation can say
    which rule it breaks.

    A number already in international form (``+…`` or ``00…``) only loses its separators:
    it is never re-read as a number of ``country``.
    """
    text = _SEPARATORS.sub("", str(raw or "").strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+") or country is None:
        return text
    try:
        parsed = phonenumbers.parse(text, country.value)
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def expected_form(country: Country) -> str:
    """How to write a number of ``country``, with an example, for error messages:
    ``write the number in international form (+221 70 123 45 67) or as a Senegal national
    number (70 123 45 67)``."""
    name = COUNTRY_NAMES[country]
    example = phonenumbers.example_number_for_type(country.value, PhoneNumberType.MOBILE)
    if example is None:
        code = phonenumbers.country_code_for_region(country.value)
        return f"write the number in international form (+{code}…) or as a {name} national number"
    international = phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
    return (
        f"write the number in international form ({international}) "
        f"or as a {name} national number ({national})"
    )


def phone_problem(phone: str, country: Country) -> PhoneProblem | None:
    """Why ``phone`` (as given, or after :func:`normalize_phone`) is not a valid mobile
    number of ``country``; None when it is. Messages never repeat the number."""
    try:
        parsed = phonenumbers.parse(normalize_phone(phone, country), country.value)
    except phonenumbers.NumberParseException:
        return PhoneProblem("e164", f"not a phone number: {expected_form(country)}")
    if not phonenumbers.is_valid_number(parsed):
        return PhoneProblem(
            "valid_number",
            f"not a valid phone number (wrong length or prefix): {expected_form(country)}",
        )
    region = phonenumbers.region_code_for_number(parsed)
    if region != country.value:
        where = _country_of(parsed, region)
        return PhoneProblem(
            "number_in_country",
            f"the number belongs to {where}, not to {COUNTRY_NAMES[country]} "
            f"(country {country.value}): {expected_form(country)}",
        )
    return None


def _country_of(parsed: phonenumbers.PhoneNumber, region: str | None) -> str:
    if region is None:
        return f"no country (+{parsed.country_code})"
    try:
        return f"{COUNTRY_NAMES[Country(region)]} ({region})"
    except ValueError:
        name = geocoder.country_name_for_number(parsed, "en")
        return f"{name} ({region})" if name else region
