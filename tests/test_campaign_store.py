"""The campaign store: one contract, run against a local directory and against a real
S3-compatible server (moto's, on 127.0.0.1, with SigV4 signature checking turned on)."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from pydantic import SecretStr

from activities.campaigns import step_failure
from momoflow.campaigns.models import (
    CampaignLine,
    FileFormat,
    LineOutcome,
    LineProblem,
    Preflight,
    PreparedCampaign,
)
from momoflow.campaigns.s3 import S3BlobStore, S3StoreError
from momoflow.campaigns.store import PAGE_LINES, BlobStore, CampaignStore, LocalBlobStore, store_for
from momoflow.contract import CAMPAIGN_STEP_FAILED, CAMPAIGN_STORE_UNAVAILABLE
from momoflow.models import Operator, PayoutInput, ProviderName
from momoflow.money import Country, Currency
from momoflow.processes import free_port
from momoflow.settings import CampaignSettings, Settings

# --------------------------------------------------------------------------- S3 server


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server that checks every request's signature against an IAM user."""

    endpoint: str
    access_key_id: str
    secret_access_key: str

    def store(self, bucket: str, **options: object) -> S3BlobStore:
        return S3BlobStore(
            endpoint_url=self.endpoint,
            bucket=bucket,
            access_key_id=SecretStr(self.access_key_id),
            secret_access_key=SecretStr(self.secret_access_key),
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                # moto checks no signature until this many actions have run: the three
                # IAM calls below; every S3 request after them is checked.
                httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"3", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        # Unchecked credentials: these calls fall within moto's initial unauthenticated
        # actions.
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIABOOTSTRAP0000000",
            aws_secret_access_key="bootstrap-only",
        )
        try:
            iam.create_user(UserName="momoflow")
            key = iam.create_access_key(UserName="momoflow")["AccessKey"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
            iam.put_user_policy(
                UserName="momoflow", PolicyName="campaigns", PolicyDocument=json.dumps(policy)
            )
        finally:
            iam.close()
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        # moto keeps its settings and data in this process: leave them as found.
        for path, body in (("reset-auth", b"inf"), ("reset", b"")):
            try:
                httpx.post(f"{endpoint}/moto-api/{path}", content=body, timeout=5)
            except httpx.TransportError:
                pass
        server.stop()


def _bucket_name() -> str:
    return f"momoflow-{uuid.uuid4().hex[:16]}"


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "store")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    # Small list pages, so that every listing below follows continuation tokens.
    store = server.store(_bucket_name(), list_page_size=3)
    store.create_bucket()
    try:
        yield store
    finally:
        store.close()


# --------------------------------------------------------------------------- models


def _line(n: int) -> CampaignLine:
    return CampaignLine(
        line=n + 2,
        payout=PayoutInput(
            merchant="acme",
            reference=f"sup-{n:05d}",
            provider=ProviderName.NOVASEND,
            country=Country.SN,
            operator=Operator.WAVE,
            recipient_phone="+221770000000",
            recipient_name="Awa Diop",
            amount=1000 + n,
            currency=Currency.XOF,
            request_fingerprint=f"fp-{n}",
            requested_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        ),
    )


def _outcome(reference: str, status: str, *, fees: int | None = None) -> LineOutcome:
    return LineOutcome(
        workflow_id=f"payout-acme-{reference}",
        reference=reference,
        provider=ProviderName.NOVASEND,
        status=status,
        amount=1000,
        currency=Currency.XOF,
        fees=fees,
        at=dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC),
    )


# --------------------------------------------------------------------------- blob contract


def test_an_object_reads_back_as_written_and_a_missing_one_is_none(blobs: BlobStore) -> None:
    every_byte = bytes(range(256)) * 3
    blobs.put("c1/upload.csv", every_byte)
    blobs.put("c1/empty.jsonl", b"")

    assert blobs.get("c1/upload.csv") == every_byte
    assert blobs.get("c1/empty.jsonl") == b""
    assert blobs.get("c1/missing.json") is None
    assert blobs.get("c2/upload.csv") is None


def test_a_rewrite_replaces_the_whole_object(blobs: BlobStore) -> None:
    blobs.put("c1/preflight.json", b"x" * 5000)
    blobs.put("c1/preflight.json", b"short")

    assert blobs.get("c1/preflight.json") == b"short"
    assert blobs.keys("c1") == ["c1/preflight.json"]


def test_readers_never_see_a_half_written_object(blobs: BlobStore) -> None:
    first, second = b"a" * 400_000, b"b" * 300_000
    blobs.put("c1/lines/novasend/000000.jsonl", first)
    seen: set[bytes | None] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(blobs.get("c1/lines/novasend/000000.jsonl"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(20):
            blobs.put("c1/lines/novasend/000000.jsonl", second if round_ % 2 == 0 else first)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert not reader.is_alive()
    assert seen and seen <= {first, second}


def test_keys_lists_a_folder_sorted_across_list_pages(blobs: BlobStore) -> None:
    names = [f"c1/outcomes/{n:06d}.jsonl" for n in (7, 0, 3, 11, 1, 5, 2, 9, 4, 10)]
    for name in names:
        blobs.put(name, b"{}\n")
    blobs.put("c1/lines/novasend/000000.jsonl", b"")
    blobs.put("c10/outcomes/000000.jsonl", b"")
    blobs.put("c1/outcomes-old/000000.jsonl", b"")

    assert blobs.keys("c1/outcomes") == sorted(names)
    assert blobs.keys("c1/outcomes/") == sorted(names)
    assert blobs.keys("c1") == sorted(
        [*names, "c1/lines/novasend/000000.jsonl"] + ["c1/outcomes-old/000000.jsonl"]
    )
    assert blobs.keys("c2") == []
    assert blobs.keys("c1/lines/mobilepay") == []


@pytest.mark.parametrize("key", ["../outside", "c1/../../outside", "/etc/passwd", ".."])
def test_keys_that_escape_the_store_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        blobs.put(key, b"x")
    with pytest.raises(ValueError):
        blobs.get(key)
    with pytest.raises(ValueError):
        blobs.keys(key)


# --------------------------------------------------------------------------- campaign store


def test_the_upload_is_kept_under_its_digest(blobs: BlobStore) -> None:
    store = CampaignStore(blobs)
    data = b"reference,provider,country\nsup-1,novasend,SN\n"

    digest = store.save_upload("c1", FileFormat.CSV, data)

    assert digest == hashlib.sha256(data).hexdigest()
    assert store.upload("c1", FileFormat.CSV, digest) == data
    with pytest.raises(FileNotFoundError):
        store.upload("c1", FileFormat.JSONL, digest)
    with pytest.raises(FileNotFoundError):
        store.upload("c1", FileFormat.CSV, hashlib.sha256(b"other").hexdigest())
    blobs.put(f"c1/upload-{digest}.csv", data + b"sup-2,novasend,SN\n")
    with pytest.raises(FileNotFoundError, match="does not match"):
        store.upload("c1", FileFormat.CSV, digest)


def test_lines_are_stored_in_pages_and_read_across_page_boundaries(blobs: BlobStore) -> None:
    store = CampaignStore(blobs)
    lines = [_line(n) for n in range(2 * PAGE_LINES + 50)]

    store.save_lines("c1", ProviderName.NOVASEND, lines)

    assert blobs.keys("c1/lines/novasend") == [
        "c1/lines/novasend/000000.jsonl",
        "c1/lines/novasend/000001.jsonl",
        "c1/lines/novasend/000002.jsonl",
    ]
    assert store.read_lines("c1", ProviderName.NOVASEND, 0, 10) == lines[:10]
    assert (
        store.read_lines("c1", ProviderName.NOVASEND, PAGE_LINES - 5, 10)
        == lines[PAGE_LINES - 5 : PAGE_LINES + 5]
    )
    assert store.read_lines("c1", ProviderName.NOVASEND, 50, 2 * PAGE_LINES) == lines[50:]
    assert store.read_lines("c1", ProviderName.NOVASEND, len(lines) - 3, 10) == lines[-3:]
    assert store.read_lines("c1", ProviderName.NOVASEND, len(lines), 10) == []
    assert store.read_lines("c1", ProviderName.MOBILEPAY, 0, 10) == []
    assert list(store.iter_lines("c1", ProviderName.NOVASEND)) == lines


def test_a_missing_page_before_the_providers_total_is_an_error_naming_it(
    blobs: BlobStore,
) -> None:
    store = CampaignStore(blobs)
    lines = [_line(n) for n in range(2 * PAGE_LINES + 50)]
    store.save_lines("c1", ProviderName.NOVASEND, lines)
    # The second page is lost (a folder restored from an old backup, a lifecycle rule).
    blobs.put("c1/lines/novasend/000001.jsonl", b"")

    read = store.read_lines
    with pytest.raises(FileNotFoundError, match="c1/lines/novasend/000001.jsonl") as raised:
        read("c1", ProviderName.NOVASEND, PAGE_LINES - 5, 10, total=len(lines))
    assert f"line {PAGE_LINES + 1} of the {len(lines)} novasend lines" in str(raised.value)
    # Without the total (runs from before it was sent), the end of what is there.
    assert read("c1", ProviderName.NOVASEND, PAGE_LINES - 5, 10) == lines[PAGE_LINES - 5 :][:5]
    # At the real end, fewer lines than asked for are no error.
    tail = read("c1", ProviderName.NOVASEND, len(lines) - 3, 10, total=len(lines))
    assert tail == lines[-3:]


def test_outcome_batches_are_replaced_on_rewrite_and_the_latest_outcome_wins(
    blobs: BlobStore,
) -> None:
    store = CampaignStore(blobs)
    store.save_outcomes("c1", 0, [_outcome("a", "reconciling"), _outcome("b", "failed")])
    store.save_outcomes("c1", 1, [_outcome("c", "succeeded", fees=25)])
    # The activity is retried after a crash: batch 0 is written again, not appended.
    store.save_outcomes("c1", 0, [_outcome("a", "reconciling"), _outcome("b", "failed")])
    store.save_outcomes("c1", 2, [_outcome("a", "succeeded", fees=10)])

    outcomes = store.outcomes("c1")

    assert sorted(outcomes) == ["payout-acme-a", "payout-acme-b", "payout-acme-c"]
    assert outcomes["payout-acme-a"].status == "succeeded"
    assert outcomes["payout-acme-a"].fees == 10
    assert outcomes["payout-acme-b"].status == "failed"
    assert outcomes["payout-acme-c"].fees == 25
    rows = sum(len((blobs.get(k) or b"").splitlines()) for k in blobs.keys("c1/outcomes"))
    assert rows == 4
    assert store.outcomes("c2") == {}


def test_problems_and_the_preflight_verdict_round_trip(blobs: BlobStore) -> None:
    store = CampaignStore(blobs)
    assert store.problems("c1") == []
    assert store.preflight("c1") is None
    problems = [
        LineProblem(line=3, reference="sup-1", field="phone", rule="phone", message="bad"),
        LineProblem(line=3, reference="sup-1", field="amount", rule="limits", message="low"),
    ]
    preflight = Preflight(
        prepared=PreparedCampaign(
            lines=3, valid_lines=1, invalid_lines=2, problem_count=2, first_problems=problems
        ),
        blocking=["novasend: balance short by 500 XOF"],
        checked_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
    )

    store.save_problems("c1", problems)
    store.save_preflight("c1", preflight)

    assert store.problems("c1") == problems
    assert store.preflight("c1") == preflight


# --------------------------------------------------------------------------- local store


def test_a_failed_local_write_keeps_the_old_object_and_leaves_no_temp_file(
    tmp_path: Path,
) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("c1/preflight.json", b"old")

    with pytest.raises(TypeError):
        store.put("c1/preflight.json", "not bytes")  # type: ignore[arg-type]

    assert store.get("c1/preflight.json") == b"old"
    assert [p.name for p in (tmp_path / "c1").iterdir()] == ["preflight.json"]


def test_local_keys_skip_the_temp_files_of_an_interrupted_write(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("c1/outcomes/000000.jsonl", b"{}\n")
    (tmp_path / "c1" / "outcomes" / ".tmp-abc123").write_bytes(b"partial")

    assert store.keys("c1/outcomes") == ["c1/outcomes/000000.jsonl"]


def test_a_relative_state_directory_works_from_where_the_process_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``./scripts/dev`` runs with the default state directory, ``.momoflow``: relative."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert not Path(settings.state_dir).is_absolute()
    store = store_for(settings)
    lines = [_line(n) for n in range(PAGE_LINES + 1)]

    store.save_lines("c1", ProviderName.NOVASEND, lines)
    store.save_outcomes("c1", 0, [_outcome("a", "succeeded", fees=10)])

    assert store.blobs.keys("c1/lines/novasend") == [
        "c1/lines/novasend/000000.jsonl",
        "c1/lines/novasend/000001.jsonl",
    ]
    assert list(store.iter_lines("c1", ProviderName.NOVASEND)) == lines
    assert (tmp_path / ".momoflow" / "campaigns" / "c1" / "outcomes" / "000000.jsonl").is_file()
    # The root was resolved once: moving elsewhere later changes nothing.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert store.outcomes("c1")["payout-acme-a"].fees == 10
    assert store.read_lines("c1", ProviderName.NOVASEND, PAGE_LINES - 1, 5) == lines[-2:]


def test_a_relative_root_with_dot_segments_lists_keys_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    store = LocalBlobStore(Path("../b/./store"))
    store.put("c1/outcomes/000000.jsonl", b"{}\n")

    assert store.keys("c1") == ["c1/outcomes/000000.jsonl"]
    assert store.get("c1/outcomes/000000.jsonl") == b"{}\n"
    assert (tmp_path / "b" / "store" / "c1" / "outcomes" / "000000.jsonl").is_file()
    with pytest.raises(ValueError, match="escapes"):
        store.get("../../a/x")


# --------------------------------------------------------------------------- failures


def test_a_store_that_cannot_be_written_is_a_failure_no_retry_cures(tmp_path: Path) -> None:
    """A file where the store needs a folder (or a folder it may not write): the campaign
    must say so and wait for someone, not retry for ever."""
    store = CampaignStore(LocalBlobStore(tmp_path))
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "outcomes").write_text("in the way")

    with pytest.raises(OSError) as raised:
        store.save_outcomes("c1", 0, [_outcome("a", "succeeded")])
    failure = step_failure(raised.value)

    assert failure.type == CAMPAIGN_STEP_FAILED and failure.non_retryable
    assert str(tmp_path / "c1" / "outcomes") in failure.message
    assert failure.message.startswith(type(raised.value).__name__ + ": ")


def test_a_missing_page_and_unreadable_line_data_are_failures_no_retry_cures(
    tmp_path: Path,
) -> None:
    store = CampaignStore(LocalBlobStore(tmp_path))
    store.save_lines("c1", ProviderName.NOVASEND, [_line(1)])
    with pytest.raises(FileNotFoundError) as missing:
        store.read_lines("c1", ProviderName.NOVASEND, 0, 10, total=PAGE_LINES + 1)
    # A page written by another version of momoflow, or damaged.
    (tmp_path / "c1" / "lines" / "novasend" / "000000.jsonl").write_text(
        '{"line": 3, "payout": {"recipient_phone": "+221771234567"}}\n'
    )
    with pytest.raises(ValueError) as damaged:
        store.read_lines("c1", ProviderName.NOVASEND, 0, 1)

    assert step_failure(missing.value).non_retryable
    failure = step_failure(damaged.value)
    assert failure.type == CAMPAIGN_STEP_FAILED and failure.non_retryable
    assert "does not match this version of momoflow" in failure.message
    # A validation error quotes what it read; the reason an operator sees must not.
    assert "+221771234567" not in failure.message


def test_errors_that_may_pass_are_retried(s3_server: S3Server) -> None:
    with _fault_store(f"http://127.0.0.1:{free_port()}", attempts=1) as unreachable:
        with pytest.raises(S3StoreError) as refused_connection:
            unreachable.get("c1/preflight.json")
    store = S3BlobStore(
        endpoint_url=s3_server.endpoint,
        bucket=_bucket_name(),
        access_key_id=SecretStr(s3_server.access_key_id),
        secret_access_key=SecretStr("wrong-" + s3_server.secret_access_key[6:]),
    )
    with store, pytest.raises(S3StoreError) as wrong_secret:
        store.get("c1/preflight.json")

    transient = step_failure(refused_connection.value)
    assert transient.type == CAMPAIGN_STORE_UNAVAILABLE and not transient.non_retryable
    assert not step_failure(TimeoutError("timed out")).non_retryable
    assert not step_failure(ConnectionResetError(104, "Connection reset by peer")).non_retryable
    # A refusal is configuration: trying again cannot help.
    refused = step_failure(wrong_secret.value)
    assert refused.type == CAMPAIGN_STEP_FAILED and refused.non_retryable
    assert "MOMOFLOW_CAMPAIGNS__S3_SECRET_ACCESS_KEY" in refused.message
    assert s3_server.secret_access_key not in refused.message


# --------------------------------------------------------------------------- S3 specifics


def test_objects_live_under_the_prefix_in_the_named_bucket(s3_server: S3Server) -> None:
    bucket = _bucket_name()
    with s3_server.store(bucket, prefix="/tenants/acme/") as store:
        store.create_bucket()
        store.create_bucket()  # already ours: fine
        store.put("c1/preflight.json", b"{}")
        with s3_server.store(bucket, prefix="") as whole_bucket:
            assert whole_bucket.keys("tenants") == ["tenants/acme/c1/preflight.json"]
            assert whole_bucket.get("tenants/acme/c1/preflight.json") == b"{}"
        assert store.keys("c1") == ["c1/preflight.json"]


def test_keys_with_reserved_characters_are_signed_and_stored_as_given(
    s3_server: S3Server,
) -> None:
    with s3_server.store(_bucket_name()) as store:
        store.create_bucket()
        names = ["c1/a b+c$d=e.json", "c1/é~(1)!*'.json", "c1/percent%2F.json"]
        for n, name in enumerate(names):
            store.put(name, str(n).encode())

        assert store.keys("c1") == sorted(names)
        assert [store.get(name) for name in names] == [b"0", b"1", b"2"]


def test_a_missing_bucket_is_an_error_not_a_missing_object(s3_server: S3Server) -> None:
    with s3_server.store("momoflow-no-such-bucket") as store:
        with pytest.raises(S3StoreError, match="NoSuchBucket") as raised:
            store.get("c1/preflight.json")
        assert raised.value.status == 404
        assert "momoflow-no-such-bucket" in str(raised.value)
        assert "MOMOFLOW_CAMPAIGNS__S3_BUCKET" in str(raised.value)
        with pytest.raises(S3StoreError, match="NoSuchBucket"):
            store.keys("c1")


#: Loggers of the client side (the in-process moto server logs what it received).
_CLIENT_LOGGERS = ("momoflow", "boto3", "botocore", "s3transfer", "urllib3")


def _everything_said(
    error: BaseException,
    caplog: pytest.LogCaptureFixture,
    loggers: tuple[str, ...] = _CLIENT_LOGGERS,
) -> str:
    """The error as every handler would show it, and what the client side logged."""
    return "\n".join(
        [
            str(error),
            repr(error),
            "".join(traceback.format_exception(error)),
            *(
                f"{record.getMessage()} {record.args!r}"
                for record in caplog.records
                if record.name.split(".")[0] in loggers
            ),
        ]
    )


def test_a_wrong_secret_key_is_refused_with_a_clear_error_that_hides_it(
    s3_server: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = _bucket_name()
    with s3_server.store(bucket) as good:
        good.create_bucket()
        good.put("c1/preflight.json", b"{}")
    wrong_secret = "wrong-" + s3_server.secret_access_key[6:]
    store = S3BlobStore(
        endpoint_url=s3_server.endpoint,
        bucket=bucket,
        access_key_id=SecretStr(s3_server.access_key_id),
        secret_access_key=SecretStr(wrong_secret),
    )
    for logger in _CLIENT_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=logger)

    with store, pytest.raises(S3StoreError) as raised:
        store.get("c1/preflight.json")

    error = raised.value
    assert error.status == 403
    assert error.code == "SignatureDoesNotMatch"
    assert f"s3://{bucket}/campaigns/c1/preflight.json" in str(error)
    assert "MOMOFLOW_CAMPAIGNS__S3_SECRET_ACCESS_KEY" in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert any(r.name.startswith("botocore") for r in caplog.records)  # DEBUG was on
    # Not even botocore's DEBUG lines carry the secret (only signatures derived from it).
    said = _everything_said(error, caplog) + repr(store)
    assert wrong_secret not in said
    assert s3_server.secret_access_key not in said
    # The key id is no secret (botocore's DEBUG lines show the Authorization header), but
    # the error and momoflow's own lines leave it out too.
    ours = _everything_said(error, caplog, loggers=("momoflow",)) + repr(store)
    assert s3_server.access_key_id not in ours


def test_an_unknown_access_key_is_refused(s3_server: S3Server) -> None:
    with s3_server.store(_bucket_name()) as good:
        good.create_bucket()
        bucket = good.bucket
    store = S3BlobStore(
        endpoint_url=s3_server.endpoint,
        bucket=bucket,
        access_key_id=SecretStr("AKIAUNKNOWN000000000"),
        secret_access_key=SecretStr(s3_server.secret_access_key),
    )
    with store, pytest.raises(S3StoreError) as raised:
        store.put("c1/preflight.json", b"{}")
    assert raised.value.status == 403
    assert raised.value.code == "InvalidAccessKeyId"
    assert "AKIAUNKNOWN000000000" not in str(raised.value)


def test_the_configured_bucket_becomes_the_campaign_store(s3_server: S3Server) -> None:
    bucket = _bucket_name()
    settings = Settings(
        _env_file=None,
        campaigns=CampaignSettings(
            s3_bucket=bucket,
            s3_endpoint_url=s3_server.endpoint,
            s3_access_key_id=SecretStr(s3_server.access_key_id),
            s3_secret_access_key=SecretStr(s3_server.secret_access_key),
            s3_prefix="momoflow/campaigns",
        ),
    )
    store = store_for(settings)
    assert isinstance(store.blobs, S3BlobStore)
    with store.blobs:
        store.blobs.create_bucket()
        digest = store.save_upload("c1", FileFormat.JSONL, b"{}\n")
        assert store.upload("c1", FileFormat.JSONL, digest) == b"{}\n"
        assert store.blobs.keys("c1") == [f"c1/upload-{digest}.jsonl"]
        assert s3_server.secret_access_key not in repr(store.blobs)
        assert s3_server.access_key_id not in repr(store.blobs)


@pytest.mark.parametrize(
    ("missing", "setting"),
    [
        ("s3_endpoint_url", "MOMOFLOW_CAMPAIGNS__S3_ENDPOINT_URL"),
        ("s3_access_key_id", "MOMOFLOW_CAMPAIGNS__S3_ACCESS_KEY_ID"),
        ("s3_secret_access_key", "MOMOFLOW_CAMPAIGNS__S3_SECRET_ACCESS_KEY"),
    ],
)
def test_a_bucket_without_endpoint_or_credentials_is_refused(missing: str, setting: str) -> None:
    values: dict[str, object] = {
        "s3_bucket": "momoflow-campaigns",
        "s3_endpoint_url": "http://127.0.0.1:9000",
        "s3_access_key_id": SecretStr("AKIAEXAMPLEKEYID0000"),
        "s3_secret_access_key": SecretStr("a-very-secret-value-0123456789"),
    }
    values[missing] = None
    config = CampaignSettings.model_validate(values)

    with pytest.raises(ValueError, match=setting) as raised:
        S3BlobStore.from_settings(config)
    assert "a-very-secret-value-0123456789" not in str(raised.value)
    with pytest.raises(ValueError, match=setting):
        store_for(Settings(_env_file=None, campaigns=config))


def test_an_endpoint_with_credentials_in_it_is_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="S3_ENDPOINT_URL") as raised:
        S3BlobStore(
            endpoint_url="http://admin:hunter2-secret@127.0.0.1:9000",
            bucket="momoflow-campaigns",
            access_key_id=SecretStr("AKIAEXAMPLEKEYID0000"),
            secret_access_key=SecretStr("a-very-secret-value-0123456789"),
        )
    assert "hunter2-secret" not in str(raised.value)


# --------------------------------------------------------------------------- faults


class _FaultServer:
    """A bare HTTP server on 127.0.0.1 that answers GETs from a script of statuses."""

    def __init__(self, statuses: list[int], *, hang: bool = False) -> None:
        self.statuses = statuses
        self.hang = hang
        self.requests = 0
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                outer.requests += 1
                if outer.hang:
                    outer.release.wait(timeout=10)
                    return
                status = outer.statuses.pop(0) if outer.statuses else 200
                body = {
                    200: b"payload",
                    403: b"<Error><Code>AccessDenied</Code>"
                    b"<Message>Access Denied</Message></Error>",
                    404: b"404 page not found",
                }.get(
                    status, b"<Error><Code>InternalError</Code><Message>We broke</Message></Error>"
                )
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def fault_server() -> Iterator[list[_FaultServer]]:
    started: list[_FaultServer] = []
    yield started
    for server in started:
        server.stop()


def _fault_store(endpoint: str, **options: object) -> S3BlobStore:
    return S3BlobStore(
        endpoint_url=endpoint,
        bucket="momoflow-campaigns",
        access_key_id=SecretStr("AKIAEXAMPLEKEYID0000"),
        secret_access_key=SecretStr("a-very-secret-value-0123456789"),
        **options,  # type: ignore[arg-type]
    )


def test_server_errors_are_retried_until_the_object_comes(
    fault_server: list[_FaultServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = _FaultServer([503, 500])
    fault_server.append(server)
    caplog.set_level(logging.WARNING, logger="momoflow.campaigns.s3")

    with _fault_store(server.endpoint, attempts=3) as store:
        assert store.get("c1/preflight.json") == b"payload"

    assert server.requests == 3
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2
    assert "s3://momoflow-campaigns/campaigns/c1/preflight.json" in warnings[0]
    assert "(HTTP 503 InternalError: We broke); attempt 2 of 3" in warnings[0]
    assert "(HTTP 500 InternalError: We broke); attempt 3 of 3" in warnings[1]


def test_server_errors_past_the_last_attempt_raise_an_error_naming_the_object(
    fault_server: list[_FaultServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = _FaultServer([500] * 10)
    fault_server.append(server)

    with _fault_store(server.endpoint, attempts=3) as store:
        with pytest.raises(S3StoreError) as raised:
            store.get("c1/preflight.json")

    assert server.requests == 3
    message = str(raised.value)
    assert "s3://momoflow-campaigns/campaigns/c1/preflight.json" in message
    assert "after 3 attempts" in message
    assert "HTTP 500 InternalError: We broke" in message
    assert raised.value.status is None  # may pass: Temporal's activity retries go on
    assert "a-very-secret-value-0123456789" not in _everything_said(raised.value, caplog)


def test_a_404_that_is_not_no_such_key_is_an_error_not_a_missing_object(
    fault_server: list[_FaultServer],
) -> None:
    server = _FaultServer([404])
    fault_server.append(server)

    with _fault_store(server.endpoint) as store:
        with pytest.raises(S3StoreError, match="HTTP 404") as raised:
            store.get("c1/preflight.json")

    assert server.requests == 1
    assert raised.value.status == 404


def test_a_refusal_is_not_retried_and_names_the_settings_to_check(
    fault_server: list[_FaultServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = _FaultServer([403])
    fault_server.append(server)
    caplog.set_level(logging.WARNING, logger="momoflow.campaigns.s3")

    with _fault_store(server.endpoint) as store:
        with pytest.raises(S3StoreError) as raised:
            store.get("c1/preflight.json")

    assert server.requests == 1
    assert not caplog.records
    error = raised.value
    assert (error.status, error.code) == (403, "AccessDenied")
    assert "s3://momoflow-campaigns/campaigns/c1/preflight.json" in str(error)
    assert "refused: HTTP 403 AccessDenied: Access Denied" in str(error)
    assert "MOMOFLOW_CAMPAIGNS__S3_ACCESS_KEY_ID" in str(error)
    failure = step_failure(error)
    assert failure.type == CAMPAIGN_STEP_FAILED and failure.non_retryable


def test_a_server_that_does_not_answer_times_out_and_is_retried(
    fault_server: list[_FaultServer],
) -> None:
    server = _FaultServer([], hang=True)
    fault_server.append(server)

    started = time.monotonic()
    with _fault_store(server.endpoint, attempts=2, timeout_s=0.3) as store:
        with pytest.raises(S3StoreError, match="ReadTimeout"):
            store.get("c1/preflight.json")

    assert server.requests == 2
    assert time.monotonic() - started < 5


def test_a_refused_connection_is_retried_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="momoflow.campaigns.s3")
    with _fault_store(f"http://127.0.0.1:{free_port()}", attempts=3) as store:
        with pytest.raises(S3StoreError, match="after 3 attempts: EndpointConnectionError"):
            store.put("c1/preflight.json", b"{}")
    assert len(caplog.records) == 2
