"""The console's two languages, and money and time shown the local way.

Every text of every page is a key in a catalog module of :mod:`momoflow.console.messages`
(``MESSAGES = {"key": ("English", "Français")}``). A missing key is an error, never a key
shown to a person: :func:`translate` raises ``KeyError`` and the tests render every page in
both languages.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import datetime
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from momoflow.console import messages

__all__ = [
    "LANGUAGES",
    "Language",
    "catalog",
    "format_amount",
    "format_count",
    "format_time",
    "pick_language",
    "translate",
]

Language = Literal["en", "fr"]
LANGUAGES: tuple[Language, ...] = ("fr", "en")
_INDEX = {"en": 0, "fr": 1}

#: A narrow no-break space: the French thousands separator (``50 000``), never broken
#: across lines.
_GROUP = "\u202f"


@lru_cache(maxsize=1)
def catalog() -> dict[str, tuple[str, str]]:
    """Every key of every catalog module, as (English, French). Raises when two modules
    define one key, or a text is empty."""
    merged: dict[str, tuple[str, str]] = {}
    for module_info in sorted(pkgutil.iter_modules(messages.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{messages.__name__}.{module_info.name}")
        entries: dict[str, tuple[str, str]] = module.MESSAGES
        for key, texts in entries.items():
            if key in merged:
                raise ValueError(f"console message {key!r} is defined twice")
            if len(texts) != 2 or not all(texts):
                raise ValueError(f"console message {key!r} needs an English and a French text")
            merged[key] = texts
    return merged


def translate(language: str, key: str, /, **params: object) -> str:
    """The text of ``key`` in ``language``, with ``{name}`` placeholders filled."""
    text = catalog()[key][_INDEX.get(language, 0)]
    return text.format(**params) if params else text


def pick_language(*candidates: str | None, accept_language: str | None = None) -> Language:
    """The first of ``candidates`` that is a console language, else the first language of
    ``Accept-Language`` that is, else French."""
    for candidate in candidates:
        if candidate in LANGUAGES:
            return candidate
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "fr"


def _grouped(value: int) -> str:
    return f"{value:,}".replace(",", _GROUP)


def format_count(value: int) -> str:
    """A count with French-style grouping (``12 500``)."""
    sign = "\u2212" if value < 0 else ""
    return sign + _grouped(abs(value))


def format_amount(amount: int | None, currency: str) -> str:
    """An amount in minor units, the way it is written in francophone West and Central
    Africa: ``50 000 FCFA`` (XOF, the West African franc), ``50 000 FCFA (XAF)`` for the
    Central African franc, which shares the name. Both have no minor unit."""
    if amount is None:
        return "\u2014"
    text = format_count(amount)
    if currency == "XOF":
        return f"{text}\u00a0FCFA"
    if currency == "XAF":
        return f"{text}\u00a0FCFA (XAF)"
    return f"{text}\u00a0{currency}"


def format_time(moment: datetime | None, time_zone: str, language: str) -> str:
    """A moment in the operator's time zone: ``07/12/2026 14:05:09 GMT`` in French,
    ``2026-12-07 14:05:09 GMT`` in English."""
    if moment is None:
        return "\u2014"
    local = moment.astimezone(ZoneInfo(time_zone))
    pattern = "%d/%m/%Y %H:%M:%S" if language == "fr" else "%Y-%m-%d %H:%M:%S"
    return f"{local.strftime(pattern)} {local.tzname()}"
