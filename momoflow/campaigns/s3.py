"""The campaign store on an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...).

A :class:`~momoflow.campaigns.store.BlobStore` over the S3 REST API with a plain
:class:`httpx.Client` and AWS Signature Version 4 written here (:func:`sign_v4`), so the
package needs no AWS SDK. Requests use path-style addressing
(``{endpoint}/{bucket}/{key}``), which every S3-compatible server accepts; object keys are
``{s3_prefix}{key}``.

Every request is idempotent (a PUT writes a whole object under a fixed name, an S3 PUT is
atomic: readers see the old object or the new one), so connection errors, timeouts and
5xx answers are retried a few times with backoff before :class:`S3StoreError` is raised.
Errors name the bucket, the object and the setting to check; credentials never appear in
an exception, a log line or a ``repr``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import random
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import quote, unquote

import httpx
from pydantic import SecretStr

from momoflow.settings import CampaignSettings

log = logging.getLogger(__name__)

#: SHA-256 of an empty payload (GET and list requests).
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_ALGORITHM = "AWS4-HMAC-SHA256"
#: Environment variables of the settings, named in errors so an operator knows what to fix.
_ENV = "MOMOFLOW_CAMPAIGNS__"
#: Answers worth another attempt: server errors and throttling (S3 says ``SlowDown``/503).
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest pause between two attempts.
_MAX_BACKOFF_S = 5.0
#: S3 limits a key to 1024 bytes (UTF-8).
_MAX_KEY_BYTES = 1024
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --------------------------------------------------------------------------- signing


def uri_encode(value: str, *, keep_slash: bool) -> str:
    """Percent-encode ``value`` as SigV4 wants: every byte but ``A-Z a-z 0-9 - _ . ~``
    (and ``/`` in a path) as ``%XX`` with upper-case hex."""
    return quote(value, safe="/" if keep_slash else "")


def _canonical_query(raw_query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (
                uri_encode(unquote(name), keep_slash=False),
                uri_encode(unquote(value), keep_slash=False),
            )
        )
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sign_v4(
    *,
    method: str,
    url: httpx.URL,
    headers: Mapping[str, str],
    payload_sha256: str,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    now: dt.datetime,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to send for a request signed with AWS Signature Version 4.

    ``headers`` are the request's own headers (all of them are signed); the answer adds
    ``host`` (as httpx sends it), ``x-amz-date``, ``x-amz-content-sha256`` (the payload's
    SHA-256, hex) and ``authorization``. ``url`` must already carry its path and query
    percent-encoded (as :func:`uri_encode` does), so that what is signed is what is sent."""
    when = now.astimezone(dt.UTC)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = when.strftime("%Y%m%d")
    signed: dict[str, str] = {name.lower(): value for name, value in headers.items()}
    signed["host"] = url.netloc.decode("ascii")
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_sha256
    signed.pop("authorization", None)

    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{' '.join(signed[n].split())}\n" for n in names)
    signed_headers = ";".join(names)
    raw_path = url.raw_path.decode("ascii").partition("?")[0] or "/"
    canonical_request = "\n".join(
        (
            method.upper(),
            uri_encode(unquote(raw_path), keep_slash=True),
            _canonical_query(url.query.decode("ascii")),
            canonical_headers,
            signed_headers,
            payload_sha256,
        )
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        (_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    key = _hmac(f"AWS4{secret_access_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"{_ALGORITHM} Credential={access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return signed


# --------------------------------------------------------------------------- errors


class S3StoreError(RuntimeError):
    """A request to the campaign bucket failed; the message names the bucket and the object
    and never carries credentials."""

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


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _xml_children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local_name(child.tag) == name]


def _xml_text(element: ET.Element, name: str) -> str | None:
    for child in _xml_children(element, name):
        return child.text or ""
    return None


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """``(Code, Message)`` of an S3 error document, or Nones when the body is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None, None
    return _xml_text(root, "Code"), _xml_text(root, "Message")


# --------------------------------------------------------------------------- the store


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


class S3BlobStore:
    """Campaign objects in an S3-compatible bucket, under ``prefix``.

    Safe to share between threads (one pooled :class:`httpx.Client`); call :meth:`close`
    (or use it as a context manager) when done."""

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
        backoff_s: float = 0.25,
        list_page_size: int = 1000,
    ) -> None:
        endpoint = httpx.URL(endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.host:
            raise ValueError(
                f"{_ENV}S3_ENDPOINT_URL must be an http(s) URL such as http://127.0.0.1:9000 "
                "or https://s3.eu-west-1.amazonaws.com"
            )
        if endpoint.userinfo or endpoint.query or endpoint.fragment:
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
        self._base = str(endpoint.copy_with(path=endpoint.path.rstrip("/"))).rstrip("/")
        self._endpoint_label = f"{endpoint.scheme}://{endpoint.netloc.decode('ascii')}"
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._list_page_size = list_page_size
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
        )

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
        response = self._request("PUT", name, self._object_url(name), body=data)
        if response.status_code not in (200, 201, 204):
            raise self._error("PUT", name, response)

    def get(self, key: str) -> bytes | None:
        """The object under ``key``, or None when the bucket has no such object."""
        name = self._name(key)
        response = self._request("GET", name, self._object_url(name))
        if response.status_code == 200:
            return response.content
        if response.status_code == 404:
            code, _ = _error_fields(response.content)
            # Only S3's own word means "no such object": a missing bucket, or a 404 from
            # something else at the endpoint, is a configuration error.
            if code == "NoSuchKey":
                return None
        raise self._error("GET", name, response)

    def keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` taken as a folder (``a/b`` lists ``a/b/...``, not
        ``a/bc``), sorted; ListObjectsV2, following continuation tokens."""
        _check_key(prefix, what="prefix", folder=True)
        folder = f"{self.prefix}{prefix.rstrip('/')}/"
        found: list[str] = []
        token: str | None = None
        while True:
            query = [("list-type", "2"), ("max-keys", str(self._list_page_size))]
            query.append(("prefix", folder))
            if token is not None:
                query.append(("continuation-token", token))
            response = self._request("LIST", folder, self._bucket_url(query))
            if response.status_code != 200:
                raise self._error("LIST", folder, response)
            try:
                root = ET.fromstring(response.content)
            except ET.ParseError:
                raise S3StoreError(
                    f"S3 LIST of {self._where(folder)}: the answer is not XML "
                    f"({len(response.content)} bytes)",
                    bucket=self.bucket,
                    key=folder,
                    status=response.status_code,
                ) from None
            for item in _xml_children(root, "Contents"):
                name = _xml_text(item, "Key") or ""
                if name.startswith(folder) and not name.endswith("/"):
                    found.append(name[len(self.prefix) :])
            if (_xml_text(root, "IsTruncated") or "").lower() != "true":
                break
            token = _xml_text(root, "NextContinuationToken")
            if not token:
                raise S3StoreError(
                    f"S3 LIST of {self._where(folder)}: a truncated page without "
                    "NextContinuationToken",
                    bucket=self.bucket,
                    key=folder,
                    status=response.status_code,
                )
        return sorted(found)

    # ------------------------------------------------------------------ bucket

    def create_bucket(self) -> None:
        """Create the bucket (in ``region``); a bucket this account already owns is fine."""
        body = b""
        if self.region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self.region}</LocationConstraint>"
                "</CreateBucketConfiguration>"
            ).encode()
        response = self._request("CREATE BUCKET", None, self._bucket_url([]), body=body)
        if response.status_code == 200:
            return
        code, _ = _error_fields(response.content)
        if response.status_code == 409 and code == "BucketAlreadyOwnedByYou":
            return
        raise self._error("CREATE BUCKET", None, response)

    # ------------------------------------------------------------------ HTTP

    def _object_url(self, name: str) -> httpx.URL:
        return httpx.URL(f"{self._base}/{self.bucket}/{uri_encode(name, keep_slash=True)}")

    def _bucket_url(self, query: list[tuple[str, str]]) -> httpx.URL:
        encoded = "&".join(
            f"{uri_encode(k, keep_slash=False)}={uri_encode(v, keep_slash=False)}" for k, v in query
        )
        return httpx.URL(f"{self._base}/{self.bucket}" + (f"?{encoded}" if encoded else ""))

    def _where(self, name: str | None) -> str:
        target = f"s3://{self.bucket}/{name}" if name is not None else f"bucket {self.bucket!r}"
        return f"{target} at {self._endpoint_label}"

    def _request(
        self, operation: str, name: str | None, url: httpx.URL, *, body: bytes = b""
    ) -> httpx.Response:
        method = {"LIST": "GET", "CREATE BUCKET": "PUT"}.get(operation, operation)
        payload_sha256 = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        last = ""
        for attempt in range(1, self._attempts + 1):
            headers = sign_v4(
                method=method,
                url=url,
                headers={},
                payload_sha256=payload_sha256,
                access_key_id=self._access_key_id.get_secret_value(),
                secret_access_key=self._secret_access_key.get_secret_value(),
                region=self.region,
                now=dt.datetime.now(dt.UTC),
            )
            try:
                response = self._client.request(method, url, content=body, headers=headers)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code not in _RETRY_STATUSES:
                    return response
                last = self._describe(response)
            if attempt < self._attempts:
                pause = min(_MAX_BACKOFF_S, self._backoff_s * 2 ** (attempt - 1))
                pause *= random.uniform(0.5, 1.0)
                log.warning(
                    "campaign store: S3 %s of %s failed (%s); attempt %d of %d in %.2fs",
                    operation,
                    self._where(name),
                    last,
                    attempt + 1,
                    self._attempts,
                    pause,
                )
                time.sleep(pause)
        raise S3StoreError(
            f"S3 {operation} of {self._where(name)} failed after {self._attempts} attempts: {last}",
            bucket=self.bucket,
            key=name,
        )

    def _scrub(self, text: str) -> str:
        for secret in (self._secret_access_key, self._access_key_id):
            value = secret.get_secret_value()
            if value:
                text = text.replace(value, "[REDACTED]")
        return text

    def _describe(self, response: httpx.Response) -> str:
        code, message = _error_fields(response.content)
        text = f"HTTP {response.status_code}"
        if code:
            text += f" {code}"
        if message:
            text += f": {self._scrub(message)[:300]}"
        return text

    def _error(self, operation: str, name: str | None, response: httpx.Response) -> S3StoreError:
        code, _ = _error_fields(response.content)
        hint = ""
        if response.status_code == 403 or code in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
        ):
            hint = (
                f"; check {_ENV}S3_ACCESS_KEY_ID and {_ENV}S3_SECRET_ACCESS_KEY, "
                f"{_ENV}S3_REGION and the bucket's policy"
            )
        elif code == "NoSuchBucket":
            hint = f"; create the bucket or fix {_ENV}S3_BUCKET"
        elif response.status_code in (301, 307, 400) and code in (
            "PermanentRedirect",
            "TemporaryRedirect",
            "AuthorizationHeaderMalformed",
            "IllegalLocationConstraintException",
        ):
            hint = f"; check {_ENV}S3_REGION and {_ENV}S3_ENDPOINT_URL"
        return S3StoreError(
            f"S3 {operation} of {self._where(name)} refused: {self._describe(response)}{hint}",
            bucket=self.bucket,
            key=name,
            status=response.status_code,
            code=code,
        )


__all__ = ["EMPTY_SHA256", "S3BlobStore", "S3StoreError", "sign_v4", "uri_encode"]
