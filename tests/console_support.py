"""Console tests' helpers: operators made with the real CLI, and an HTTP client that logs
in through the real login form.

The session cookie is ``Secure``: browsers send it to ``http://127.0.0.1`` (a trustworthy
origin), but Python's cookie jar keeps Secure cookies for HTTPS, so :class:`ConsoleClient`
carries cookies itself, as a browser on localhost does.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx

from tests.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'data-csrf="([^"]*)"')
_LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass(frozen=True)
class Account:
    """An operator made for a test."""

    name: str
    password: str
    role: str
    merchant: str


def add_operator(
    stack: Stack,
    role: str,
    *,
    merchant: str = "acme",
    name: str | None = None,
    password: str = PASSWORD,
    language: str | None = None,
    time_zone: str | None = None,
) -> Account:
    """Create an operator with ``momoflow operators add`` on the stack's record store."""
    name = name or f"{role}-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, "-m", "momoflow.cli", "operators", "add", name, "--role", role]
    argv += ["--merchant", merchant, "--password-stdin"]
    if language:
        argv += ["--language", language]
    if time_zone:
        argv += ["--time-zone", time_zone]
    done = subprocess.run(
        argv,
        input=password + "\n",
        env=stack.env | {"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return Account(name=name, password=password, role=role, merchant=merchant)


@dataclass
class ConsoleClient:
    """An HTTP client of the console, with a browser's cookie handling for 127.0.0.1."""

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=30, follow_redirects=False)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        found = (
            _CSRF.search(response.text)
            if "html" in response.headers.get("content-type", "")
            else None
        )
        if found and found.group(1):
            self.csrf = found.group(1)
        return response

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET with the session's cookies."""
        headers = {**self._cookie_header(), **kwargs.pop("headers", {})}
        return self._keep(self.http.get(path, headers=headers, **kwargs))

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """POST a form with the session's cookies and (unless ``csrf=False``) its token."""
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        headers = {**self._cookie_header(), **kwargs.pop("headers", {})}
        return self._keep(self.http.post(path, data=form, headers=headers, **kwargs))

    def login(self, account: Account) -> httpx.Response:
        """Log in through the form; asserts it worked (303 to the console)."""
        answer = self.try_login(account.name, account.password)
        assert answer.status_code == 303, answer.text[-2000:]
        page = self.get(answer.headers["location"])
        assert page.status_code == 200, page.text[-2000:]
        return page

    def try_login(self, name: str, password: str) -> httpx.Response:
        """Post the login form (fetched first, for its CSRF token)."""
        form = self.get("/console/login")
        token = _LOGIN_CSRF.search(form.text)
        assert token is not None, form.text[-2000:]
        return self.post(
            "/console/login",
            {"name": name, "password": password, "csrf_token": token.group(1)},
            csrf=False,
        )


def console(stack: Stack) -> ConsoleClient:
    """A console client of the stack's gateway (not logged in)."""
    return ConsoleClient(stack.gateway_url)


def logged_in(stack: Stack, account: Account) -> ConsoleClient:
    """A console client logged in as ``account``."""
    client = console(stack)
    client.login(account)
    return client
