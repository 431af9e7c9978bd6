"""Command line: ``python -m momoflow.sandbox <provider> [options]``.

One subcommand per simulator. Every option of ``caurisflux`` can also be set through the
environment variable ``CAURISFLUX_SANDBOX_<OPTION>`` (upper case, dashes as underscores,
e.g. ``CAURISFLUX_SANDBOX_WEBHOOK_SECRET``); a command-line flag wins over the variable.

Exit codes: 0 after SIGTERM/SIGINT, 2 for a bad option or a port already in use.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from .caurisflux import CaurisFluxSandboxConfig, create_app
from .kit import PortInUseError, bind_socket, serve_until_signal, socket_port
from .mobilepay_cli import add_mobilepay_parser
from .novasend_cli import add_novasend_parser

ENV_PREFIX = "CAURISFLUX_SANDBOX_"
_TRUE = {"1", "true", "yes", "on"}


def _schedule(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of seconds: {value!r}"
        ) from exc


def _add_caurisflux(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = CaurisFluxSandboxConfig()
    parser = subparsers.add_parser(
        "caurisflux",
        help="CaurisFlux API simulator",
        description="CaurisFlux API simulator. Each option also reads "
        f"{ENV_PREFIX}<OPTION> from the environment.",
    )

    def option(flag: str, default: object, help_text: str, **kwargs: object) -> None:
        env_name = ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")
        env_value = os.environ.get(env_name)
        # argparse converts string defaults with `type`, so env values get the same checks.
        parser.add_argument(
            flag,
            default=env_value if env_value is not None else default,
            help=f"{help_text} (env {env_name}; default: %(default)s)",
            **kwargs,  # type: ignore[arg-type]
        )

    option("--host", "127.0.0.1", "interface to listen on")
    option("--port", 8101, "TCP port (0: any free port)", type=int)
    option("--settle-delay", defaults.settle_delay, "seconds before settlement", type=float)
    option("--webhook-url", None, "default webhook URL when a request has no callbackUrl")
    option("--webhook-secret", defaults.webhook_secret, "HMAC secret of webhook signatures")
    option("--public-key", defaults.public_key, "accepted public key")
    option("--secret-key", defaults.secret_key, "accepted secret key")
    option(
        "--rate-limit-per-minute",
        defaults.rate_limit_per_minute,
        "requests per minute and API key, 0 = unlimited",
        type=int,
    )
    option("--time-scale", defaults.time_scale, "multiplier of simulated delays", type=float)
    option("--balance", defaults.balance, "initial merchant balance (XOF)", type=int)
    option(
        "--webhook-retry-schedule",
        ",".join(f"{s:g}" for s in defaults.webhook_retry_schedule),
        "comma-separated retry delays in seconds",
        type=_schedule,
    )
    option("--quote-ttl", defaults.quote_ttl, "quote lifetime in seconds", type=float)
    option("--payment-ttl", defaults.payment_ttl, "payin lifetime in seconds", type=float)
    option("--seed", None, "seed for generated ids", type=int)
    option("--log-level", "warning", "uvicorn log level")
    remote_env = os.environ.get(ENV_PREFIX + "ALLOW_REMOTE_CONTROL", "").lower() in _TRUE
    parser.add_argument(
        "--allow-remote-control",
        action="store_true",
        default=remote_env,
        help=f"serve /_sandbox to non-loopback clients (env {ENV_PREFIX}ALLOW_REMOTE_CONTROL)",
    )
    key_only_env = os.environ.get(ENV_PREFIX + "IDEMPOTENCY_KEY_ONLY", "").lower() in _TRUE
    parser.add_argument(
        "--idempotency-key-only",
        action="store_true",
        default=key_only_env,
        help="only the Idempotency-Key stops a second transfer: a reused reference or quote "
        f"with a new key executes again (env {ENV_PREFIX}IDEMPOTENCY_KEY_ONLY)",
    )
    parser.set_defaults(run=_run_caurisflux)


def _run_caurisflux(args: argparse.Namespace) -> int:
    try:
        config = CaurisFluxSandboxConfig(
            public_key=args.public_key,
            secret_key=args.secret_key,
            settle_delay=args.settle_delay,
            time_scale=args.time_scale,
            webhook_url=args.webhook_url or None,
            webhook_secret=args.webhook_secret,
            webhook_retry_schedule=args.webhook_retry_schedule,
            rate_limit_per_minute=args.rate_limit_per_minute,
            balance=args.balance,
            quote_ttl=args.quote_ttl,
            payment_ttl=args.payment_ttl,
            seed=args.seed,
            allow_remote_control=args.allow_remote_control,
            idempotency_key_only=args.idempotency_key_only,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"error: invalid {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    try:
        sock = bind_socket(args.host, args.port)
    except PortInUseError:
        print(
            f"error: cannot listen on {args.host}:{args.port}: address already in use",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{socket_port(sock)}"

    def ready() -> None:
        print(f"caurisflux sandbox listening on {url}", flush=True)

    asyncio.run(
        serve_until_signal(create_app(config), sock, on_ready=ready, log_level=args.log_level)
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m momoflow.sandbox`` parser, one subcommand per provider."""
    parser = argparse.ArgumentParser(
        prog="python -m momoflow.sandbox", description="Run a provider simulator."
    )
    subparsers = parser.add_subparsers(dest="provider", required=True, metavar="PROVIDER")
    _add_caurisflux(subparsers)
    add_mobilepay_parser(subparsers)  # MOBILEPAY_SANDBOX_<OPTION>, see mobilepay_cli
    add_novasend_parser(subparsers)  # NOVASEND_SANDBOX_<OPTION>, see novasend_cli
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
