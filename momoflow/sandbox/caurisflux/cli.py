"""The ``caurisflux`` subcommand of ``python -m momoflow.sandbox``.

Every option can also be set through ``CAURISFLUX_SANDBOX_<OPTION>`` (upper case, dashes as
underscores, e.g. ``CAURISFLUX_SANDBOX_WEBHOOK_SECRET``); a command-line flag wins. Prints
``caurisflux sandbox listening on http://HOST:PORT`` once ready; exit code 2 for a bad
option or a port already in use, 0 after SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import os

from ..shared.cli import (
    TRUE_WORDS,
    env_name,
    env_option,
    parse_schedule,
    serve_cli,
    validated_config,
)
from .app import create_app
from .engine import CaurisFluxSandboxConfig

__all__ = ["ENV_PREFIX", "add_caurisflux_parser"]

ENV_PREFIX = "CAURISFLUX_SANDBOX_"


def add_caurisflux_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``caurisflux`` on the ``python -m momoflow.sandbox`` parser."""
    defaults = CaurisFluxSandboxConfig()
    parser = subparsers.add_parser(
        "caurisflux",
        help="CaurisFlux API simulator",
        description="CaurisFlux API simulator. Each option also reads "
        f"{ENV_PREFIX}<OPTION> from the environment.",
    )

    def option(flag: str, default: object, help_text: str, **kwargs: object) -> None:
        env_option(parser, ENV_PREFIX, flag, default, help_text, **kwargs)

    def switch(flag: str, help_text: str) -> None:
        # Unlike the other simulators' flags: no --no-… form, and only a true word counts.
        variable = env_name(ENV_PREFIX, flag)
        on = os.environ.get(variable, "").lower() in TRUE_WORDS
        parser.add_argument(
            flag, action="store_true", default=on, help=f"{help_text} (env {variable})"
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
        type=parse_schedule,
    )
    option("--quote-ttl", defaults.quote_ttl, "quote lifetime in seconds", type=float)
    option("--payment-ttl", defaults.payment_ttl, "payin lifetime in seconds", type=float)
    option("--seed", None, "seed for generated ids", type=int)
    option("--log-level", "warning", "uvicorn log level")
    switch("--allow-remote-control", "serve /_sandbox to non-loopback clients")
    switch(
        "--idempotency-key-only",
        "only the Idempotency-Key stops a second transfer: a reused reference or quote "
        "with a new key executes again",
    )
    parser.set_defaults(run=run_caurisflux)


def run_caurisflux(args: argparse.Namespace) -> int:
    """Build the config from ``args`` and serve until a signal; the exit code."""
    config = validated_config(
        lambda: CaurisFluxSandboxConfig(
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
    )
    if config is None:
        return 2
    return serve_cli(
        create_app(config),
        name="caurisflux",
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
