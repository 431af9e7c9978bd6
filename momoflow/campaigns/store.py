"""The campaign store: campaign files and results, kept outside Temporal history.

One folder (or key prefix) per campaign::

    {campaign_id}/upload-{sha256}.{csv,jsonl}
                                          the file as uploaded (never changed)
    {campaign_id}/problems.jsonl          every problem of every invalid line
    {campaign_id}/lines/{provider}/{n}.jsonl
                                          valid lines, per provider, pages of PAGE_LINES
    {campaign_id}/preflight.json          pre-flight's verdict
    {campaign_id}/outcomes/{batch}.jsonl  line outcomes as the campaign recorded them

Every write is a whole object written under a name fixed by its content's position (a page
number, a batch number), so an activity retried after a crash rewrites the same object:
nothing is appended twice. Blobs go to a :class:`BlobStore`: a local directory by default
(:class:`LocalBlobStore`), an S3-compatible bucket when configured
(:mod:`momoflow.campaigns.s3`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from momoflow.campaigns.models import CampaignLine, FileFormat, LineOutcome, LineProblem, Preflight
from momoflow.models import ProviderName
from momoflow.settings import Settings

#: Lines per stored page of a provider's queue (fixed: changing it would move cursors).
PAGE_LINES = 100


class BlobStore(Protocol):
    """Where the campaign store keeps its objects."""

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` atomically (replacing any older object)."""

    def get(self, key: str) -> bytes | None:
        """The object under ``key``, or None."""

    def keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""


class LocalBlobStore:
    """Objects as files under a directory; writes are atomic (temp file + rename).

    A relative ``root`` (the default state directory is ``.momoflow``) is resolved once,
    here, against the current directory: keys stay relative to that folder even if the
    process changes directory later.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"key {key!r} escapes the store")
        return path

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` atomically."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        """The object under ``key``, or None."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a folder), sorted."""
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )


class CampaignStore:
    """Campaign files and results on a :class:`BlobStore`."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    # ------------------------------------------------------------------ upload

    def save_upload(self, campaign_id: str, file_format: FileFormat, data: bytes) -> str:
        """Keep the uploaded file under its digest (two uploads racing for one campaign
        reference can never overwrite each other); returns the SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        self.blobs.put(f"{campaign_id}/upload-{digest}.{file_format.value}", data)
        return digest

    def upload(self, campaign_id: str, file_format: FileFormat, sha256: str) -> bytes:
        """The uploaded file with this digest; ``FileNotFoundError`` when it is missing or
        its content no longer matches the digest."""
        data = self.blobs.get(f"{campaign_id}/upload-{sha256}.{file_format.value}")
        if data is None:
            raise FileNotFoundError(f"campaign {campaign_id}: the uploaded file is missing")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise FileNotFoundError(
                f"campaign {campaign_id}: the stored file does not match its SHA-256"
            )
        return data

    # ------------------------------------------------------------------ pre-flight

    def save_lines(
        self, campaign_id: str, provider: ProviderName, lines: list[CampaignLine]
    ) -> None:
        """Write one provider's valid lines as pages of :data:`PAGE_LINES`."""
        for page, start in enumerate(range(0, len(lines), PAGE_LINES)):
            chunk = lines[start : start + PAGE_LINES]
            self.blobs.put(
                f"{campaign_id}/lines/{provider.value}/{page:06d}.jsonl",
                _jsonl(line.model_dump_json() for line in chunk),
            )

    def read_lines(
        self,
        campaign_id: str,
        provider: ProviderName,
        start: int,
        count: int,
        *,
        total: int | None = None,
    ) -> list[CampaignLine]:
        """Lines ``start`` .. ``start + count - 1`` of a provider's queue (fewer at the end).

        With ``total`` (the provider's number of valid lines), a page that is missing or
        short before that end raises ``FileNotFoundError`` naming it, instead of reading as
        the end of the queue."""
        found: list[CampaignLine] = []
        index = start
        while len(found) < count:
            page, offset = divmod(index, PAGE_LINES)
            key = f"{campaign_id}/lines/{provider.value}/{page:06d}.jsonl"
            data = self.blobs.get(key)
            rows = (
                []
                if data is None
                else [CampaignLine.model_validate_json(r) for r in data.splitlines() if r]
            )
            taken = rows[offset : offset + count - len(found)]
            if not taken:
                if total is not None and index < total:
                    state = "missing" if data is None else f"short ({len(rows)} line(s))"
                    raise FileNotFoundError(
                        f"page {key} of the campaign store is {state}: line {index + 1} of "
                        f"the {total} {provider.value} lines is not in it"
                    )
                break
            found.extend(taken)
            index += len(taken)
        return found

    def iter_lines(self, campaign_id: str, provider: ProviderName) -> Iterator[CampaignLine]:
        """Every valid line of a provider, in order."""
        for key in self.blobs.keys(f"{campaign_id}/lines/{provider.value}"):
            data = self.blobs.get(key) or b""
            for row in data.splitlines():
                if row:
                    yield CampaignLine.model_validate_json(row)

    def save_problems(self, campaign_id: str, problems: list[LineProblem]) -> None:
        """Every line problem found by pre-flight."""
        self.blobs.put(
            f"{campaign_id}/problems.jsonl", _jsonl(p.model_dump_json() for p in problems)
        )

    def problems(self, campaign_id: str) -> list[LineProblem]:
        """Every line problem (empty before pre-flight)."""
        data = self.blobs.get(f"{campaign_id}/problems.jsonl") or b""
        return [LineProblem.model_validate_json(r) for r in data.splitlines() if r]

    def save_preflight(self, campaign_id: str, preflight: Preflight) -> None:
        """Pre-flight's verdict."""
        self.blobs.put(f"{campaign_id}/preflight.json", preflight.model_dump_json().encode())

    def preflight(self, campaign_id: str) -> Preflight | None:
        """Pre-flight's verdict, once it is known."""
        data = self.blobs.get(f"{campaign_id}/preflight.json")
        return Preflight.model_validate_json(data) if data else None

    # ------------------------------------------------------------------ outcomes

    def save_outcomes(self, campaign_id: str, batch: int, outcomes: list[LineOutcome]) -> None:
        """One batch of outcomes; a retried write replaces the same batch."""
        self.blobs.put(
            f"{campaign_id}/outcomes/{batch:06d}.jsonl",
            _jsonl(o.model_dump_json() for o in outcomes),
        )

    def outcomes(self, campaign_id: str) -> dict[str, LineOutcome]:
        """The latest recorded outcome of each line, by payout workflow id."""
        latest: dict[str, LineOutcome] = {}
        for key in self.blobs.keys(f"{campaign_id}/outcomes"):
            for row in (self.blobs.get(key) or b"").splitlines():
                if row:
                    outcome = LineOutcome.model_validate_json(row)
                    latest[outcome.workflow_id] = outcome
        return latest


def _jsonl(rows: Iterable[str]) -> bytes:
    return "".join(f"{row}\n" for row in rows).encode()


def store_for(settings: Settings) -> CampaignStore:
    """The configured campaign store: the S3-compatible bucket when one is set, otherwise
    the local directory (``campaigns.store_dir``)."""
    config = settings.campaigns
    if config.s3_bucket:
        from momoflow.campaigns.s3 import S3BlobStore

        return CampaignStore(S3BlobStore.from_settings(config))
    return CampaignStore(LocalBlobStore(settings.campaign_store_dir()))


__all__ = ["PAGE_LINES", "BlobStore", "CampaignStore", "LocalBlobStore", "store_for"]
