"""Login, logout and the console's home.

A login posts the name, the password and the login form's CSRF token (a random value in
both a cookie and the form: a page of another site cannot read it). Failed logins are
counted per name and per client address in the audit trail; past the limit the next
attempt is refused without its password being checked (429, ``Retry-After``).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from momoflow.console.web import (
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    FormDep,
    SessionDep,
    client_address,
    console_state,
    render,
    safe_next,
)

router = APIRouter()


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    """The console opens on the transactions."""
    return RedirectResponse(f"{PREFIX}/transactions", status_code=303)


def _login_page(
    request: Request, *, next_path: str, name: str = "", error: str = "", status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next_path": next_path, "name": name, "error": error},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=f"{PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.console.secure_cookies,
    )
    return response


@router.get("/login", include_in_schema=False)
async def login_form(
    request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The login form."""
    return _login_page(request, next_path=safe_next(next_path))


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=500)] = "",
) -> Response:
    """Check the password, open a session, go where the operator was going."""
    state = console_state(request)
    settings = state.settings.console
    target = safe_next(next_path)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(
            request, next_path=target, name=name, error="login.error.expired", status_code=403
        )
    name = name.strip().lower()
    address = client_address(request)
    operators = state.operators
    by_name, by_address = await operators.recent_login_failures(
        name=name, address=address, window_s=settings.login_window_s
    )
    # Attempts on a real operator's name go into their merchant's trail, where checkers see
    # them; attempts on unknown names belong to no merchant.
    known = await operators.get(name) if name else None
    merchant = known.merchant if known is not None else None
    if (
        by_name >= settings.login_failures_per_name
        or by_address >= settings.login_failures_per_address
    ):
        await operators.audit(
            name or "-", "login", merchant=merchant, outcome="throttled", address=address
        )
        response = _login_page(
            request, next_path=target, name=name, error="login.error.throttled", status_code=429
        )
        response.headers["Retry-After"] = str(settings.login_window_s)
        return response
    operator = await operators.check_password(name, password) if name else None
    if operator is None:
        await operators.audit(
            name or "-", "login", merchant=merchant, outcome="failed", address=address
        )
        return _login_page(
            request, next_path=target, name=name, error="login.error.wrong", status_code=401
        )
    token, _ = await operators.open_session(operator, ttl_s=settings.session_ttl_s, address=address)
    await operators.audit(operator.actor, "login", merchant=operator.merchant, address=address)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_s,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, session: SessionDep, _form: FormDep) -> Response:
    """End the session: its cookie opens nothing any more, even if it was copied."""
    operators = console_state(request).operators
    await operators.end_session(session.id)
    operator = session.operator
    await operators.audit(
        operator.actor, "logout", merchant=operator.merchant, address=client_address(request)
    )
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.console.secure_cookies,
    )
    return response
