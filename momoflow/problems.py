"""A broken business rule, as every layer reports it (the gateway's 422, the client's
``RequestProblems``, a campaign line's problems).

Its own module so that provider packages can state their extra request rules without
importing :mod:`momoflow.business_requests`, which looks those rules up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule: which field, which rule, and a sentence for humans."""

    field: str
    rule: str
    message: str
