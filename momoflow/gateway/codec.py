"""``/codec/encode`` and ``/codec/decode``: Temporal's remote codec protocol, for operators.

Temporal history holds momoflow's payloads encrypted (``momoflow/codec.py``). The Temporal
UI and CLI show them in clear only by sending them here: the body is a ``Payloads``
message in protobuf JSON (``{"payloads": [{"metadata": {...}, "data": "<base64>"}]}``),
and the answer has the same shape. The UI adds an ``X-Namespace`` header.

Only operators may call these endpoints. An operator proves who they are with one of:

- ``Authorization: Bearer <operator token>`` (the Temporal CLI's ``--codec-auth``, scripts);
- the session cookie set by ``/codec/login``, which the Temporal UI sends when its codec
  setting "include cross-origin credentials" is on (``TEMPORAL_CODEC_INCLUDE_CREDENTIALS``).
  ``/codec/logout`` revokes it for every gateway (``momoflow.codec_sessions``), and a
  session is refused while that cannot be checked;
- in ``env=local``/``test`` only, the token in the path: ``/codec/token/<token>/decode``.
  The dev server's UI cannot send a header or a cookie by itself, so ``momoflow dev`` gives
  it that URL as its codec endpoint.

Operator tokens are stored as SHA-256 hashes (``MOMOFLOW_CODEC__OPERATOR_TOKENS``). Browsers
may call from the configured UI origins only (``MOMOFLOW_CODEC__UI_ORIGINS``): preflights
from other origins are refused, and so are requests that carry another ``Origin``. Every
call is logged with the operator's name and the number of payloads, never their content.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from momoflow.codec import CodecError, EncryptionCodec, UnknownKeyError
from momoflow.codec_sessions import SessionRevocations, SessionsUnavailable
from momoflow.settings import CodecSettings, Settings, hash_api_key

log = logging.getLogger("momoflow.gateway.codec")

router = APIRouter(prefix="/codec", tags=["codec"])

#: The operator's browser session (``/codec/login``). Over https it is
#: ``__Host-momoflow_codec_session``: the browser then sends it over https only, to this
#: exact host, and no other site or subdomain can set it.
SESSION_COOKIE = "momoflow_codec_session"
SECURE_SESSION_COOKIE = f"__Host-{SESSION_COOKIE}"
#: Temporal's own limit on a payload is 2 MiB; a history page holds a few of them.
MAX_BODY_BYTES = 8 * 1024 * 1024
ALLOWED_HEADERS = "authorization, content-type, x-namespace"
#: v2 sessions carry an id, so that signing out can revoke them (``momoflow.codec_sessions``).
_SESSION_VERSION = "v2"
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

Operation = Literal["encode", "decode"]

_PAYLOADS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["payloads"],
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metadata": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "format": "byte"},
                    },
                    "data": {"type": "string", "format": "byte"},
                },
            },
        }
    },
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _PAYLOADS_SCHEMA}},
    },
    "responses": {
        "200": {"content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}},
        "400": {"description": "unreadable body, unknown key id, or undecryptable payload"},
        "401": {"description": "no valid operator credential"},
        "403": {"description": "a browser origin that is not the Temporal UI's"},
    },
}


# --------------------------------------------------------------------------- routes


@router.post(
    "/encode",
    summary="Encrypt payloads (remote codec protocol; operators only)",
    openapi_extra=_OPENAPI,
)
async def encode(request: Request) -> Response:
    """Encrypt ``Payloads`` with the active key, for an operator."""
    return await _convert(request, "encode", path_token=None)


@router.post(
    "/decode",
    summary="Decrypt payloads (remote codec protocol; operators only)",
    openapi_extra=_OPENAPI,
)
async def decode(request: Request) -> Response:
    """Decrypt ``Payloads`` with the keys they name, for an operator."""
    return await _convert(request, "decode", path_token=None)


@router.options("/encode", include_in_schema=False)
@router.options("/decode", include_in_schema=False)
async def preflight(request: Request) -> Response:
    """CORS preflight: allowed for the Temporal UI's origins only."""
    return _preflight(request)


@router.post("/token/{token}/encode", include_in_schema=False)
async def encode_with_path_token(token: str, request: Request) -> Response:
    """``/codec/encode`` authenticated by the token in the path (local and test only)."""
    return await _convert(request, "encode", path_token=token)


@router.post("/token/{token}/decode", include_in_schema=False)
async def decode_with_path_token(token: str, request: Request) -> Response:
    """``/codec/decode`` authenticated by the token in the path (local and test only)."""
    return await _convert(request, "decode", path_token=token)


@router.options("/token/{token}/encode", include_in_schema=False)
@router.options("/token/{token}/decode", include_in_schema=False)
async def preflight_with_path_token(token: str, request: Request) -> Response:
    """CORS preflight of the path-token routes."""
    if not _path_tokens_allowed(_settings(request)):
        return _not_found()
    return _preflight(request)


@router.get("/login", summary="Operator sign-in page for the Temporal UI's codec calls")
async def login_page(request: Request) -> HTMLResponse:
    """A form that exchanges an operator token for a browser session cookie."""
    settings = _settings(request)
    session = await _valid_session(request, settings.codec)
    return _page(settings, operator=session.operator if session else None, problem=None)


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    """Check the posted operator token and set the session cookie."""
    settings = _settings(request)
    refused = _refuse_foreign_origin(request, settings)
    if refused is not None:
        return refused
    body = await request.body()
    if len(body) > 16 * 1024:
        return _page(settings, operator=None, problem="request too large", status=413)
    token = (parse_qs(body.decode("utf-8", errors="replace")).get("token") or [""])[0].strip()
    operator = settings.codec.operator_for_token(token) if token else None
    if operator is None:
        log.warning("codec sign-in refused: unknown operator token")
        return _page(settings, operator=None, problem="unknown operator token", status=401)
    expires = int(time.time()) + settings.codec.session_ttl_s
    page = _page(settings, operator=operator, problem=None)
    name, path = _cookie_name_and_path(request)
    session = _Session(operator=operator, session_id=secrets.token_urlsafe(18), expires=expires)
    page.set_cookie(
        name,
        _session_value(settings.codec, session, hash_api_key(token)),
        max_age=settings.codec.session_ttl_s,
        path=path,
        secure=_secure_cookies(request),
        httponly=True,
        samesite="strict",
    )
    log.info("codec sign-in: operator %s, session of %d s", operator, settings.codec.session_ttl_s)
    return page


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """Forget the browser session."""
    settings = _settings(request)
    refused = _refuse_foreign_origin(request, settings)
    if refused is not None:
        return refused
    session = _parse_session(request, settings.codec)
    problem: str | None = None
    if session is not None:
        try:
            await _revocations(request).revoke(
                session.session_id, operator=session.operator, expires=session.expires
            )
        except SessionsUnavailable:
            log.error("codec sign-out of %s not recorded: Temporal unavailable", session.operator)
            until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(session.expires))
            problem = (
                "sign-out could not be recorded (the orchestration server is unreachable): "
                f"this session stays valid until {until}; sign out again later"
            )
    page = _page(settings, operator=None, problem=problem, status=503 if problem else 200)
    name, path = _cookie_name_and_path(request)
    page.delete_cookie(name, path=path, secure=_secure_cookies(request), httponly=True)
    if problem is None:
        log.info(
            "codec sign-out: operator %s", session.operator if session else "(no valid session)"
        )
    return page


# --------------------------------------------------------------------------- conversion


async def _convert(request: Request, operation: Operation, *, path_token: str | None) -> Response:
    settings = _settings(request)
    if path_token is not None and not _path_tokens_allowed(settings):
        return _not_found()
    origin = request.headers.get("origin")
    cors = _cors_headers(origin, settings.codec)
    refused = _refuse_foreign_origin(request, settings)
    if refused is not None:
        return refused
    operator = await _authenticate(request, settings.codec, path_token)
    if operator is None:
        return _error(
            401,
            "unauthenticated",
            "an operator token is required: 'Authorization: Bearer <token>', or sign in at "
            "/codec/login and let the Temporal UI include credentials",
            {**cors, "WWW-Authenticate": "Bearer"},
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _error(415, "unsupported_media_type", "send application/json", cors)
    body = await _read_limited(request)
    if body is None:
        return _error(413, "too_large", f"at most {MAX_BODY_BYTES} bytes per request", cors)
    payloads = Payloads()
    try:
        json_format.Parse(body, payloads, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        return _error(400, "invalid_payloads", f"not a Payloads message: {exc}", cors)
    codec = EncryptionCodec(settings.codec.key_bytes(), active_key_id=settings.codec.active_key_id)
    try:
        if operation == "encode":
            converted = await codec.encode(payloads.payloads)
        else:
            converted = await codec.decode(payloads.payloads)
    except UnknownKeyError as exc:
        return _error(400, "unknown_key_id", str(exc), cors)
    except CodecError as exc:
        return _error(400, "undecryptable_payload", str(exc), cors)
    namespace = request.headers.get("x-namespace", "")[:100]
    log.info(
        "codec %s of %d payload(s) for operator %s (namespace %r)",
        operation,
        len(converted),
        operator,
        namespace,
    )
    answer = json_format.MessageToDict(Payloads(payloads=converted))
    answer.setdefault("payloads", [])
    return JSONResponse(answer, headers={**cors, "Cache-Control": "no-store"})


async def _read_limited(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- who is calling


async def _authenticate(
    request: Request, codec: CodecSettings, path_token: str | None
) -> str | None:
    """The operator behind the request: path token, Bearer header, then session cookie."""
    if path_token is not None:
        return codec.operator_for_token(path_token)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return codec.operator_for_token(token.strip())
    session = await _valid_session(request, codec)
    return session.operator if session else None


def _path_tokens_allowed(settings: Settings) -> bool:
    return settings.env in ("local", "test")


def _session_key(codec: CodecSettings) -> bytes:
    """Sessions are signed with a key derived from the active codec key: every gateway
    holds it, and whoever holds it can read the payloads anyway."""
    active = codec.key_bytes()[codec.active_key_id]
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"momoflow codec session v1"
    ).derive(active)


@dataclass(frozen=True)
class _Session:
    operator: str
    session_id: str
    expires: int


def _session_mac(codec: CodecSettings, session: _Session, token_sha256: str) -> str:
    message = (
        f"{_SESSION_VERSION}:{session.session_id}:{session.expires}:{session.operator}:"
        f"{token_sha256}"
    ).encode()
    digest = hmac.new(_session_key(codec), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _session_value(codec: CodecSettings, session: _Session, token_sha256: str) -> str:
    """``v2:<session id>:<expires>:<mac>:<operator>``. The MAC covers the session id and
    the operator's token hash, so replacing or removing that token ends its sessions."""
    mac = _session_mac(codec, session, token_sha256)
    return f"{_SESSION_VERSION}:{session.session_id}:{session.expires}:{mac}:{session.operator}"


def _cookie_name_and_path(request: Request) -> tuple[str, str]:
    """The session cookie's name and path: ``__Host-`` (which requires ``Path=/``) over
    https, the plain name under ``/codec`` on a loopback host over http."""
    if _secure_cookies(request):
        return SECURE_SESSION_COOKIE, "/"
    return SESSION_COOKIE, "/codec"


def _parse_session(request: Request, codec: CodecSettings) -> _Session | None:
    """The cookie's session when its signature holds and it has not expired (whether it
    was signed out is :func:`_valid_session`'s question)."""
    value = request.cookies.get(_cookie_name_and_path(request)[0])
    if not value:
        return None
    parts = value.split(":", 4)
    if len(parts) != 5 or parts[0] != _SESSION_VERSION or not parts[2].isdigit():
        return None
    _, session_id, expires_text, mac, operator = parts
    session = _Session(operator=operator, session_id=session_id, expires=int(expires_text))
    if session.expires < time.time() or not session_id:
        return None
    found: _Session | None = None
    for entry in codec.operator_tokens:
        expected = _session_mac(codec, session, entry.token_sha256)
        if entry.operator == operator and hmac.compare_digest(expected, mac):
            found = session
    return found


async def _valid_session(request: Request, codec: CodecSettings) -> _Session | None:
    """The cookie's session unless it is forged, expired or signed out. When whether it
    was signed out cannot be learned, it is refused too."""
    session = _parse_session(request, codec)
    if session is None:
        return None
    try:
        revoked = await _revocations(request).is_revoked(session.session_id)
    except SessionsUnavailable:
        log.warning("codec session of %s refused: sign-outs cannot be checked", session.operator)
        return None
    return None if revoked else session


def _revocations(request: Request) -> SessionRevocations:
    revocations: SessionRevocations = request.app.state.codec_sessions
    return revocations


# --------------------------------------------------------------------------- CORS


def _cors_headers(origin: str | None, codec: CodecSettings) -> dict[str, str]:
    if origin is None or origin not in codec.ui_origins:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _preflight(request: Request) -> Response:
    settings = _settings(request)
    origin = request.headers.get("origin")
    cors = _cors_headers(origin, settings.codec)
    method = request.headers.get("access-control-request-method", "").upper()
    if not cors or method != "POST":
        log.warning("codec preflight refused for origin %r", (origin or "")[:200])
        return Response(status_code=403, headers={"Vary": "Origin"})
    headers = {
        **cors,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
    }
    if request.headers.get("access-control-request-private-network") == "true":
        headers["Access-Control-Allow-Private-Network"] = "true"
    return Response(status_code=204, headers=headers)


def _refuse_foreign_origin(request: Request, settings: Settings) -> Response | None:
    """A browser request from a page that is neither the UI nor this gateway: refused, so
    that another site cannot ride on an operator's session."""
    origin = request.headers.get("origin")
    if origin is None or origin in settings.codec.ui_origins or origin == _own_origin(request):
        return None
    log.warning("codec call refused for origin %r", origin[:200])
    return _error(
        403,
        "origin_not_allowed",
        "this origin may not call the codec endpoints",
        {"Vary": "Origin"},
    )


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


# --------------------------------------------------------------------------- helpers


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _secure_cookies(request: Request) -> bool:
    """``Secure`` everywhere but on a loopback host, where the UI and the gateway are
    reached over plain HTTP (``momoflow dev``, or both through an SSH tunnel)."""
    return request.url.scheme == "https" or request.url.hostname not in _LOOPBACK_HOSTS


def _error(status: int, code: str, message: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _not_found() -> JSONResponse:
    return _error(404, "not_found", "Not Found", {})


def _page(
    settings: Settings, *, operator: str | None, problem: str | None, status: int = 200
) -> HTMLResponse:
    if operator is not None:
        state = (
            f"<p>Signed in as <b>{html.escape(operator)}</b> for "
            f"{settings.codec.session_ttl_s // 3600} h. In the Temporal UI, open the codec "
            "server settings and turn on <i>Include cross-origin credentials</i>: the UI then "
            "shows momoflow's payloads decrypted.</p>"
            '<form method="post" action="/codec/logout"><button>Sign out</button></form>'
        )
    else:
        state = (
            '<form method="post" action="/codec/login">'
            '<label>Operator token <input type="password" name="token" autocomplete="off" '
            "required autofocus></label> <button>Sign in</button></form>"
        )
    warning = f'<p role="alert"><b>{html.escape(problem)}</b></p>' if problem else ""
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>momoflow codec</title>"
        "</head><body><h1>momoflow: read encrypted payloads</h1>"
        f"{warning}{state}</body></html>"
    )
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; form-action 'self'",
        },
    )
