"""A stand-in OpenTelemetry collector for the test stack: every OTLP/HTTP trace export it
receives is kept, as sent, in one file of a directory, so that tests can read the spans
every process of a test session exported (``tests/test_leak_scan.py`` searches them).

Run as ``python -m tests.otlp_sink --port P --out DIR``; ``GET /`` answers 200 once it
listens. Standard library only, so that it starts in a blink and depends on nothing the
processes it observes use.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: Largest export request kept (the SDK's batches are far smaller).
MAX_BODY_BYTES = 64 * 1024 * 1024


def serve(port: int, out: Path) -> None:
    """Listen on 127.0.0.1:``port`` until killed; one ``*.pb`` file per export request."""
    out.mkdir(parents=True, exist_ok=True)
    numbers = itertools.count(1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer(200, b"ok", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            if self.path.split("?")[0] != "/v1/traces":
                self._answer(404, b"", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, b"", "text/plain")
                return
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            with lock:
                name = out / f"{next(numbers):06d}.pb"
            name.write_bytes(body)
            # An empty ExportTraceServiceResponse: every span accepted.
            self._answer(200, b"", "application/x-protobuf")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: one line per export would drown the log."""

    with ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    serve(args.port, args.out)


if __name__ == "__main__":
    main()
