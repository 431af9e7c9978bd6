"""Command line: ``python -m momoflow.sandbox <provider> [options]``.

One subcommand per simulator, defined in its package's ``cli`` module. Every option can
also be set through the environment variable ``<PROVIDER>_SANDBOX_<OPTION>`` (upper case,
dashes as underscores, e.g. ``CAURISFLUX_SANDBOX_WEBHOOK_SECRET``); a command-line flag
wins over the variable.

Exit codes: 0 after SIGTERM/SIGINT, 2 for a bad option or a port already in use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .caurisflux.cli import add_caurisflux_parser
from .mobilepay.cli import add_mobilepay_parser
from .novasend.cli import add_novasend_parser


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m momoflow.sandbox`` parser, one subcommand per provider."""
    parser = argparse.ArgumentParser(
        prog="python -m momoflow.sandbox", description="Run a provider simulator."
    )
    subparsers = parser.add_subparsers(dest="provider", required=True, metavar="PROVIDER")
    add_caurisflux_parser(subparsers)
    add_mobilepay_parser(subparsers)
    add_novasend_parser(subparsers)
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
