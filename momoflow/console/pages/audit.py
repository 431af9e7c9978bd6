"""The audit trail of the operator's merchant: newest first, 50 a page (``?before=<id>``),
filtered by actor and by target (exact values). Readers need ``READ_AUDIT``.

Login attempts under unknown names belong to no merchant and are not shown.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from momoflow.console.accounts import AuditEvent, Permission, Session
from momoflow.console.web import ConsoleError, allowed, console_state, read, render

router = APIRouter()

PAGE_SIZE = 50
#: The longest filter value (the columns hold at most 300 characters).
FILTER_MAX = 300
_OUTCOMES = frozenset({"ok", "refused", "failed", "throttled"})

AuditSession = Annotated[Session, Depends(allowed(Permission.READ_AUDIT))]


def detail_text(event: AuditEvent) -> str:
    """The event's detail as ``key=value`` pairs, for the table."""
    parts = []
    for key, value in sorted(event.detail.items()):
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


@router.get("/audit", include_in_schema=False)
async def audit(request: Request, session: AuditSession) -> Response:
    """The merchant's audit trail."""
    params = request.query_params
    actor = (params.get("actor") or "").strip()
    target = (params.get("target") or "").strip()
    if len(actor) > FILTER_MAX or len(target) > FILTER_MAX:
        raise ConsoleError(400, "audit.error.filter", max=FILTER_MAX)
    before_id: int | None = None
    before = params.get("before")
    if before:
        if not before.isdigit() or len(before) > 18:
            raise ConsoleError(400, "audit.error.cursor")
        before_id = int(before)
    events, more = await read(
        console_state(request).operators.audit_page(
            session.operator.merchant,
            limit=PAGE_SIZE,
            before_id=before_id,
            target=target or None,
            actor=actor or None,
        )
    )
    return render(
        request,
        "audit/page.html",
        {
            "events": events,
            "actor": actor,
            "target": target,
            "before": before_id,
            "next_before": events[-1].id if more and events else None,
            "outcomes": _OUTCOMES,
            "detail_text": detail_text,
        },
        session=session,
    )
