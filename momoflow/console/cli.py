"""``momoflow operators``: the finance console's operator accounts.

::

    momoflow operators add NAME --role viewer|maker|checker|admin [--merchant M]
                           [--time-zone TZ] [--language fr|en] [--password-stdin]
    momoflow operators list
    momoflow operators disable NAME | enable NAME
    momoflow operators password NAME [--password-stdin]

The password is asked twice on the terminal (or read from the first line of standard input
with ``--password-stdin``), hashed with Argon2id, and never printed or stored in clear.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from momoflow.console.accounts import NAME_PATTERN, Role

operators_app = typer.Typer(
    help="Finance console operators: add, list, disable, enable, set a password.",
    no_args_is_help=True,
)

T = TypeVar("T")

_NAME = typer.Argument(help=f"The operator's login name ({NAME_PATTERN})")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _run(work: Callable[..., Awaitable[T]]) -> T:
    """Run ``work(operator_store)`` on the configured record store."""
    from momoflow.console.accounts import OperatorStore
    from momoflow.records.store import RecordStore, is_unavailable
    from momoflow.settings import get_settings

    database = get_settings().database
    if database.url is None:
        raise _fail(
            "no record store: set MOMOFLOW_DATABASE__URL to a PostgreSQL URL "
            "(operators are kept in it)"
        )

    async def main() -> T:
        records = RecordStore.from_settings(database)
        try:
            return await work(OperatorStore(records))
        finally:
            await records.close()

    try:
        return asyncio.run(main())
    except Exception as exc:
        if is_unavailable(exc):
            raise _fail("the record store cannot be reached; nothing was changed") from None
        if "operators" in str(exc) and "does not exist" in str(exc):
            raise _fail(
                "the record store has no operators table: run `momoflow db upgrade` first"
            ) from None
        raise


def _read_password(name: str, from_stdin: bool) -> str:
    from momoflow.console.passwords import check_new_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = check_new_password(password, name=name)
    if problem is not None:
        raise _fail(f"password: {problem}")
    return password


@operators_app.command("add")
def add(
    name: Annotated[str, _NAME],
    role: Annotated[Role, typer.Option(help="What the operator may do", case_sensitive=False)],
    merchant: Annotated[
        str | None,
        typer.Option(help="The merchant the operator works for (default: the only one)"),
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option(help="IANA time zone of the pages (default: MOMOFLOW_CONSOLE__TIME_ZONE)"),
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="fr or en (default: MOMOFLOW_CONSOLE__LANGUAGE)")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create an operator account."""
    import re
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from momoflow.console.accounts import OperatorExists, OperatorStore
    from momoflow.settings import get_settings

    settings = get_settings()
    if not re.fullmatch(NAME_PATTERN, name):
        raise _fail(f"name: must match {NAME_PATTERN} (lower-case letters, digits, . _ -)")
    merchants = sorted({entry.merchant for entry in settings.api_keys})
    if merchant is None:
        if len(merchants) != 1:
            raise _fail(f"--merchant is required: this deployment serves {', '.join(merchants)}")
        merchant = merchants[0]
    elif merchant not in merchants:
        raise _fail(
            f"merchant: {merchant!r} has no API key here (MOMOFLOW_API_KEYS serves "
            f"{', '.join(merchants)})"
        )
    zone = time_zone or settings.console.time_zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"time zone: {zone!r} is not an IANA time zone (e.g. Africa/Dakar)") from None
    chosen_language = language or settings.console.language
    if chosen_language not in ("fr", "en"):
        raise _fail("language: must be fr or en")
    password = _read_password(name, password_stdin)

    async def work(store: OperatorStore) -> None:
        await store.add(
            name,
            merchant=merchant,
            role=role,
            password=password,
            time_zone=zone,
            language=chosen_language,
        )
        await store.audit(
            "cli",
            "operator_added",
            merchant=merchant,
            target=f"operator:{name}",
            detail={"role": role.value},
        )

    try:
        _run(work)
    except OperatorExists:
        raise _fail(f"an operator named {name!r} exists already") from None
    typer.echo(f"operator {name} added: {role.value} for {merchant}, {zone}, {chosen_language}")


@operators_app.command("list")
def list_operators() -> None:
    """Every operator: name, role, merchant, time zone, language, whether active."""
    from momoflow.console.accounts import Operator, OperatorStore

    async def work(store: OperatorStore) -> list[Operator]:
        return await store.all()

    for operator in _run(work):
        state = "active" if operator.active else "disabled"
        typer.echo(
            f"{operator.name}\t{operator.role.value}\t{operator.merchant}\t"
            f"{operator.time_zone}\t{operator.language}\t{state}"
        )


def _switch(name: str, active: bool) -> None:
    from momoflow.console.accounts import OperatorStore

    async def work(store: OperatorStore) -> bool:
        found = await store.set_active(name, active)
        if found:
            operator = await store.get(name)
            await store.audit(
                "cli",
                "operator_enabled" if active else "operator_disabled",
                merchant=operator.merchant if operator else None,
                target=f"operator:{name}",
            )
        return found

    if not _run(work):
        raise _fail(f"no operator named {name!r}")
    typer.echo(f"operator {name} {'enabled' if active else 'disabled (sessions ended)'}")


@operators_app.command("disable")
def disable(name: Annotated[str, _NAME]) -> None:
    """Disable an operator: they cannot log in, and their open sessions end."""
    _switch(name, False)


@operators_app.command("enable")
def enable(name: Annotated[str, _NAME]) -> None:
    """Let a disabled operator log in again."""
    _switch(name, True)


@operators_app.command("password")
def password(
    name: Annotated[str, _NAME],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Set an operator's password; their open sessions end."""
    from momoflow.console.accounts import OperatorStore

    secret = _read_password(name, password_stdin)

    async def work(store: OperatorStore) -> bool:
        found = await store.set_password(name, secret)
        if found:
            operator = await store.get(name)
            await store.audit(
                "cli",
                "operator_password_set",
                merchant=operator.merchant if operator else None,
                target=f"operator:{name}",
            )
        return found

    if not _run(work):
        raise _fail(f"no operator named {name!r}")
    typer.echo(f"password of {name} set (sessions ended)")
