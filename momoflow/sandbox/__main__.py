"""Command line: ``python -m momoflow.sandbox <provider> [options]``.

One subcommand per simulator, defined in its package's ``cli`` module and named by its
provider's spec (``SandboxEntry``): each simulator is imported only to register its
subcommand, never its adapter's code. Every option can
also be set through the environment variable ``<PROVIDER>_SANDBOX_<OPTION>`` (upper case,
dashes as underscores, e.g. ``CAURISFLUX_SANDBOX_WEBHOOK_SECRET``); a command-line flag
wins over the variable.

Exit codes: 0 after SIGTERM/SIGINT, 2 for a bad option or a port already in use.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from momoflow.providers.catalog import all_specs
from momoflow.providers.spec import SandboxEntry

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def parser_adder(entry: SandboxEntry) -> Callable[[SubParsers], None]:
    """The function named by ``entry.add_parser`` (``module:function``)."""
    module_name, _, function_name = entry.add_parser.partition(":")
    adder: Callable[[SubParsers], None] = getattr(
        importlib.import_module(module_name), function_name
    )
    return adder


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m momoflow.sandbox`` parser, one subcommand per provider."""
    parser = argparse.ArgumentParser(
        prog="python -m momoflow.sandbox", description="Run a provider simulator."
    )
    subparsers = parser.add_subparsers(dest="provider", required=True, metavar="PROVIDER")
    for spec in sorted(all_specs(), key=lambda spec: spec.sandbox.command):
        parser_adder(spec.sandbox)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:  # a signal that arrived before the handlers were installed
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
