"""The campaign store on an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...).

A :class:`~momoflow.campaigns.store.BlobStore` over one boto3 S3 client: botocore signs
the requests (AWS Signature Version 4, payload included), retries them and handles the
endpoint. The store is synchronous; its callers (campaign activities, the gateway) run it
in a worker thread with :func:`asyncio.to_thread`. Requests use path-style addressing
(``{endpoint}/{bucket}/{key}``), which every S3-compatible server accepts; object keys are
``{s3_prefix}{key}``.

Every request is idempotent (a PUT writes a whole object under a fixed name, an S3 PUT is
atomic: readers see the old object or the new one), so botocore's standard retry mode
tries connection errors, timeouts, 5xx answers and throttling a bounded number of times
(``attempts``) before :class:`S3StoreError` is raised; past that, Temporal's activity
retries take over. Errors name the bucket, the object and the setting to check;
credentials never appear in an exception, a log line or a ``repr``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)
from pydantic import SecretStr

from momoflow.settings import CampaignSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Environment variables of the settings, named in errors so an operator knows what to fix.
_ENV = "MOMOFLOW_CAMPAIGNS__"
#: Errors raised after botocore's own retries that a later attempt may still cure: the
#: server did not answer (in time, or whole).
_TRANSIENT_ERRORS = (BotocoreConnectionError, HTTPClientError, IncompleteReadError)
#: Error codes of a refusal that may pass (S3 sends ``RequestTimeout`` with a 400).
_TRANSIENT_CODES = frozenset({"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException"})
#: S3 limits a key to 1024 bytes (UTF-8).
_MAX_KEY_BYTES = 1024
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class S3StoreError(RuntimeError):
    """A request to the campaign bucket failed; the message names the bucket and the object
    and never carries credentials.

    ``status`` is the HTTP status of a refusal that no retry cures (4xx, a redirect); it is
    None when the server did not answer, or answered with an error that may pass (5xx,
    throttling) on every attempt."""

    def __init__(
        self,
        message: str,
        *,
        bucket: str,
        key: str | None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.bucket = bucket
        self.key = key
        self.status = status
        self.code = code


# --------------------------------------------------------------------------- keys


def _check_key(key: str, *, what: str = "key", folder: bool = False) -> None:
    """Refuse names the local store would refuse (absolute, ``..``) and names that are no
    object (empty segments, control characters, a trailing ``/`` unless ``folder``)."""
    if not key or key.startswith("/"):
        raise ValueError(f"{what} {key!r} is not a relative object name")
    segments = (key.rstrip("/") if folder else key).split("/")
    if any(segment in (".", "..") for segment in segments):
        raise ValueError(f"{what} {key!r} escapes the store")
    if "" in segments or _CONTROL.search(key):
        raise ValueError(f"{what} {key!r} is not a valid object name")


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if not prefix:
        return ""
    _check_key(prefix, what="s3_prefix", folder=True)
    return f"{prefix}/"


def _attempts(count: int) -> str:
    return f"{count} attempt{'' if count == 1 else 's'}"


# --------------------------------------------------------------------------- the store


class _Call(threading.local):
    """The request running on this thread, as botocore's event hooks see it: botocore
    retries inside one client call, on the calling thread."""

    def __init__(self) -> None:
        self.operation = ""
        self.where = ""
        self.attempts = 0
        self.failure = ""


class S3BlobStore:
    """Campaign objects in an S3-compatible bucket, under ``prefix``.

    Safe to share between threads (one boto3 client, with its connection pool); call
    :meth:`close` (or use it as a context manager) when done. ``attempts`` bounds the tries
    of one request (botocore's standard retry mode), ``timeout_s`` and ``connect_timeout_s``
    bound each try."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        access_key_id: SecretStr,
        secret_access_key: SecretStr,
        region: str = "us-east-1",
        prefix: str = "campaigns/",
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        attempts: int = 4,
        list_page_size: int = 1000,
    ) -> None:
        endpoint = urlsplit(endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
            raise ValueError(
                f"{_ENV}S3_ENDPOINT_URL must be an http(s) URL such as http://127.0.0.1:9000 "
                "or https://s3.eu-west-1.amazonaws.com"
            )
        if "@" in endpoint.netloc or endpoint.query or endpoint.fragment:
            # Said without echoing the URL: its user part may hold a credential.
            raise ValueError(
                f"{_ENV}S3_ENDPOINT_URL must hold no user, query or fragment "
                "(credentials go in S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY)"
            )
        if not _BUCKET_NAME.fullmatch(bucket):
            raise ValueError(
                f"{_ENV}S3_BUCKET {bucket!r} is not a bucket name "
                "(3 to 63 lower-case letters, digits, dots and hyphens)"
            )
        if not access_key_id.get_secret_value() or not secret_access_key.get_secret_value():
            raise ValueError(
                f"{_ENV}S3_ACCESS_KEY_ID and {_ENV}S3_SECRET_ACCESS_KEY are both required"
            )
        if attempts < 1 or list_page_size < 1:
            raise ValueError("attempts and list_page_size must be at least 1")
        self.bucket = bucket
        self.region = region
        self.prefix = _normalise_prefix(prefix)
        self._endpoint_label = f"{endpoint.scheme}://{endpoint.netloc}"
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._attempts = attempts
        self._list_page_size = list_page_size
        self._call = _Call()
        config = Config(
            region_name=region,
            signature_version="s3v4",
            # Path-style for every S3-compatible server; the payload's SHA-256 is signed
            # over https too (botocore would send UNSIGNED-PAYLOAD there), as S3 checks it.
            s3={"addressing_style": "path", "payload_signing_enabled": True},
            connect_timeout=connect_timeout_s,
            read_timeout=timeout_s,
            retries={"mode": "standard", "total_max_attempts": attempts},
            # botocore's default CRC checksums (1.36+) are refused by some S3-compatible
            # servers (older MinIO and Ceph RGW); the signed SHA-256 covers the payload.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key_id.get_secret_value(),
            aws_secret_access_key=secret_access_key.get_secret_value(),
            region_name=region,
        )
        self._client: S3Client = session.client(
            "s3", endpoint_url=endpoint_url.rstrip("/"), config=config
        )
        events = self._client.meta.events
        events.register("needs-retry.s3", self._note_failure)
        events.register("before-send.s3", self._count_attempt)

    @classmethod
    def from_settings(cls, config: CampaignSettings) -> S3BlobStore:
        """The store configured by ``MOMOFLOW_CAMPAIGNS__S3_*``; ``ValueError`` naming the
        missing setting when a bucket is set without its endpoint or credentials."""
        if not config.s3_bucket:
            raise ValueError(f"{_ENV}S3_BUCKET is not set")
        endpoint = config.s3_endpoint_url
        key_id = config.s3_access_key_id
        secret = config.s3_secret_access_key
        missing = [
            f"{_ENV}{name}"
            for name, present in (
                ("S3_ENDPOINT_URL", bool(endpoint)),
                ("S3_ACCESS_KEY_ID", key_id is not None and bool(key_id.get_secret_value())),
                ("S3_SECRET_ACCESS_KEY", secret is not None and bool(secret.get_secret_value())),
            )
            if not present
        ]
        if missing or not endpoint or key_id is None or secret is None:
            raise ValueError(
                f"the campaign store bucket {_ENV}S3_BUCKET={config.s3_bucket!r} is set, but "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
                "(the endpoint is the S3-compatible server's URL, e.g. http://minio:9000 or "
                "https://s3.eu-west-1.amazonaws.com)"
            )
        return cls(
            endpoint_url=endpoint,
            bucket=config.s3_bucket,
            access_key_id=key_id,
            secret_access_key=secret,
            region=config.s3_region,
            prefix=config.s3_prefix,
        )

    def __repr__(self) -> str:
        return (
            f"S3BlobStore(endpoint={self._endpoint_label!r}, bucket={self.bucket!r}, "
            f"prefix={self.prefix!r})"
        )

    def __enter__(self) -> S3BlobStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    # ------------------------------------------------------------------ BlobStore

    def _name(self, key: str) -> str:
        _check_key(key)
        name = self.prefix + key
        if len(name.encode()) > _MAX_KEY_BYTES:
            raise ValueError(f"key {key!r} is longer than S3 allows ({_MAX_KEY_BYTES} bytes)")
        return name

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` (an S3 PUT replaces the object atomically)."""
        name = self._name(key)
        self._request(
            "PUT", name, lambda: self._client.put_object(Bucket=self.bucket, Key=name, Body=data)
        )

    def get(self, key: str) -> bytes | None:
        """The object under ``key``, or None when the bucket has no such object."""
        name = self._name(key)

        def read() -> bytes | None:
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=name)
            except self._client.exceptions.NoSuchKey:
                # Only S3's own word means "no such object": a missing bucket, or a 404
                # from something else at the endpoint, is a configuration error.
                return None
            return response["Body"].read()

        return self._request("GET", name, read)

    def keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` taken as a folder (``a/b`` lists ``a/b/...``, not
        ``a/bc``), sorted; ListObjectsV2, following continuation tokens."""
        _check_key(prefix, what="prefix", folder=True)
        folder = f"{self.prefix}{prefix.rstrip('/')}/"

        def list_all() -> list[str]:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket,
                Prefix=folder,
                PaginationConfig={"PageSize": self._list_page_size},
            )
            return [
                item["Key"][len(self.prefix) :]
                for page in pages
                for item in page.get("Contents", [])
                if item["Key"].startswith(folder) and not item["Key"].endswith("/")
            ]

        return sorted(self._request("LIST", folder, list_all))

    # ------------------------------------------------------------------ bucket

    def create_bucket(self) -> None:
        """Create the bucket (in ``region``); a bucket this account already owns is fine."""
        options: dict[str, Any] = {}
        if self.region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}

        def create() -> None:
            # A bucket this account already owns is the outcome asked for: creating is
            # idempotent (another account's bucket of that name still fails).
            with contextlib.suppress(self._client.exceptions.BucketAlreadyOwnedByYou):
                self._client.create_bucket(Bucket=self.bucket, **options)

        self._request("CREATE BUCKET", None, create)

    # ------------------------------------------------------------------ requests

    def _where(self, name: str | None) -> str:
        target = f"s3://{self.bucket}/{name}" if name is not None else f"bucket {self.bucket!r}"
        return f"{target} at {self._endpoint_label}"

    def _request(self, operation: str, name: str | None, call: Callable[[], _T]) -> _T:
        """``call()`` (one or more boto3 calls), with botocore's errors turned into
        :class:`S3StoreError` naming ``operation`` and the object ``name``."""
        state = self._call
        state.operation, state.where, state.attempts, state.failure = (
            operation,
            self._where(name),
            0,
            "",
        )
        try:
            return call()
        except ClientError as exc:
            # ``from None``: botocore's own text is unscrubbed, and a chained cause would
            # travel into Temporal's history with the activity's failure.
            raise self._refused(operation, name, exc) from None
        except _TRANSIENT_ERRORS as exc:
            raise S3StoreError(
                f"S3 {operation} of {state.where} failed after {_attempts(state.attempts)}: "
                f"{type(exc).__name__}",
                bucket=self.bucket,
                key=name,
            ) from None

    def _refused(self, operation: str, name: str | None, exc: ClientError) -> S3StoreError:
        error = exc.response.get("Error", {})
        code = error.get("Code") or None
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        described = self._describe(status, code, error.get("Message"))
        if status is None or status >= 500 or status == 429 or code in _TRANSIENT_CODES:
            return S3StoreError(
                f"S3 {operation} of {self._where(name)} failed after "
                f"{_attempts(self._call.attempts)}: {described}",
                bucket=self.bucket,
                key=name,
                code=code,
            )
        hint = ""
        if status == 403 or code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            hint = (
                f"; check {_ENV}S3_ACCESS_KEY_ID and {_ENV}S3_SECRET_ACCESS_KEY, "
                f"{_ENV}S3_REGION and the bucket's policy"
            )
        elif code == "NoSuchBucket":
            hint = f"; create the bucket or fix {_ENV}S3_BUCKET"
        elif status in (301, 307, 400) and code in (
            "PermanentRedirect",
            "TemporaryRedirect",
            "AuthorizationHeaderMalformed",
            "IllegalLocationConstraintException",
        ):
            hint = f"; check {_ENV}S3_REGION and {_ENV}S3_ENDPOINT_URL"
        return S3StoreError(
            f"S3 {operation} of {self._where(name)} refused: {described}{hint}",
            bucket=self.bucket,
            key=name,
            status=status,
            code=code,
        )

    def _describe(self, status: int | None, code: str | None, message: str | None) -> str:
        text = f"HTTP {status}" if status is not None else "no HTTP status"
        # botocore names a bodiless error after its status ("404"): said once is enough.
        if code and code != str(status):
            text += f" {code}"
        if message:
            text += f": {self._scrub(message)[:300]}"
        return text

    def _scrub(self, text: str) -> str:
        for secret in (self._secret_access_key, self._access_key_id):
            value = secret.get_secret_value()
            if value:
                text = text.replace(value, "[REDACTED]")
        return text

    # ------------------------------------------------------------------ botocore hooks

    def _note_failure(
        self,
        *,
        response: tuple[Any, dict[str, Any]] | None = None,
        caught_exception: BaseException | None = None,
        **_: object,
    ) -> None:
        """``needs-retry``: remember why the last try failed, for the retry's warning."""
        if caught_exception is not None:
            self._call.failure = type(caught_exception).__name__
        elif response is not None and "Error" in response[1]:
            error = response[1]["Error"]
            status = response[1].get("ResponseMetadata", {}).get("HTTPStatusCode")
            self._call.failure = self._describe(status, error.get("Code"), error.get("Message"))

    def _count_attempt(self, **_: object) -> None:
        """``before-send``: count the tries, and warn of each retry with the last failure."""
        state = self._call
        state.attempts += 1
        if state.attempts > 1:
            log.warning(
                "campaign store: S3 %s of %s failed (%s); attempt %d of %d",
                state.operation,
                state.where,
                state.failure or "unknown error",
                state.attempts,
                self._attempts,
            )


__all__ = ["S3BlobStore", "S3StoreError"]
