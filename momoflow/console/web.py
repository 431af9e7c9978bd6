"""What every console page shares: the session, permissions, CSRF, languages, rendering.

Routes declare what they need with the dependencies here:

* :data:`SessionDep`: a logged-in operator (otherwise a redirect to the login page, or a
  401 for a script's request);
* :func:`allowed` (``Depends(allowed(Permission.X))``): the operator's role allows ``X``
  (otherwise a 403 page, and a ``refused`` line in the audit trail);
* :data:`FormDep`: a POST's form, read only after its CSRF token matched the session's.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData, Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from momoflow.console.accounts import OperatorStore, Permission, Session
from momoflow.console.i18n import (
    LANGUAGES,
    format_amount,
    format_count,
    format_time,
    pick_language,
    translate,
)
from momoflow.records.store import RecordStore
from momoflow.settings import Settings

T = TypeVar("T")

__all__ = [
    "PREFIX",
    "SESSION_COOKIE",
    "ConsoleError",
    "ConsoleHeaders",
    "FormDep",
    "SessionDep",
    "allowed",
    "console_state",
    "render",
    "safe_next",
]

PREFIX = "/console"
SESSION_COOKIE = "momoflow_console"
LANGUAGE_COOKIE = "momoflow_console_lang"
LOGIN_CSRF_COOKIE = "momoflow_console_login"
TEMPLATES = Path(__file__).parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class ConsoleState:
    """The console's share of the gateway: settings, the record store, operators."""

    settings: Settings
    records: RecordStore | None

    @property
    def operators(self) -> OperatorStore:
        """The operator store (a :class:`ConsoleError` 503 when no store is configured)."""
        if self.records is None:
            raise ConsoleError(503, "console.error.no_store")
        return OperatorStore(self.records)

    @property
    def store(self) -> RecordStore:
        """The record store (a :class:`ConsoleError` 503 when none is configured)."""
        if self.records is None:
            raise ConsoleError(503, "console.error.no_store")
        return self.records


def console_state(request: Request) -> ConsoleState:
    """The console's state on the running app."""
    return ConsoleState(settings=request.app.state.settings, records=request.app.state.records)


class ConsoleError(Exception):
    """An error page: its status and the catalog key of its message."""

    def __init__(self, status: int, key: str, **params: object) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.params = params


class LoginRequired(Exception):
    """No live session: the login page, then back to where the operator was going."""


def client_address(request: Request) -> str:
    """The peer's address (a proxy's ``X-Forwarded-For`` is not trusted: see
    ``docs/console.md``)."""
    return request.client.host if request.client else ""


def language_of(request: Request, session: Session | None = None) -> str:
    """The page language: ``?lang=``, the operator's choice, the language cookie, the
    browser's ``Accept-Language``, French."""
    return pick_language(
        request.query_params.get("lang"),
        session.operator.language if session else None,
        request.cookies.get(LANGUAGE_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


async def current_session(request: Request) -> Session:
    """The logged-in operator's session; :class:`LoginRequired` otherwise."""
    cached: Session | None = getattr(request.state, "console_session", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        raise LoginRequired()
    state = console_state(request)
    session = await state.operators.session(
        token, idle_timeout_s=state.settings.console.idle_timeout_s
    )
    if session is None:
        raise LoginRequired()
    request.state.console_session = session
    wanted = request.query_params.get("lang")
    if wanted in LANGUAGES and wanted != session.operator.language:
        await state.operators.set_language(session.operator.id, wanted)
    return session


SessionDep = Annotated[Session, Depends(current_session)]


def allowed(permission: Permission) -> Callable[[Request, Session], Awaitable[Session]]:
    """A dependency: the session, when its operator's role allows ``permission``."""

    async def check(request: Request, session: SessionDep) -> Session:
        if session.operator.can(permission):
            return session
        operator = session.operator
        await console_state(request).operators.audit(
            operator.actor,
            f"{request.method.lower()} {request.url.path.removeprefix(PREFIX)}",
            merchant=operator.merchant,
            outcome="refused",
            detail={"missing_permission": permission.value, "role": operator.role.value},
            address=client_address(request),
        )
        raise ConsoleError(403, "console.error.forbidden", role=operator.role.value)

    return check


async def checked_form(request: Request, session: SessionDep) -> FormData:
    """A POST's form, after its CSRF token (field ``csrf_token`` or header
    ``X-CSRF-Token``) matched the session's; a 403 otherwise, before any other field is
    looked at. Also refuses a request whose ``Origin`` is another site."""
    _same_origin(request)
    _bounded(request)
    sent = request.headers.get("x-csrf-token")
    form = await request.form(max_files=1, max_fields=50, max_part_size=64 * 1024)
    if sent is None:
        field = form.get("csrf_token")
        sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        await form.close()
        operator = session.operator
        await console_state(request).operators.audit(
            operator.actor,
            f"post {request.url.path.removeprefix(PREFIX)}",
            merchant=operator.merchant,
            outcome="refused",
            detail={"reason": "missing or wrong CSRF token"},
            address=client_address(request),
        )
        raise ConsoleError(403, "console.error.csrf")
    return form


#: Room for a form's fields beside the largest campaign file.
_FORM_OVERHEAD = 256 * 1024


def _bounded(request: Request) -> None:
    """Refuse a body that is not sized in advance, or larger than the biggest form (a
    campaign file): browsers always send ``Content-Length`` for a form, and the HTTP
    server never reads past it, so nothing bigger is ever read or spooled to disk."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise ConsoleError(411, "console.error.length_required")
    limit = request.app.state.settings.campaigns.max_upload_bytes + _FORM_OVERHEAD
    if int(declared) > limit:
        raise ConsoleError(413, "console.error.too_large", limit=limit)


def _same_origin(request: Request) -> None:
    """A browser's ``Origin`` must be this site: the host the request was sent to, or the
    gateway's public URL. Only host names are compared: behind a proxy that ends TLS the
    gateway sees ``http`` where the browser says ``https``."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = urlsplit(origin).netloc if origin != "null" else ""
    public = urlsplit(request.app.state.settings.public_url).netloc
    if not host or host not in (request.headers.get("host", ""), public):
        raise ConsoleError(403, "console.error.csrf")


FormDep = Annotated[FormData, Depends(checked_form)]


def safe_next(target: str | None) -> str:
    """Where to go after login: a console path only (never another site)."""
    if (
        target
        and target.startswith(PREFIX + "/")
        and not target.startswith("//")
        and "\\" not in target
        and "\n" not in target
        and "\r" not in target
    ):
        return target
    return PREFIX + "/transactions"


def login_redirect(request: Request) -> RedirectResponse:
    """303 to the login page, coming back to this page afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PREFIX}/login?next={quote(here, safe='')}", status_code=303)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    session: Session | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page (or a fragment) in the operator's language and time zone."""
    settings: Settings = request.app.state.settings
    session = session or getattr(request.state, "console_session", None)
    language = language_of(request, session)
    time_zone = session.operator.time_zone if session else settings.console.time_zone

    def t(key: str, /, **params: object) -> str:
        return translate(language, key, **params)

    def query_with(**changes: object) -> str:
        """This page's query string with ``changes`` (None removes a parameter)."""
        params = dict(request.query_params)
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = str(value)
        return urlencode(params)

    page = _environment.get_template(template).render(
        {
            "t": t,
            "query_with": query_with,
            "lang": language,
            "languages": LANGUAGES,
            "session": session,
            "operator": session.operator if session else None,
            "csrf_token": session.csrf_token if session else "",
            "money": format_amount,
            "count": format_count,
            "when": lambda moment: format_time(moment, time_zone, language),
            "time_zone": time_zone,
            "path": request.url.path,
            "query": request.url.query,
            "prefix": PREFIX,
            "Permission": Permission,
            **(context or {}),
        }
    )
    response = HTMLResponse(page, status_code=status_code)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=365 * 24 * 3600,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=settings.console.secure_cookies,
        )
    return response


def error_page(request: Request, error: ConsoleError) -> Response:
    """The page of a :class:`ConsoleError` (a bare text for a script's request)."""
    return render(
        request,
        "error.html",
        {"message_key": error.key, "params": error.params, "status": error.status},
        status_code=error.status,
    )


#: Content Security Policy of every console response: only the console's own scripts and
#: styles, no frames, forms posting only to the console.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}


_LOGIN_BODY_LIMIT = 16 * 1024


class ConsoleHeaders:
    """ASGI middleware: the console's security headers on every ``/console`` response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to console responses; pass everything else through untouched."""
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST" and path == f"{PREFIX}/login":
            # Anyone may post the login form: its body is parsed before any check runs,
            # so its size is bounded here, before it is read.
            declared = Headers(scope=scope).get("content-length", "")
            if not declared.isdigit() or int(declared) > _LOGIN_BODY_LIMIT:
                refusal = Response(
                    "a login form is sized in advance and small",
                    status_code=413 if declared.isdigit() else 411,
                    headers=_HEADERS,
                )
                await refusal(scope, receive, send)
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


def wants_fragment(request: Request) -> bool:
    """Whether the console's script asked (it replaces part of a page)."""
    return Headers(scope=request.scope).get("x-console-fragment") == "1"


async def temporal_client(request: Request) -> Client:
    """The gateway's Temporal client; a 503 page when Temporal cannot be reached."""
    try:
        client: Client = await request.app.state.temporal.get()
    except HTTPException:
        raise ConsoleError(503, "console.error.temporal_unavailable") from None
    return client


async def read(what: Awaitable[T]) -> T:
    """Await a record-store call; a store that cannot be reached is a 503 page."""
    from momoflow.records.store import StoreUnavailable, is_unavailable

    try:
        return await what
    except StoreUnavailable:
        raise ConsoleError(503, "console.error.store_unavailable") from None
    except Exception as exc:
        if is_unavailable(exc):
            raise ConsoleError(503, "console.error.store_unavailable") from None
        raise
