"""What must never leave a process in clear: secrets, phone numbers, secret URL parts.

One :class:`Redactor` serves logs (:mod:`momoflow.logs`) and traces
(:mod:`momoflow.telemetry`). It is a safety net: the code already avoids putting such
values in messages and span attributes; the redactor catches what slips through (a
provider's error message echoing a number, a URL with a query string, a guessed webhook
token), so the one place that decides what is private is here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

from momoflow.masking import mask_phone

#: What a secret is replaced with.
REDACTED = "[REDACTED]"

#: Phone numbers in free text: E.164 (``+`` and 7 to 15 digits, separators allowed), or
#: 11 to 13 bare digits starting with a West or Central African country code (220-249, as
#: providers echo them: ``221771234567``). Amounts (at most 7 digits), epoch timestamps
#: (``17…``) and date-like references (``20261123…``) do not match.
_PHONE_IN_TEXT = re.compile(
    r"(?<![\w+])\+\d(?:[ .-]?\d){6,14}(?!\w)" r"|(?<![\w+.])2[2-4]\d(?: ?\d){8,10}(?![\w.])"
)

#: ``/webhooks/<provider>/<token>``: a URL token authenticates the delivery (MOBILE-PAY).
_WEBHOOK_TOKEN_PATH = re.compile(r"(/webhooks/[A-Za-z0-9_-]+/)[^/?#\s]+")

#: momoflow's own credentials (``momoflow keys generate`` / ``operator``): merchants' API
#: keys and operators' tokens are known only by their hashes, so they are found by shape.
_MOMOFLOW_CREDENTIAL = re.compile(r"(?<![\w-])mf(?:op)?_[A-Za-z0-9_-]{8,}")

#: Settings fields that hold credentials even when typed as plain strings (public key ids,
#: NovaSend's API key: half of its Basic credentials).
_SECRET_FIELD = re.compile(r"(^|_)(key|token|secret|password)$|secret|password")

#: Secrets shorter than this are not searched for (they would match ordinary text).
MIN_SECRET_LENGTH = 6


def mask_phones_in(text: str) -> str:
    """``text`` with every phone-number-like run masked by :func:`~momoflow.masking.mask_phone`."""
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(re.sub(r"[ .-]", "", m.group(0))), text)


def secret_values(model: BaseModel) -> list[str]:
    """Every secret held by ``model`` (settings): all ``SecretStr`` values, at any depth,
    and plain strings in fields named like credentials (``*_key``, ``*_token``,
    ``*secret*``, ``*password*``)."""
    found: list[str] = []

    def visit(value: Any, name: str) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for field_name in type(value).model_fields:
                visit(getattr(value, field_name), field_name)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                visit(item, name if not isinstance(key, str) else f"{name}_{key}")
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                visit(item, name)
        elif isinstance(value, str) and _SECRET_FIELD.search(name.lower()):
            found.append(value)

    visit(model, "")
    return found


class Redactor:
    """Removes secrets and masks phone numbers in text and URLs.

    **Parameters:**

    * **secrets** - exact values that must never appear (API keys, provider secrets,
      webhook tokens); values shorter than :data:`MIN_SECRET_LENGTH` are ignored.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        usable = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so that a secret containing another is removed whole.
        self._secrets: Sequence[str] = sorted(usable, key=len, reverse=True)

    @property
    def secrets(self) -> Sequence[str]:
        """The values this redactor removes."""
        return self._secrets

    def text(self, value: str) -> str:
        """``value`` without secrets (known values, and momoflow's ``mf_…`` keys), with
        phone numbers masked, and with the token of a ``/webhooks/<provider>/<token>`` path
        replaced."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        value = _MOMOFLOW_CREDENTIAL.sub(REDACTED, value)
        value = _WEBHOOK_TOKEN_PATH.sub(rf"\g<1>{REDACTED}", value)
        return mask_phones_in(value)

    def url(self, value: str) -> str:
        """A URL or path without its query string and fragment (they may carry tokens or
        personal data), then redacted like :meth:`text`."""
        try:
            parts = urlsplit(value)
        except ValueError:
            return self.text(value.split("?", 1)[0].split("#", 1)[0])
        stripped = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        if "@" in parts.netloc:
            # user:password@host
            host = parts.netloc.rsplit("@", 1)[1]
            stripped = urlunsplit((parts.scheme, f"{REDACTED}@{host}", parts.path, "", ""))
        return self.text(stripped)
