"""The console's texts and formats: every key a template or a page names exists in both
languages, money is written the local way and times in the operator's zone (pure code)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from momoflow.console.i18n import (
    catalog,
    format_amount,
    format_count,
    format_time,
    pick_language,
    translate,
)
from momoflow.console.passwords import check_new_password, hash_password, verify_password

CONSOLE = Path(__file__).resolve().parents[1] / "momoflow" / "console"
#: ``t('key')`` in a template, and the keys pages pass to error pages and messages.
TEMPLATE_KEY = re.compile(r"""\bt\(\s*['"]([a-z0-9_.]+)['"]""")
CODE_KEY = re.compile(
    r"""['"]((?:console|login|tx|campaigns|doubt|balances|audit)\.[a-z0-9_.]+)['"]"""
)


def _named_keys() -> dict[str, set[str]]:
    named: dict[str, set[str]] = {}
    for template in sorted((CONSOLE / "templates").rglob("*.html")):
        for key in TEMPLATE_KEY.findall(template.read_text()):
            # ``t('tx.status.' ~ value)`` builds its key: the rendering tests cover those.
            if not key.endswith("."):
                named.setdefault(key, set()).add(str(template.relative_to(CONSOLE)))
    for module in sorted(CONSOLE.rglob("*.py")):
        if "messages" in module.parts:
            continue
        for key in CODE_KEY.findall(module.read_text()):
            if not key.endswith((".", ".html")):
                named.setdefault(key, set()).add(str(module.relative_to(CONSOLE)))
    return named


def test_every_key_named_by_a_template_or_a_page_has_both_languages() -> None:
    keys = catalog()
    named = _named_keys()
    assert len(named) > 20
    missing = {key: sorted(where) for key, where in named.items() if key not in keys}
    assert missing == {}


def test_no_text_is_left_in_english_in_the_french_catalog_by_mistake() -> None:
    # Words that are the same in both languages are fine ("Transactions"); whole sentences
    # are not.
    same = [
        key
        for key, (english, french) in catalog().items()
        if english == french and len(re.findall(r"\b[^\W\d_]{4,}\b", english)) > 2
    ]
    assert same == []


def test_placeholders_are_the_same_in_both_languages() -> None:
    field = re.compile(r"\{(\w+)\}")
    different = [
        key
        for key, (english, french) in catalog().items()
        if set(field.findall(english)) != set(field.findall(french))
    ]
    assert different == []


def test_an_unknown_key_is_an_error_not_a_key_shown_to_a_person() -> None:
    with pytest.raises(KeyError):
        translate("fr", "no.such.key")


def test_amounts_are_written_the_local_way() -> None:
    assert format_amount(50_000, "XOF") == "50\u202f000\u00a0FCFA"
    assert format_amount(1_250_000, "XAF") == "1\u202f250\u202f000\u00a0FCFA (XAF)"
    assert format_amount(-700, "XOF") == "\u2212700\u00a0FCFA"
    assert format_amount(None, "XOF") == "\u2014"
    assert format_count(12_500) == "12\u202f500"


def test_times_are_shown_in_the_operators_zone_and_language() -> None:
    moment = datetime(2026, 12, 7, 23, 30, 5, tzinfo=UTC)
    assert format_time(moment, "Africa/Dakar", "fr") == "07/12/2026 23:30:05 GMT"
    assert format_time(moment, "Africa/Douala", "en") == "2026-12-08 00:30:05 WAT"


def test_the_language_is_the_first_known_choice() -> None:
    assert pick_language(None, "en") == "en"
    assert pick_language("de", None, accept_language="en-GB,en;q=0.8") == "en"
    assert pick_language(None, accept_language="wo-SN,de") == "fr"


def test_passwords_are_hashed_with_argon2id_and_checked() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "correct horse battery stapler")
    assert not verify_password(None, "correct horse battery staple")


def test_weak_passwords_are_refused_with_the_rule() -> None:
    assert check_new_password("short", name="awa") == "must be at least 12 characters"
    assert check_new_password("awa-awa-awa-awa", name="awa") == (
        "must not contain the operator's name"
    )
    assert check_new_password("aaaaaaaaaaaaaaaa", name="kofi") == (
        "must use at least 5 different characters"
    )
    assert check_new_password("correct horse battery staple", name="kofi") is None
