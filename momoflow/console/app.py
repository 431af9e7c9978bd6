"""The finance console, served by the gateway under ``/console``: see ``docs/console.md``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from momoflow.console.pages import auth
from momoflow.console.web import (
    PREFIX,
    ConsoleError,
    ConsoleHeaders,
    LoginRequired,
    error_page,
    login_redirect,
)

__all__ = ["install_console"]

STATIC = Path(__file__).parent / "static"


def install_console(app: FastAPI) -> None:
    """Add the console's pages, static files, error pages and security headers."""
    from momoflow.console.pages import audit, balances, campaigns, doubt, transactions

    for module in (auth, transactions, campaigns, doubt, balances, audit):
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(ConsoleError)
    async def console_error(request: Request, exc: ConsoleError) -> Response:
        return error_page(request, exc)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET" and request.headers.get("x-console-fragment") != "1":
            return login_redirect(request)
        return Response(status_code=401, headers={"WWW-Authenticate": "Cookie"})

    app.add_middleware(ConsoleHeaders)
