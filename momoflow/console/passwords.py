"""Operator passwords: Argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommended profile), and the rules a new password must follow."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["MIN_LENGTH", "check_new_password", "hash_password", "needs_rehash", "verify_password"]

#: Shortest password accepted (a passphrase of a few words passes, a PIN does not).
MIN_LENGTH = 12
MAX_LENGTH = 256

_hasher = PasswordHasher()

#: Verified against when the operator does not exist, so that an unknown name costs as
#: much time as a wrong password and names cannot be found by timing logins.
_DECOY = _hasher.hash("momoflow-decoy-password")


def check_new_password(password: str, *, name: str) -> str | None:
    """Why ``password`` is refused for operator ``name``, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if password.strip() != password:
        return "must not start or end with a space"
    if name.lower() in password.lower():
        return "must not contain the operator's name"
    if len(set(password)) < 5:
        return "must use at least 5 different characters"
    return None


def hash_password(password: str) -> str:
    """The Argon2id hash to store (salted; never the password)."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (None: an unknown operator, checked
    against a decoy so that it takes as long and is always False)."""
    try:
        matched = _hasher.verify(stored_hash or _DECOY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matched and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (rehash at login)."""
    return _hasher.check_needs_rehash(stored_hash)
