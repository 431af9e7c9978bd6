"""Run a simulator's ASGI app under uvicorn: in the foreground (CLI) or in a thread (tests)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import threading
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.types import ASGIApp

__all__ = [
    "PortInUseError",
    "SandboxServer",
    "ThreadedServer",
    "bind_socket",
    "serve_until_signal",
]


class PortInUseError(OSError):
    """The requested host:port is already taken by another listener."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Binding before uvicorn starts lets the caller report a taken port clearly and learn the
    real port without a race between "find a free port" and "listen on it".
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections (it checks
    # ``sock.proto``); with proto 0, Nagle + delayed ACK added ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(errno.EADDRINUSE, f"{host}:{port} is already in use") from exc
        raise
    return sock


def socket_port(sock: socket.socket) -> int:
    """The port a bound socket listens on."""
    return int(sock.getsockname()[1])


class SandboxServer(uvicorn.Server):
    """uvicorn server that reports readiness and leaves signal handling to its caller.

    uvicorn's own handlers re-raise the captured signal after shutdown, which would turn a
    clean SIGTERM into a non-zero exit; :func:`serve_until_signal` installs its own instead.
    """

    def __init__(self, config: uvicorn.Config, *, on_ready: Callable[[], None] | None = None):
        super().__init__(config)
        self._on_ready = on_ready

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit and self._on_ready is not None:
            self._on_ready()

    def request_exit(self) -> None:
        """Begin a graceful shutdown; a second request forces it."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def server_config(
    app: ASGIApp,
    *,
    log_level: str = "warning",
    graceful_shutdown: int = 3,
    configure_logging: bool = True,
) -> uvicorn.Config:
    """uvicorn configuration shared by the CLI and the threaded runner."""
    kwargs: dict[str, Any] = {}
    if not configure_logging:
        kwargs["log_config"] = None
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=graceful_shutdown,
        **kwargs,
    )


async def serve_until_signal(
    app: ASGIApp,
    sock: socket.socket,
    *,
    on_ready: Callable[[], None] | None = None,
    log_level: str = "warning",
    graceful_shutdown: int = 3,
) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT, then shut down cleanly."""
    server = SandboxServer(
        server_config(app, log_level=log_level, graceful_shutdown=graceful_shutdown),
        on_ready=on_ready,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_exit)
    try:
        await server.serve(sockets=[sock])
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class ThreadedServer:
    """An ASGI app served by uvicorn on a background thread, for tests and benchmarks.

    Usage::

        with ThreadedServer(app) as server:
            httpx.get(f"{server.url}/health")

    The app itself still runs on a single asyncio loop (the thread's); ``start`` returns only
    once the server accepts connections, or raises after ``ready_timeout`` seconds.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ready_timeout: float = 10.0,
        log_level: str = "warning",
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.ready_timeout = ready_timeout
        self.log_level = log_level
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:38211``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Bind, start the thread and wait until the server is ready."""
        sock = bind_socket(self.host, self.port)
        self.port = socket_port(sock)
        ready = threading.Event()
        server = SandboxServer(
            server_config(self.app, log_level=self.log_level, configure_logging=False),
            on_ready=ready.set,
        )
        self._server = server

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # surfaced to the caller of start()
                self._error = exc
            finally:
                sock.close()
                ready.set()

        self._thread = threading.Thread(target=run, name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(self.ready_timeout) or not server.started:
            self.stop()
            raise RuntimeError(f"server on {self.url} did not start: {self._error!r}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread (RuntimeError if it does not)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not stop within {timeout}s")
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
