"""The real parts tests run against: a Temporal dev server, the CaurisFlux sandbox, the
gateway and a worker, each a child process on free ports of 127.0.0.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.history.v1 import History
from temporalio.client import Client

from activities.records import RecordActivities
from momoflow import search_attributes
from momoflow.processes import (
    ManagedProcess,
    free_port,
    http_ready,
    tcp_ready,
    temporal_dev_server_argv,
)
from momoflow.records.embedded import EmbeddedPostgres
from momoflow.records.migrate import run_db_upgrade
from momoflow.records.store import RecordStore
from momoflow.settings import hash_api_key

PUBLIC_KEY = "pk_test_momoflow"
SECRET_KEY = "sk_test_momoflow"
WEBHOOK_SECRET = "whsec_momoflow_sandbox"
NOVASEND_WEBHOOK_SECRET = "nswh_momoflow_sandbox"
MOBILEPAY_WEBHOOK_TOKEN = "mpwh_momoflow_sandbox_token"
#: Where the tests' merchant notification endpoints listen: the one non-public address the
#: test stack lets notifications reach (``MOMOFLOW_NOTIFY_ALLOW``).
MERCHANT_HOST = "127.0.0.2"
ACME_KEY = "mf_test_acme_key"
ACME_NOTIFY_SECRET = "acme-notification-secret"
GLOBEX_KEY = "mf_test_globex_key"
#: A merchant only the gateway fuzz test uses, so that every workflow it may start can be
#: told apart from the other tests' (``tests/test_fuzz_gateway.py``).
FUZZ_KEY = "mf_test_fuzz_key"
#: A merchant whose records the console tests seed with dates years back, so that they
#: never land in another test's period (``tests/test_console_transactions.py``).
LEDGER_KEY = "mf_test_ledger_key"

#: Short deadlines so that tests see every branch quickly (the time-skipping tests use
#: the production defaults instead).
TEST_TIMINGS = {
    "provider_call_timeout_s": 5,
    "quote_timeout_s": 20,
    "submit_timeout_s": 40,
    "settle_timeout_s": 25,
    "poll_schedule_s": [1, 2, 3],
    "reconcile_poll_interval_s": 3600,
    "reconcile_horizon_s": 3600,
}


#: Payins: short expiry grace and reversal window, so that every branch shows in seconds.
TEST_PAYIN_TIMINGS = {
    "provider_call_timeout_s": 5,
    "submit_timeout_s": 40,
    "default_expiry_s": 20,
    "expiry_grace_s": 1,
    "poll_schedule_s": [1, 2, 3],
    "late_reversal_window_s": 40,
    "late_reversal_poll_interval_s": 2,
    "reconcile_poll_interval_s": 3600,
    "reconcile_horizon_s": 3600,
}


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Stack:
    """Addresses and processes of one running test stack."""

    root: Path
    temporal_address: str
    sandbox_url: str
    gateway_url: str
    sandbox_urls: dict[str, str]
    env: dict[str, str]
    #: The stack's own PostgreSQL (the record store), as a SQLAlchemy URL.
    database_url: str = ""
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def spans_dir(self) -> Path:
        """Where the stand-in collector keeps every span the session's processes export
        (one OTLP/HTTP request body per file, ``tests/otlp_sink.py``)."""
        return self.root / "spans"

    # ------------------------------------------------------------ processes

    def start_worker(
        self, name: str, *, prefix: str, extra_env: Mapping[str, str] | None = None
    ) -> ManagedProcess:
        """A worker subprocess polling the queues of ``prefix``."""
        env = {**self.env, "MOMOFLOW_TASK_QUEUE_PREFIX": prefix, **(extra_env or {})}
        proc = ManagedProcess(
            name,
            [sys.executable, "-m", "momoflow.cli", "worker"],
            log_path=self.root / "logs" / f"{name}.log",
            env=env,
        )
        proc.start()
        proc.wait_until(
            lambda: "momoflow worker ready" in proc.tail(100), timeout=60, what="polling"
        )
        self.processes[name] = proc
        return proc

    def restart(self, name: str, *, crash: bool, timeout: float = 60) -> ManagedProcess:
        """Stop one process (SIGKILL when ``crash``, else SIGTERM) and start it again with
        the same command, environment and ports."""
        old = self.processes[name]
        if crash:
            old.kill()
        else:
            old.stop()
        new = ManagedProcess(
            old.name,
            old.argv,
            log_path=old.log_path,
            env=old.env,
            ready=old.ready,
            cwd=old.cwd,
        )
        self.processes[name] = new.start(timeout=timeout)
        return new

    def stop_all(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()

    def keep_raw_histories(self) -> int:
        """Write the raw history of every workflow on this stack's Temporal server under
        :data:`RAW_HISTORIES` of its root, as the server stores it (read without momoflow's
        codec), so that the leak scan can read them after the server has stopped. Returns
        how many were written."""
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            # A thread of its own: the session's event loop belongs to pytest-asyncio.
            written: int = thread.submit(
                asyncio.run, _write_raw_histories(self.temporal_address, self.root)
            ).result(timeout=300)
        return written

    def journal_problems(self) -> list[str]:
        """What is wrong with the stack's double-entry journal: entries whose lines do not
        sum to zero, and transactions that moved money without an entry (none expected)."""

        async def read() -> list[str]:
            store = RecordStore.connect(self.database_url)
            try:
                unbalanced = await store.unbalanced_entries()
                missing = await store.unjournaled()
            finally:
                await store.close()
            return [f"unbalanced entry {e}" for e in unbalanced] + [
                f"{workflow_id} moved money without a journal entry" for workflow_id in missing
            ]

        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            # A thread of its own: the session's event loop belongs to pytest-asyncio.
            problems: list[str] = thread.submit(asyncio.run, read()).result(timeout=60)
        return problems

    # ------------------------------------------------------------ sandbox control

    def sandbox(self, provider: str = "caurisflux") -> httpx.Client:
        return httpx.Client(base_url=self.sandbox_urls[provider], timeout=10)

    def fault(self, provider: str = "caurisflux", **spec: Any) -> str:
        with self.sandbox(provider) as http:
            answer = http.post("/_sandbox/faults", json=spec)
            answer.raise_for_status()
            return str(answer.json().get("id", ""))

    def clear_faults(self) -> None:
        for provider in self.sandbox_urls:
            with self.sandbox(provider) as http:
                http.delete("/_sandbox/faults").raise_for_status()

    def configure_sandbox(self, provider: str = "caurisflux", **config: Any) -> None:
        with self.sandbox(provider) as http:
            http.post("/_sandbox/config", json=config).raise_for_status()

    def ledger_entry(self, key: str, provider: str = "caurisflux") -> dict[str, Any] | None:
        with self.sandbox(provider) as http:
            answer = http.get(f"/_sandbox/ledger/{key}")
            if answer.status_code == 404:
                return None
            answer.raise_for_status()
            entry: dict[str, Any] = answer.json()
            return entry

    def sandbox_requests(self, provider: str = "caurisflux") -> list[dict[str, Any]]:
        with self.sandbox(provider) as http:
            answer = http.get("/_sandbox/requests")
            answer.raise_for_status()
            body = answer.json()
            return list(body["requests"] if isinstance(body, dict) else body)

    # ------------------------------------------------------------ gateway

    def gateway(self, key: str | None = ACME_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.gateway_url, timeout=15, headers=headers)

    def wait_for_payout(
        self, reference: str, statuses: set[str], *, timeout: float = 60, key: str = ACME_KEY
    ) -> dict[str, Any]:
        with self.gateway(key) as http:

            def check() -> dict[str, Any] | None:
                answer = http.get(f"/v1/payouts/{reference}")
                if answer.status_code == 200 and answer.json()["status"] in statuses:
                    body: dict[str, Any] = answer.json()
                    return body
                return None

            result: dict[str, Any] = wait_until(
                check, timeout=timeout, what=f"payout {reference} in {sorted(statuses)}"
            )
            return result


#: Where a stack keeps its raw histories (:meth:`Stack.keep_raw_histories`) and its
#: environment (``start_stack``) for the leak scan: directory and file names under its root.
RAW_HISTORIES = "raw-histories"
STACK_ENV = "stack-env.json"


async def _write_raw_histories(address: str, root: Path) -> int:
    # No data converter of momoflow's: no codec, nothing decrypted.
    client = await Client.connect(address)
    ids = sorted({execution.id async for execution in client.list_workflows()})
    out = root / RAW_HISTORIES
    out.mkdir(parents=True, exist_ok=True)
    gate = asyncio.Semaphore(8)

    async def write(number: int, workflow_id: str) -> None:
        async with gate:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        path = out / f"{number:06d}.history"
        path.write_bytes(History(events=history.events).SerializeToString())

    await asyncio.gather(*(write(n, wid) for n, wid in enumerate(ids)))
    (out / "index.json").write_text(json.dumps({f"{n:06d}.history": w for n, w in enumerate(ids)}))
    return len(ids)


def signed_caurisflux_webhook(
    payload: Mapping[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    delivery_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A webhook signed the way CaurisFlux does (for tests that play the provider)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Signature": f"sha256={signature}",
        "X-Webhook-Timestamp": ts,
        "X-Webhook-Event": str(payload.get("event", "")),
        "X-Webhook-Delivery-Id": delivery_id or str(uuid.uuid4()),
    }
    return body, headers


@contextlib.asynccontextmanager
async def record_activities(stack: Stack) -> AsyncIterator[list[Callable[..., Any]]]:
    """The record store's activity, on the stack's database, for a test's own workflow
    worker (every payout, payin and refund workflow writes its records through it)."""
    store = RecordStore.connect(stack.database_url)
    try:
        yield RecordActivities(store).all()
    finally:
        await store.close()


def migrate_records(env: Mapping[str, str], log_path: Path) -> None:
    """``momoflow db upgrade`` against the stack's database (the command operators run)."""
    run_db_upgrade(env, log_path)


def start_stack(
    root: Path,
    *,
    db_file: Path | None = None,
    env_overrides: Mapping[str, str] | None = None,
    sandbox_args: Sequence[str] = (),
) -> Stack:
    """Start Temporal, the three sandboxes and the gateway (workers are started by
    fixtures). ``db_file`` keeps Temporal's state on disk (so it survives a restart);
    ``env_overrides`` and ``sandbox_args`` tune a stack for one kind of test."""
    temporal_port, gateway_port, otlp_port = free_port(), free_port(), free_port()
    postgres = EmbeddedPostgres(root / "postgres", free_port(), durable=False)
    sandbox_ports = {name: free_port() for name in ("caurisflux", "novasend", "mobilepay")}
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    sandbox_urls = {name: f"http://127.0.0.1:{port}" for name, port in sandbox_ports.items()}
    env = {
        "MOMOFLOW_ENV": "test",
        "MOMOFLOW_TEMPORAL__ADDRESS": f"127.0.0.1:{temporal_port}",
        "MOMOFLOW_DATABASE__URL": postgres.url,
        "MOMOFLOW_CAURISFLUX__BASE_URL": f"{sandbox_urls['caurisflux']}/api/v1",
        "MOMOFLOW_CAURISFLUX__TIMEOUT_S": "3",
        "MOMOFLOW_CAURISFLUX__RATE_LIMIT_PER_MINUTE": "60000",
        "MOMOFLOW_NOVASEND__BASE_URL": sandbox_urls["novasend"],
        "MOMOFLOW_NOVASEND__TIMEOUT_S": "3",
        "MOMOFLOW_NOVASEND__RATE_LIMIT_PER_MINUTE": "60000",
        "MOMOFLOW_MOBILEPAY__BASE_URL": f"{sandbox_urls['mobilepay']}/api/v1",
        "MOMOFLOW_MOBILEPAY__TIMEOUT_S": "3",
        "MOMOFLOW_MOBILEPAY__RATE_LIMIT_PER_HOUR": "3600000",
        "MOMOFLOW_MOBILEPAY__POLL_SCHEDULE_S": "[1, 2, 3]",
        # Merchant endpoints of the tests listen on 127.0.0.2 (MERCHANT_HOST); the sandboxes,
        # the gateway and Temporal on 127.0.0.1, which notifications cannot reach.
        "MOMOFLOW_NOTIFY_ALLOW": json.dumps([MERCHANT_HOST]),
        # One walk of the list per second at most, for every pending transaction.
        "MOMOFLOW_MOBILEPAY__STATUS_READ_INTERVAL_S": "1",
        # After an unknown create, look for the transfer for seconds, not 15 minutes.
        "MOMOFLOW_MOBILEPAY__CONSISTENCY_WINDOW_S": "5",
        # Tests send bursts no merchant should; tests/test_merchant_limits.py tries limits.
        "MOMOFLOW_LIMITS__REQUESTS_PER_WINDOW": "100000",
        # Campaign tests follow one another on a stack faster than some campaigns leave
        # pre-flight; the cap itself is tried with settings of its own there too.
        "MOMOFLOW_LIMITS__CONCURRENT_PREFLIGHTS": "50",
        "MOMOFLOW_PUBLIC_URL": gateway_url,
        "MOMOFLOW_GATEWAY_PORT": str(gateway_port),
        "MOMOFLOW_GRACEFUL_SHUTDOWN_S": "2",
        "MOMOFLOW_API_KEYS": json.dumps(
            [
                {"merchant": "acme", "key_sha256": hash_api_key(ACME_KEY)},
                {"merchant": "globex", "key_sha256": hash_api_key(GLOBEX_KEY)},
                {"merchant": "fuzz", "key_sha256": hash_api_key(FUZZ_KEY)},
                {"merchant": "ledger", "key_sha256": hash_api_key(LEDGER_KEY)},
            ]
        ),
        "MOMOFLOW_PAYOUT_TIMINGS": json.dumps(TEST_TIMINGS),
        "MOMOFLOW_PAYIN_TIMINGS": json.dumps(TEST_PAYIN_TIMINGS),
        "MOMOFLOW_NOTIFICATION_HORIZON_S": "120",
        "MOMOFLOW_NOTIFICATION_SECRETS": json.dumps({"acme": ACME_NOTIFY_SECRET}),
        "MOMOFLOW_TASK_QUEUE_PREFIX": "momoflow-test",
        "MOMOFLOW_RECONCILE__REPORTS_DIR": str(root / "reports"),
        "MOMOFLOW_CAMPAIGNS__STORE_DIR": str(root / "campaigns"),
        "PYTHONUNBUFFERED": "1",
        # Every process exports its spans to the stand-in collector, so that the leak scan
        # can read the traces of the whole run (standard variables: the settings stay as a
        # deployment without a collector has them).
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{otlp_port}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        **(env_overrides or {}),
    }
    # The leak scan forbids every secret this environment holds, even after the stack stops.
    root.mkdir(parents=True, exist_ok=True)
    (root / STACK_ENV).write_text(json.dumps(env))
    stack = Stack(
        root=root,
        temporal_address=f"127.0.0.1:{temporal_port}",
        sandbox_url=sandbox_urls["caurisflux"],
        gateway_url=gateway_url,
        sandbox_urls=sandbox_urls,
        env=env,
        database_url=postgres.url,
    )
    webhook_urls = {
        "caurisflux": f"{gateway_url}/webhooks/caurisflux",
        "novasend": f"{gateway_url}/webhooks/novasend",
        "mobilepay": f"{gateway_url}/webhooks/mobilepay/{MOBILEPAY_WEBHOOK_TOKEN}",
    }
    limits = {
        "caurisflux": ["--rate-limit-per-minute", "0"],
        "novasend": ["--rate-limit-per-minute", "0"],
        "mobilepay": ["--rate-limit-per-hour", "0"],
    }
    logs = root / "logs"
    try:
        # Started first, so stopped last: the others flush their spans when they stop.
        stack.processes["otlp-sink"] = ManagedProcess(
            "otlp-sink",
            [sys.executable, "-m", "tests.otlp_sink", "--port", str(otlp_port)]
            + ["--out", str(stack.spans_dir)],
            log_path=logs / "otlp-sink.log",
            env=env,
            ready=http_ready(f"http://127.0.0.1:{otlp_port}/"),
            cwd=Path(__file__).resolve().parent.parent,
        ).start(timeout=30)
        postgres.prepare()
        stack.processes["postgres"] = postgres.process(logs / "postgres.log").start(timeout=30)
        migrate_records(env, logs / "db-upgrade.log")
        stack.processes["temporal"] = ManagedProcess(
            "temporal",
            temporal_dev_server_argv(
                port=temporal_port,
                ui_port=None,
                db_file=db_file,
                search_attribute_flags=search_attributes.cli_flags(),
            ),
            log_path=logs / "temporal.log",
            ready=tcp_ready("127.0.0.1", temporal_port),
        ).start(timeout=60)
        for name, port in sandbox_ports.items():
            stack.processes[f"sandbox-{name}"] = ManagedProcess(
                f"sandbox-{name}",
                [
                    sys.executable,
                    "-m",
                    "momoflow.sandbox",
                    name,
                    "--port",
                    str(port),
                    "--webhook-url",
                    webhook_urls[name],
                    "--settle-delay",
                    "0.5",
                    *limits[name],
                    *sandbox_args,
                ],
                log_path=logs / f"sandbox-{name}.log",
                env=env,
                ready=http_ready(f"{sandbox_urls[name]}/health"),
            ).start(timeout=30)
        stack.processes["gateway"] = ManagedProcess(
            "gateway",
            [sys.executable, "-m", "momoflow.cli", "gateway", "--port", str(gateway_port)],
            log_path=logs / "gateway.log",
            env=env,
            ready=http_ready(f"{gateway_url}/healthz"),
        ).start(timeout=60)
        wait_until(http_ready(f"{gateway_url}/readyz"), timeout=30, what="gateway ready")
    except BaseException:
        stack.stop_all()
        raise
    return stack
