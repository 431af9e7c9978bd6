"""Command-line plumbing shared by the simulator subcommands of ``python -m momoflow.sandbox``.

- :func:`env_option`: an argparse option whose default comes from ``<PREFIX><OPTION>``;
- :func:`env_flag`: a boolean ``--flag/--no-flag`` whose default comes from the environment;
- :func:`validated_config`: the simulator's settings, or one error line for a bad value;
- :func:`serve_cli`: bind, print the ready line, serve until SIGTERM/SIGINT, map a taken
  port to exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp

from .serving import PortInUseError, bind_socket, serve_until_signal, socket_port

__all__ = [
    "TRUE_WORDS",
    "env_flag",
    "env_name",
    "env_option",
    "parse_schedule",
    "serve_cli",
    "validated_config",
]

ConfigT = TypeVar("ConfigT", bound=BaseModel)

#: Environment values read as "true" by :func:`env_flag`.
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def env_name(prefix: str, flag: str) -> str:
    """``--webhook-url`` with prefix ``X_`` → ``X_WEBHOOK_URL``."""
    return prefix + flag.lstrip("-").upper().replace("-", "_")


def env_option(
    parser: argparse.ArgumentParser,
    prefix: str,
    flag: str,
    default: object,
    help_text: str,
    **kwargs: Any,
) -> None:
    """Add ``flag``; the environment variable, when set, replaces ``default``.

    argparse converts string defaults with ``type``, so environment values get the same
    checks as command-line values, and a flag on the command line still wins.
    """
    variable = env_name(prefix, flag)
    value = os.environ.get(variable)
    parser.add_argument(
        flag,
        default=value if value is not None else default,
        help=f"{help_text} (env {variable}; default: %(default)s)",
        **kwargs,
    )


def env_flag(
    parser: argparse.ArgumentParser, prefix: str, flag: str, default: bool, help_text: str
) -> None:
    """Add ``--flag/--no-flag``; ``<PREFIX><FLAG>`` (1/true/yes/on or anything else) sets
    the default."""
    variable = env_name(prefix, flag)
    value = os.environ.get(variable)
    parser.add_argument(
        flag,
        action=argparse.BooleanOptionalAction,
        default=value.strip().lower() in TRUE_WORDS if value is not None else default,
        help=f"{help_text} (env {variable}=1|0; default: %(default)s)",
    )


def parse_schedule(value: str) -> tuple[float, ...]:
    """``"60,600"`` → ``(60.0, 600.0)``, for retry-schedule options."""
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of seconds: {value!r}"
        ) from exc


def validated_config(build: Callable[[], ConfigT]) -> ConfigT | None:
    """``build()``, the simulator's settings from the parsed options; None after
    ``error: invalid FIELD: problem`` on stderr when a value is invalid."""
    try:
        return build()
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"error: invalid {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return None


def serve_cli(app: ASGIApp, *, name: str, host: str, port: int, log_level: str) -> int:
    """Serve ``app`` in the foreground; the process exit code.

    Prints exactly ``<name> sandbox listening on http://HOST:PORT`` on stdout once the
    server accepts connections. A port that cannot be bound gives one line on stderr and 2.
    """
    try:
        sock = bind_socket(host, port)
    except PortInUseError:
        print(f"error: cannot listen on {host}:{port}: address already in use", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{socket_port(sock)}"

    def ready() -> None:
        print(f"{name} sandbox listening on {url}", flush=True)

    asyncio.run(serve_until_signal(app, sock, on_ready=ready, log_level=log_level))
    return 0
