"""Masking of personal data for logs, traces, query results and error messages."""

from __future__ import annotations


def mask_phone(phone: str) -> str:
    """Keep the country code and the last 4 digits: ``+221*****4567``."""
    digits = phone.strip()
    if len(digits) <= 8:
        return "*" * len(digits)
    head = digits[:4] if digits.startswith("+") else digits[:3]
    return head + "*" * (len(digits) - len(head) - 4) + digits[-4:]


def mask_name(name: str) -> str:
    """Keep the first letter of each word: ``A** D*****``."""
    return " ".join(word[:1] + "*" * (len(word) - 1) for word in name.split())
